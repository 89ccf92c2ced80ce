import json
import math
import re
import shutil
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurotoken.experiments import report
from neurotoken.experiments.runner import Results


def row(task, model, neuromorphic, value, energy, higher=True, metric="accuracy", unit="inference"):
    return {"paradigm": task, "task": task, "model": model, "neuromorphic": neuromorphic, "metric": metric,
            "value": value, "higher_is_better": higher, "unit": unit, "energy_j": energy, "acs": 1500.0,
            "macs": 0.0, "sparsity": 0.9 if neuromorphic else float("nan"), "bytes": 2048.0, "spikes": 10.0,
            "layer_energy_j": {"a": energy / 4, "b": 3 * energy / 4}, "energy_vs_twin": 1.0, "train_seconds": 1.0,
            "profile": "cmos45"}


RESULTS = Results({"rows": [
    row("digits", "MLP", False, 0.98, 1e-7), row("digits", "SNN", True, 0.97, 5e-8),
    row("text", "RWKV", False, 2.3, 1e-7, higher=False, metric="bits/byte", unit="token"),
    row("text", "SpikeGPT", True, 2.5, 2e-7, higher=False, metric="bits/byte", unit="token")]},
    {"rasters": {"digits": {"layer": "body.0.neuron", "steps": 4, "neurons": 3, "events": [[0, 1], [3, 2]],
                            "values": [1.0, 1.0]}, "text": None}})
ROWS = RESULTS.tables["rows"]


def test_cells_format_quality_energy_and_counts():
    assert report.cells(ROWS[1]) == ("digits", "SNN", "97.00% accuracy", "50 nJ/inf", "1.5 k", "0",
                                                "0.90", "2.05 kB", "1.00x")
    assert report.cells(ROWS[2])[2:4] == ("2.3 bits/byte", "100 nJ/tok")
    assert report.cells(ROWS[0])[6] == "-"


def test_pareto_front_respects_the_metric_direction():
    digits, text = ROWS[:2], ROWS[2:]
    assert report._front(digits) == [True, True]  # one cheaper, the other more accurate
    assert report._front(text) == [True, False]  # SpikeGPT is dearer and worse


def test_write_report_draws_every_plot_into_one_self_contained_page(tmp_path):
    paths = report.write_report(RESULTS, tmp_path)
    assert [p.name for p in paths] == ["results.json", *report.PLOTS, "report.html"]
    page = (tmp_path / "report.html").read_text()
    for name in report.PLOTS:
        assert f'<img alt="{name}" src="data:image/png;base64,' in page
    assert "SpikeGPT" in page and "src=\"http" not in page
    assert report.load_results(tmp_path).tables["rows"][1]["model"] == "SNN"


def test_results_written_before_the_experiment_contract_still_load(tmp_path):
    old = {"profile": "loihi", "rows": [{k: v for k, v in r.items() if k != "profile"} for r in ROWS],
           "rasters": RESULTS.artifacts["rasters"]}
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = report.load_results(tmp_path)
    assert [r["profile"] for r in loaded.tables["rows"]] == ["loihi"] * 4
    assert loaded.artifacts["rasters"] == old["rasters"]


def test_the_old_report_module_still_imports_with_a_deprecation_warning():
    import importlib
    import sys

    sys.modules.pop("neurotoken.report", None)
    with pytest.warns(DeprecationWarning, match="neurotoken.experiments.report"):
        old = importlib.import_module("neurotoken.report")
    assert old.write_report is report.write_report


def test_load_results_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json"):
        report.load_results(tmp_path)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        report.load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="lacks the table rows"):
        report.load_results(tmp_path)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_report_plots_render_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    report.write_report(RESULTS, tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto((tmp_path / "report.html").as_uri())
            images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        finally:
            browser.close()
    assert sorted(alt for alt, _, _ in images) == sorted(report.PLOTS)
    assert all(complete and width >= 300 for _, complete, width in images), images


def priced_row(task, model, neuromorphic, value, energy, **changes):
    return {**row(task, model, neuromorphic, value, energy), **changes}


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_accuracy_axis_stops_at_one_and_values_are_labelled():
    rows = [priced_row("digits", "MLP", False, 1.0, 1e-7), priced_row("digits", "SNN", True, 0.95, 5e-8)]
    (ax,) = visible_axes(report.pareto_figure(Results({"rows": rows}, {"rasters": {}})))
    bottom, top = ax.get_ylim()
    assert top == 1.0 and 0.0 <= bottom <= 0.9
    assert {"100.00%", "95.00%"} <= {t.get_text() for t in ax.texts}


def test_a_tiny_bits_per_byte_gap_does_not_fill_the_axis():
    rows = [priced_row("text", "RWKV", False, 2.300, 1e-7, higher_is_better=False, metric="bits/byte"),
            priced_row("text", "SpikeGPT", True, 2.302, 2e-7, higher_is_better=False, metric="bits/byte")]
    (ax,) = visible_axes(report.pareto_figure(Results({"rows": rows}, {"rasters": {}})))
    bottom, top = ax.get_ylim()
    assert top - bottom >= 0.2 and bottom < 2.3 and top > 2.302  # a 0.002 gap is under 1% of the axis
    assert {"2.3", "2.302"} <= {t.get_text() for t in ax.texts}


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.booleans())
def test_quality_limits_hold_every_value_and_span_a_sensible_range(values, bounded):
    bottom, top = report.quality_limits(values, bounded)
    assert bottom <= min(values) and top >= max(values)
    assert top - bottom >= (0.1 if bounded else 0.1 * max(values)) - 1e-12
    assert not bounded or (0.0 <= bottom and top <= 1.0)


@given(st.floats(1e-6, 1e6), st.floats(1.5, 1e4))
def test_log_ticks_give_at_least_three_round_labels_inside_the_range(lo, ratio):
    ticks = report.log_ticks(lo, lo * ratio)
    assert len(ticks) >= 3 and all(lo <= t <= lo * ratio * (1 + 1e-9) for t in ticks)


def test_log_energy_axes_carry_at_least_three_tick_labels():
    fig = report.pareto_figure(RESULTS)
    for ax in visible_axes(fig):
        lo, hi = ax.get_xlim()
        shown = [t for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
        assert len(shown) >= 3, [t.get_text() for t in shown]


def test_unpriced_operations_are_marked_on_the_plot():
    rows = [priced_row("demod", "softmax", False, 0.2, 1e-7, metric="SER", higher_is_better=False,
                       unpriced=["nonlinear_ops"]), priced_row("demod", "spiking", True, 0.25, 5e-8, metric="SER",
                                                               higher_is_better=False)]
    (ax,) = visible_axes(report.pareto_figure(Results({"rows": rows}, {"rasters": {}})))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "hollow: leaves out unpriced operations (*)" in labels
    hollow = [c for c in ax.collections if c.get_label() == "softmax (Pareto)"]
    assert hollow and not any(rgba[3] for rgba in hollow[0].get_facecolor())  # no fill


def test_models_priced_at_zero_joules_stay_on_a_log_plot_marked_not_priced_without_warnings(tmp_path):
    rows = [priced_row("digits", "MLP", False, 0.98, 0.0, unpriced=["macs"]),
            priced_row("digits", "SNN", True, 0.97, 5e-8),
            priced_row("text", "RWKV", False, 2.3, 0.0, higher_is_better=False, metric="bits/byte", unit="token"),
            priced_row("text", "SpikeGPT", True, 2.5, 2e-7, higher_is_better=False, metric="bits/byte", unit="token")]
    results = Results({"rows": [{**r, "profile": "loihi"} for r in rows]}, RESULTS.artifacts)
    assert report._front(rows[:2]) == [False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.write_report(results, tmp_path)
        fig = report.pareto_figure(results)
    for ax in visible_axes(fig):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(label.endswith("(not priced)") for label in labels) and not any(
            "(not priced)" in label and "(Pareto)" in label for label in labels)
        free = [c for c in ax.collections if c.get_label().endswith("(not priced)")]
        assert free[0].get_offsets()[0][0] == ax.get_xlim()[0]  # drawn at the axis edge
        assert any("not priced (0 J)" in t.get_text() for t in ax.texts)


def many_layer_rows(n_models=8, layers=13):
    return [priced_row("task", f"model {i}", i % 2 == 1, 0.9, 1e-7 * (i + 1),
                       layer_energy_j={f"blocks.0.sublayers.{j}.neuron": 1e-9 * (i + 1) * (j + 1)
                                       for j in range(layers)}) for i in range(n_models)]


def test_layer_energy_panels_share_one_labelled_scale_in_a_sane_image():
    fig = report.layer_energy_figure(Results({"rows": many_layer_rows()}, {"rasters": {}}))
    axes = visible_axes(fig)
    assert len(axes) == 8
    assert all(axes[0].get_shared_x_axes().joined(axes[0], ax) for ax in axes)
    assert all("nJ" in ax.get_xlabel() for ax in axes)
    assert all(t.get_fontsize() >= 9 for ax in axes for t in ax.get_yticklabels() + ax.get_xticklabels())
    width, height = fig.get_size_inches() * report.DPI
    assert height <= 1600 and width <= 1600


def test_multilevel_rasters_have_a_value_colour_bar_and_say_when_neurons_are_cut():
    raster = {"layer": "fire", "steps": 4, "neurons": 128, "total_neurons": 256,
              "events": [[0, 1], [1, 2], [3, 5]], "values": [1.0, 2.0, 3.0]}
    fig = report.raster_figure(Results({"rows": ROWS}, {"rasters": {"ssm": raster}}))
    (ax,) = visible_axes(fig)
    assert "first 128 of 256 neurons" in ax.get_title()
    (bar,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "spike value"
    assert [t.get_text() for t in bar.get_yticklabels()] == ["1", "2", "3"]


def test_report_page_has_captions_a_run_header_and_aligned_table_headers(tmp_path):
    meta = {"config": "seed = 0\nprofile = \"cmos45\"\n", "seed": 0, "neurotoken": "9.9", "torch": "2.x",
            "date": "2026-11-30 03:00 UTC"}
    report.write_report(Results(RESULTS.tables, {**RESULTS.artifacts, "meta": meta}), tmp_path)
    page = (tmp_path / "report.html").read_text()
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, re.S)
    assert len(captions) == len(report.PLOTS) and all(len(c) > 80 and ".png" not in c for c in captions)
    for fact in ("2026-11-30 03:00 UTC", "<dd>0</dd>", "<dd>9.9</dd>", "<dd>2.x</dd>", "profile = &quot;cmos45&quot;"):
        assert fact in page
    header = re.findall(r"<th>", page)
    assert all(len(re.findall(r"<td>", tr)) == len(header) for tr in re.findall(r"<tr>(.*?)</tr>", page)[1:])
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}" in style.replace("\n", "")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_screenshots_render_each_section_of_the_report_small(tmp_path):
    from PIL import Image

    report.write_report(RESULTS, tmp_path / "run")
    paths = report.screenshots(tmp_path / "run", tmp_path / "img")
    assert [p.name for p in paths] == ["report_header.png", "report_table.png", "report_pareto.png",
                                       "report_layer-energy.png", "report_rasters.png"]
    for p in paths:
        with Image.open(p) as image:
            assert image.width >= 300 and image.height >= 40
        assert p.stat().st_size < 300_000


def test_layer_energy_starts_each_task_on_a_new_row():
    rows = [priced_row("digits", "MLP", False, 0.9, 1e-7), priced_row("digits", "SNN T=2", True, 0.9, 1e-7),
            priced_row("digits", "SNN T=4", True, 0.9, 1e-7), priced_row("text", "RWKV", False, 2.3, 1e-7)]
    fig = report.layer_energy_figure(Results({"rows": rows}, {"rasters": {}}))
    titles = [ax.get_title(loc="left") if ax.get_visible() else None for ax in fig.axes]
    assert titles == ["digits: MLP", "digits: SNN T=2", "digits: SNN T=4", None, "text: RWKV", None]


def test_screenshots_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no report.html"):
        report.screenshots(tmp_path, tmp_path / "img", browser="/bin/true")
    report.write_report(RESULTS, tmp_path)
    with pytest.raises(RuntimeError, match="could not render"):
        report.screenshots(tmp_path, tmp_path / "img", browser="/bin/false")


def test_a_diverged_model_nan_quality_does_not_break_the_plot():
    assert report.quality_limits([float("nan"), float("inf")], False) == report.quality_limits([0.5], False)
    rows = [priced_row("text", "RWKV", False, float("nan"), 1e-7, higher_is_better=False, metric="bits/byte"),
            priced_row("text", "SpikeGPT", True, 2.3, 2e-7, higher_is_better=False, metric="bits/byte")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (ax,) = visible_axes(report.pareto_figure(Results({"rows": rows}, {"rasters": {}})))
    assert all(math.isfinite(v) for v in ax.get_ylim())


def test_each_task_baseline_is_named_under_the_table_and_in_the_page(tmp_path):
    rows = [{**r, "baseline": "logistic regression", "baseline_value": 0.615} if r["task"] == "digits" else r
            for r in ROWS]
    results = Results({"rows": rows}, RESULTS.artifacts)
    assert report.baseline_note(results) == "non-neural baselines on the same split: digits: logistic regression 61.50%"
    assert report.baseline_note(RESULTS) is None
    assert "logistic regression 61.50%" in report.table(results).caption
    report.write_report(results, tmp_path)
    assert "<p>non-neural baselines on the same split: digits: logistic regression 61.50%</p>" in \
        (tmp_path / "report.html").read_text()
