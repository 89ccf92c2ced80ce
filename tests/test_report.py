import json
import shutil

import pytest

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
