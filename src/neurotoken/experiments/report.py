"""Reports of a main-job run: the comparison table (rich), PNG plots and one self-contained HTML page.

Everything is drawn from the run's :class:`~neurotoken.experiments.runner.Results` (its
``results.json``) alone (``neurotoken report RUN_DIR`` redraws it):
accuracy/quality vs energy per task with the Pareto front, per-layer energy bars and spike
rasters of one input. Matplotlib is imported here only (``import neurotoken`` stays light).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from rich.table import Table

from ..accounting.pareto import pareto_front
from .runner import Results

COLUMNS = ("task", "model", "quality", "energy", "ACs", "MACs", "sparsity", "bytes", "vs twin")


def _si(value: float, unit: str = "") -> str:
    """3 significant digits with an SI prefix: 1.23e-8 J -> '12.3 nJ', 45488 -> '45.5 k'."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"),
                          (1e-12, "p")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def _quality_text(row: dict) -> str:
    return f"{100 * row['value']:.2f}%" if row["metric"] == "accuracy" else f"{row['value']:.4g}"


def cells(row: dict) -> tuple[str, ...]:
    """One results row as the strings of :data:`COLUMNS`."""
    nan = lambda v: v != v  # noqa: E731
    sparsity = "-" if nan(row["sparsity"]) else f"{row['sparsity']:.2f}"  # nan: no NPE
    energy = f"{_si(row['energy_j'], 'J')}/{row['unit'][:3]}" + ("*" if row.get("unpriced") else "")
    return (row["task"], row["model"], f"{_quality_text(row)} {row['metric']}", energy, _si(row["acs"]), _si(row["macs"]),
            sparsity, _si(row["bytes"], "B"), "-" if nan(row["energy_vs_twin"]) else f"{row['energy_vs_twin']:.2f}x")


def _profile(results: Results) -> str:
    return results.tables["rows"][0]["profile"]


def unpriced_note(results: Results) -> str | None:
    """The footnote for energies marked *: operations the profile does not price."""
    keys = sorted({k for r in results.tables["rows"] for k in r.get("unpriced", [])})
    return None if not keys else (f"* leaves out operations the {_profile(results)!r} profile does not price: "
                                  f"{', '.join(keys)}")


def baseline_note(results: Results) -> str | None:
    """The non-neural baseline of each task that has one (rows' ``baseline``, ``baseline_value``)."""
    seen = {}
    for r in results.tables["rows"]:
        if r.get("baseline"):
            seen.setdefault(r["task"], f"{r['baseline']} {_quality_text({**r, 'value': r['baseline_value']})}")
    return None if not seen else "non-neural baselines on the same split: " + "; ".join(
        f"{task}: {text}" for task, text in seen.items())


def _notes(results: Results) -> str:
    return "\n".join(n for n in (unpriced_note(results), baseline_note(results)) if n)


def table(results: Results) -> Table:
    """The Table-II-style comparison, one line per model."""
    t = Table(title=f"Conventional vs neuromorphic, energy under {_profile(results)!r} (per inference or token)")
    for col in COLUMNS:
        t.add_column(col, justify="left" if col in ("task", "model", "quality") else "right")
    for row in results.tables["rows"]:
        t.add_row(*cells(row))
    t.caption = _notes(results) or None
    return t


HARDWARE_COLUMNS = ("task", "model", "chip", "quality", "fits", "cores", "energy", "latency")


def hardware_cells(row: dict) -> tuple[str, ...]:
    """One row of the "hardware" table (a model estimated on a chip) as the strings of :data:`HARDWARE_COLUMNS`."""
    energy = f"{_si(row['energy_j'], 'J')}/{row['per'][:3]}" + ("*" if row.get("unpriced") else "")
    latency = "-" if row["latency_s"] is None else f"{_si(row['latency_s'], 's')}/{row['per'][:3]}"
    return (row["task"], row["model"], row["chip"], f"{_quality_text(row)} {row['metric']}",
            "yes" if row["fits"] else "no", str(row["cores"]), energy, latency)


def hardware_note(results: Results) -> str:
    """The footnote of the hardware table: what each chip leaves unpriced."""
    chips = {}
    for r in results.tables["hardware"]:
        chips.setdefault(r["chip"], set()).update(r.get("unpriced", []))
    missing = "; ".join(f"{c}: {', '.join(sorted(k))}" for c, k in chips.items() if k)
    return ("* leaves out operations the chip does not price (" + missing + "); latency - : the chip file "
            "gives no timings") if missing else "latency - : the chip file gives no timings"


def hardware_table(results: Results) -> Table:
    """Every model on every chip of the run: fits, cores, energy and latency per inference or token."""
    t = Table(title="Models on chips (nt.hardware.estimate, per inference or token)")
    for col in HARDWARE_COLUMNS:
        t.add_column(col, justify="left" if col in ("task", "model", "chip", "quality") else "right")
    for row in results.tables["hardware"]:
        t.add_row(*hardware_cells(row))
    t.caption = hardware_note(results)
    return t


def _tasks(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["task"], []).append(row)
    return out


def _front(rows: list[dict]) -> list[bool]:
    """Pareto front over (energy, quality) of the priced models (energy > 0): no other model is as
    cheap and as good, one strictly."""
    sign = 1 if rows[0]["higher_is_better"] else -1
    priced = [r for r in rows if r["energy_j"] > 0]
    on = iter(pareto_front([r["energy_j"] for r in priced], [sign * r["value"] for r in priced]) if priced else [])
    return [r["energy_j"] > 0 and next(on) for r in rows]


def _bounded(metric: str) -> bool:
    """Metrics that live in [0, 1] (accuracy, symbol error rate)."""
    return metric == "accuracy" or metric.startswith("SER")


def quality_limits(values: list[float], bounded: bool) -> tuple[float, float]:
    """A y-range around ``values`` at least 0.1 wide (10% of their size when unbounded), so that a
    tiny gap does not fill the axis; bounded metrics stay within [0, 1]; non-finite values are left out."""
    values = [v for v in values if math.isfinite(v)] or [0.5]
    lo, hi = min(values), max(values)
    half = max(0.65 * (hi - lo), 0.05 if bounded else 0.05 * max(abs(lo), abs(hi)) or 0.5)
    bottom, top = (lo + hi) / 2 - half, (lo + hi) / 2 + half
    if bounded:
        shift = min(0.0, 1.0 - top) + max(0.0, -bottom)
        bottom, top = max(0.0, bottom + shift), min(1.0, top + shift)
    return bottom, top


def log_ticks(lo: float, hi: float) -> list[float]:
    """At least three round ticks in [lo, hi] (0 < lo < hi): 1-2-5 steps, finer when the range is narrow."""
    decades = range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
    for subs in ((1,), (1, 2, 5), (1, 2, 3, 5, 7), range(1, 10)):
        ticks = [float(f"{m * 10.0 ** k:.12g}") for k in decades for m in subs if lo <= m * 10.0 ** k <= hi]
        if len(ticks) >= 3:
            return ticks
    return [float(f"{lo * (hi / lo) ** f:.3g}") for f in (0.1, 0.5, 0.9)]


def _grid(n: int):
    """(rows, columns) of a grid of ``n`` panels, two per row."""
    return (n + 1) // 2, min(2, n)


def _task_panels(groups: dict):
    """A figure with one panel per task (two per row, unused panels hidden) and (axes, (task, rows)) pairs."""
    from matplotlib.figure import Figure

    nrows, ncols = _grid(len(groups))
    fig = Figure(figsize=(5.2 * ncols, 4.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    return fig, zip(axes.flat, groups.items())


def pareto_figure(results: Results):
    """Quality vs energy per task (log energy axis, Pareto front dashed, values labelled); hollow
    markers leave out unpriced operations; models priced at 0 J sit at the axis edge, marked."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    fig, panels = _task_panels(_tasks(results.tables["rows"]))
    for ax, (task, rows) in panels:
        priced = [1e9 * r["energy_j"] for r in rows if r["energy_j"] > 0] or [1.0]
        lo, hi = min(priced) / 2, max(priced) * 2
        front = _front(rows)
        for i, (r, on) in enumerate(zip(rows, front)):
            color = "tab:orange" if r["neuromorphic"] else "tab:blue"
            free = r["energy_j"] <= 0
            x = lo if free else 1e9 * r["energy_j"]
            marker = "<" if free else "o" if r["neuromorphic"] else "s"
            if on:  # a black ring marks the Pareto front
                ax.scatter(x, r["value"], s=220, marker=marker, facecolors="none", edgecolors="k", linewidths=1.2,
                           zorder=2, clip_on=False)
            ax.scatter(x, r["value"], s=90, marker=marker, zorder=3, clip_on=False, linewidths=1.8,
                       facecolors="none" if free or r.get("unpriced") else color, edgecolors=color,
                       label=r["model"] + (" (Pareto)" if on else " (not priced)" if free else ""))
            ax.annotate(_quality_text(r) + ("\nnot priced (0 J)" if free else ""), (x, r["value"]),
                        xytext=(7, 5 if i % 2 == 0 else -14), textcoords="offset points", fontsize=9)
        pts = sorted((1e9 * r["energy_j"], r["value"]) for r, on in zip(rows, front) if on)
        if len(pts) > 1:
            ax.plot(*zip(*pts), "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ticks = log_ticks(lo, hi)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(*quality_limits([r["value"] for r in rows], _bounded(rows[0]["metric"])))
        ax.tick_params(labelsize=9)
        ax.set_xlabel(f"energy per {rows[0]['unit']} (nJ, {_profile(results)} profile, log scale)", fontsize=10)
        ax.set_ylabel(rows[0]["metric"] + ("" if rows[0]["higher_is_better"] else " (lower is better)"), fontsize=10)
        ax.set_title(task, fontsize=11)
        handles, _ = ax.get_legend_handles_labels()
        if any(r.get("unpriced") and r["energy_j"] > 0 for r in rows):
            handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="grey", mew=1.8,
                                  label="hollow: leaves out unpriced operations (*)"))
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return fig


CHIP_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def hardware_figure(results: Results):
    """Quality vs energy per task on every chip of the run: one marker shape per chip, filled for
    the neuromorphic model and hollow for the conventional one (log energy axis)."""
    from matplotlib.lines import Line2D

    rows = results.tables["hardware"]
    chips = list(dict.fromkeys(r["chip"] for r in rows))
    fig, panels = _task_panels(_tasks(rows))
    for ax, (task, task_rows) in panels:
        priced = [1e9 * r["energy_j"] for r in task_rows if r["energy_j"] > 0] or [1.0]
        lo, hi = min(priced) / 2, max(priced) * 2
        for r in task_rows:
            color = f"C{chips.index(r['chip'])}"
            ax.scatter(max(1e9 * r["energy_j"], lo), r["value"], s=80, marker=CHIP_MARKERS[chips.index(r["chip"])
                       % len(CHIP_MARKERS)], facecolors=color if r["neuromorphic"] else "none", edgecolors=color,
                       linewidths=1.6, zorder=3, clip_on=False)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ticks = log_ticks(lo, hi)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_ylim(*quality_limits([r["value"] for r in task_rows], _bounded(task_rows[0]["metric"])))
        ax.tick_params(labelsize=9)
        ax.set_xlabel(f"energy per {task_rows[0]['per']} on the chip (nJ, log scale)", fontsize=10)
        ax.set_ylabel(task_rows[0]["metric"] + ("" if task_rows[0]["higher_is_better"] else " (lower is better)"),
                      fontsize=10)
        ax.set_title(task, fontsize=11)
    handles = [Line2D([], [], ls="", marker=CHIP_MARKERS[i % len(CHIP_MARKERS)], color=f"C{i}", label=c)
               for i, c in enumerate(chips)]
    handles += [Line2D([], [], ls="", marker="o", color="grey", label="filled: neuromorphic"),
                Line2D([], [], ls="", marker="o", mfc="none", mec="grey", label="hollow: conventional")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=9, frameon=False)
    return fig


def layer_energy_figure(results: Results):
    """Energy per layer of every model on one shared linear scale (nJ), values at the bar ends; two
    panels a row, each task starting a row."""
    from matplotlib.figure import Figure

    rows = results.tables["rows"]
    ncols = 2 if len(rows) > 1 else 1
    slots = [slot for task in _tasks(rows).values() for slot in task + [None] * (len(task) % ncols)]
    nrows = len(slots) // ncols
    lines = [max([1] + [len(r["layer_energy_j"]) for r in slots[i * ncols:(i + 1) * ncols] if r])
             for i in range(nrows)]  # bars in the tallest panel of each row
    per_line = max(0.13, min(0.22, (14.5 - 1.2 * nrows) / sum(lines)))  # ~1600 px tall at most, unless huge
    fig = Figure(figsize=(13, 1.2 * nrows + per_line * sum(lines)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, gridspec_kw={"height_ratios": lines})
    for ax, r in zip(axes.flat, slots):
        if r is None:
            ax.set_visible(False)
            continue
        names = list(r["layer_energy_j"]) or ["(none)"]
        values = [1e9 * v for v in r["layer_energy_j"].values()] or [0.0]
        bars = ax.barh(names, values, color="tab:orange" if r["neuromorphic"] else "tab:blue")
        ax.bar_label(bars, [_si(1e-9 * v, "J") for v in values], padding=3, fontsize=8)
        ax.invert_yaxis()
        ax.tick_params(labelsize=9, labelbottom=True)
        ax.set_xlabel(f"energy per {r['unit']} (nJ, {r['profile']} profile)", fontsize=9)
        ax.set_title(f"{r['task']}: {r['model']}", fontsize=10, loc="left")
    return fig


def raster_figure(results: Results):
    """Spikes of one input per paradigm (neuron vs step); several spike values are coloured, with a
    discrete colour bar."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rasters = {k: v for k, v in results.artifacts["rasters"].items() if v}
    nrows, ncols = _grid(max(1, len(rasters)))
    fig = Figure(figsize=(5.8 * ncols, 4.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(rasters):]:
        ax.set_visible(False)
    for ax, (paradigm, r) in zip(axes.flat, rasters.items()):
        grid = np.full((r["neurons"], r["steps"]), np.nan)
        for (step, neuron), value in zip(r["events"], r["values"]):
            grid[neuron, step] = value
        levels = sorted(set(r["values"])) or [1.0]
        edges = [levels[0] - 0.5] + [(a + b) / 2 for a, b in zip(levels, levels[1:])] + [levels[-1] + 0.5]
        cmap = ListedColormap(colormaps["viridis" if len(levels) > 1 else "Greys"](
            np.linspace(0.0, 0.9, len(levels)) if len(levels) > 1 else [1.0]))
        image = ax.imshow(grid, aspect="auto", interpolation="nearest", origin="lower", cmap=cmap,
                          norm=BoundaryNorm(edges, len(levels)),
                          extent=(-0.5, r["steps"] - 0.5, -0.5, r["neurons"] - 0.5))
        if len(levels) > 1:
            bar = fig.colorbar(image, ax=ax, ticks=levels, fraction=0.05)
            bar.set_label("spike value", fontsize=9)
            bar.ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=9)
        ax.set_xlabel("step (virtual time or token)", fontsize=10)
        ax.set_ylabel("neuron", fontsize=10)
        total = r.get("total_neurons", r["neurons"])
        shown = f" (first {r['neurons']} of {total} neurons)" if total > r["neurons"] else ""
        ax.set_title(f"{paradigm}: {r['layer']}{shown}", fontsize=10)
    return fig


DPI = 110


def _png(figure):
    def plot(results: Results, path: Path) -> Path:
        figure(results).savefig(path, dpi=DPI)
        return path
    plot.__doc__ = f"Draw :func:`{figure.__name__}` of ``results`` into the PNG file ``path`` at {DPI} dpi."
    return plot


plot_pareto, plot_layer_energy, plot_rasters = _png(pareto_figure), _png(layer_energy_figure), _png(raster_figure)
plot_hardware = _png(hardware_figure)
PLOTS = {"pareto.png": plot_pareto, "layer_energy.png": plot_layer_energy, "rasters.png": plot_rasters}
HARDWARE_PLOTS = {"hardware.png": plot_hardware}  # drawn when the run estimated its models on chips
CAPTIONS = {
    "pareto.png": "Quality against energy, one panel per task, under the {profile} profile (energy per inference, "
                  "per token for the language models; log scale). Squares: conventional models; circles: their "
                  "neuromorphic twins; a black ring and the dashed line mark the Pareto-optimal models (no other is "
                  "as cheap and as good). Hollow markers leave out operations the profile does not price (* in the table); a model "
                  "the profile prices at 0 J is drawn at the left edge, marked \"not priced\". Each point is "
                  "labelled with its value; one training seed per model.",
    "layer_energy.png": "Where each model spends its energy: energy per layer (nJ per inference, per token for the "
                        "language models) under the {profile} profile, on one scale shared by every panel.",
    "rasters.png": "Spikes of one input: for each paradigm, the first layer of its neuromorphic model that emits "
                   "spikes, neuron against step (virtual time for the digits SNN, tokens for the sequence models); "
                   "colours give the value of multi-level and ternary spikes.",
    "hardware.png": "Quality against energy on each chip (nt.hardware.estimate on the counted inputs; per inference, "
                    "per token for the language models; log scale): one marker shape and colour per chip, filled for "
                    "the neuromorphic model, hollow for the conventional one. A model a chip prices at 0 J (none of its "
                    "operations has an energy on that chip) sits at the left edge; the table marks with * energies "
                    "that leave out unpriced operations.",
}


def _header(results: Results) -> str:
    """The run's date, seed, versions and config (TOML), as far as its results record them."""
    meta = results.artifacts.get("meta") or {}
    facts = {"date": meta.get("date"), "seed": meta.get("seed"), "neurotoken": meta.get("neurotoken"),
             "torch": meta.get("torch"), "energy profile": _profile(results)}
    items = "".join(f"<dt>{k}</dt><dd>{html.escape(str(v)) if v is not None else 'not recorded'}</dd>"
                    for k, v in facts.items())
    config = (f"<details><summary>config (TOML)</summary><pre>{html.escape(meta['config'])}</pre></details>"
              if meta.get("config") else "")
    return f"<dl>{items}</dl>{config}"


def _hardware_html(results: Results) -> str:
    """The models-on-chips table of the page (empty without a "hardware" table)."""
    if not results.tables.get("hardware"):
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in HARDWARE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in hardware_cells(r)) + "</tr>"
                   for r in results.tables["hardware"])
    return (f'<section id="chips"><h2>Models on chips</h2><table><thead><tr>{head}</tr></thead><tbody>{body}'
            f"</tbody></table><p>{html.escape(hardware_note(results))}</p></section>")


def write_html(results: Results, images: list[Path], path: Path) -> Path:
    """One self-contained page: a header (date, seed, versions, config), the table and every plot
    inline (base64 PNG) with its caption."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>"
                   for r in results.tables["rows"])
    profile = _profile(results)
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in _notes(results).split("\n") if n)
    figures = "".join(f'<figure id="{p.stem}"><img alt="{p.name}" src="data:image/png;base64,'
                      f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>'
                      f'{html.escape(CAPTIONS.get(p.name, p.stem).format(profile=profile))}</figcaption></figure>'
                      for p in images)
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>neurotoken run</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:nth-child(-n+3),th:nth-child(-n+3){{text-align:left}}
dl{{display:grid;grid-template-columns:max-content auto;gap:2px 1em}}dt{{font-weight:bold}}dd{{margin:0}}
pre{{column-width:24em;column-rule:1px solid #ddd}}figure{{margin:2em 0}}figcaption{{max-width:70em}}img{{max-width:100%}}</style></head><body>
<header id="header"><h1>neurotoken: conventional vs neuromorphic</h1>{_header(results)}</header>
<section id="table"><p>Energy under the {html.escape(profile)} profile, per inference (per token for the language model);
ACs, MACs and bytes per the same unit.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}
</section>{_hardware_html(results)}{figures}</body></html>
""")
    return path


def write_report(results: Results, run_dir: str | Path) -> list[Path]:
    """results.json, the PNG plots and report.html under ``run_dir``; returns the paths written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "results.json"
    data.write_text(json.dumps(results.to_json(), indent=1))
    plots = {**PLOTS, **(HARDWARE_PLOTS if results.tables.get("hardware") else {})}
    images = [plot(results, run_dir / name) for name, plot in plots.items()]
    return [data, *images, write_html(results, images, run_dir / "report.html")]


def screenshots(run_dir: str | Path, out_dir: str | Path, browser: str | None = None, width: int = 1500) -> list[Path]:
    """PNG screenshots of each section of ``run_dir/report.html`` (header with the config, table, one
    per plot, the models-on-chips table when the run has one) as ``out_dir/report_<section>.png``, rendered by headless Chromium (``browser``, default
    the ``chromium`` on PATH) in a window ``width`` pixels wide, cropped to the content."""
    import shutil
    import subprocess
    import tempfile

    from PIL import Image, ImageChops

    browser = browser or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("screenshots need Chromium on PATH (Debian: apt-get install chromium)")
    page = Path(run_dir) / "report.html"
    if not page.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no report.html: run `neurotoken report {run_dir}` first")
    text = page.read_text().replace("<details>", "<details open>")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        hardware = ("chips", *(Path(name).stem for name in HARDWARE_PLOTS)) if 'id="chips"' in text else ()
        for section in ("header", "table", *(Path(name).stem for name in PLOTS), *hardware):
            only = Path(tmp) / f"{section}.html"
            only.write_text(text.replace("</head>", f"<style>body>*:not(#{section}){{display:none}}</style></head>"))
            shot = Path(tmp) / f"{section}.png"
            done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                   "--no-first-run", "--disable-background-networking", f"--window-size={width},2600",
                                   f"--screenshot={shot}", only.as_uri()], capture_output=True, text=True, timeout=120)
            if done.returncode or not shot.is_file():
                raise RuntimeError(f"{browser} could not render {page} (exit {done.returncode}): "
                                   f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
            with Image.open(shot) as image:
                image = image.convert("RGB")
                box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
                right, bottom = (box or (0, 0, *image.size))[2:]
                image = image.crop((0, 0, min(image.width, right + 24), min(image.height, bottom + 24)))
                path = out_dir / f"report_{section.replace('_', '-')}.png"
                image.quantize(colors=128).save(path, optimize=True)
            written.append(path)
    return written


def load_results(run_dir: str | Path) -> Results:
    """The results of a main-job run folder (also as written before :class:`Results`: profile, rows,
    rasters at the top level), with a clear error when it is missing or not a main-job run."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no results.json: not a `neurotoken run` folder")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from None
    if isinstance(results, dict) and {"profile", "rows", "rasters"} <= set(results):
        return Results({"rows": [{"profile": results["profile"], **r} for r in results["rows"]]},
                       {"rasters": results["rasters"]})
    if not (isinstance(results, dict) and "rows" in results.get("tables", {})
            and "rasters" in results.get("artifacts", {})):
        raise ValueError(f"{str(path)!r} lacks the table rows and the artifact rasters of a main-job result")
    return Results.from_json(results)


__all__ = ["COLUMNS", "PLOTS", "CAPTIONS", "HARDWARE_COLUMNS", "HARDWARE_PLOTS", "hardware_figure", "hardware_table",
           "hardware_cells", "plot_hardware", "pareto_figure", "layer_energy_figure", "raster_figure", "quality_limits", "log_ticks", "cells", "unpriced_note", "table",
           "plot_pareto", "plot_layer_energy", "plot_rasters", "write_html", "write_report", "load_results", "screenshots"]
