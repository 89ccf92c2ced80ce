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


def cells(row: dict) -> tuple[str, ...]:
    """One results row as the strings of :data:`COLUMNS`."""
    quality = f"{100 * row['value']:.2f}%" if row["metric"] == "accuracy" else f"{row['value']:.4g}"
    nan = lambda v: v != v  # noqa: E731
    sparsity = "-" if nan(row["sparsity"]) else f"{row['sparsity']:.2f}"  # nan: no NPE
    energy = f"{_si(row['energy_j'], 'J')}/{row['unit'][:3]}" + ("*" if row.get("unpriced") else "")
    return (row["task"], row["model"], f"{quality} {row['metric']}", energy, _si(row["acs"]), _si(row["macs"]),
            sparsity, _si(row["bytes"], "B"), "-" if nan(row["energy_vs_twin"]) else f"{row['energy_vs_twin']:.2f}x")


def _profile(results: Results) -> str:
    return results.tables["rows"][0]["profile"]


def unpriced_note(results: Results) -> str | None:
    """The footnote for energies marked *: operations the profile does not price."""
    keys = sorted({k for r in results.tables["rows"] for k in r.get("unpriced", [])})
    return None if not keys else (f"* leaves out operations the {_profile(results)!r} profile does not price: "
                                  f"{', '.join(keys)}")


def table(results: Results) -> Table:
    """The Table-II-style comparison, one line per model."""
    t = Table(title=f"Conventional vs neuromorphic, energy under {_profile(results)!r} (per inference or token)")
    for col in COLUMNS:
        t.add_column(col, justify="left" if col in ("task", "model", "quality") else "right")
    for row in results.tables["rows"]:
        t.add_row(*cells(row))
    t.caption = unpriced_note(results)
    return t


def _tasks(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["task"], []).append(row)
    return out


def _front(rows: list[dict]) -> list[bool]:
    """Pareto front over (energy, quality): no other model is as cheap and as good, one strictly."""
    sign = 1 if rows[0]["higher_is_better"] else -1
    return pareto_front([r["energy_j"] for r in rows], [sign * r["value"] for r in rows])


def plot_pareto(results: Results, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    groups = _tasks(results.tables["rows"])
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, (task, rows) in zip(axes[0], groups.items()):
        front = _front(rows)
        for r, on in zip(rows, front):
            ax.scatter(1e9 * r["energy_j"], r["value"], s=60, marker="o" if r["neuromorphic"] else "s",
                       color="tab:orange" if r["neuromorphic"] else "tab:blue", edgecolor="k" if on else "none",
                       label=r["model"] + (" (Pareto)" if on else ""))
        pts = sorted((1e9 * r["energy_j"], r["value"]) for r, on in zip(rows, front) if on)
        ax.plot(*zip(*pts), "k--", lw=0.8)
        energies = [1e9 * r["energy_j"] for r in rows]
        ax.set_xscale("log")
        ax.set_xlim(min(energies) / 1.5, max(energies) * 1.5)
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 3, 5)))
        for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
            axis(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.margins(y=0.25)
        ax.set_xlabel(f"energy per {rows[0]['unit']} (nJ, {_profile(results)}, log scale)")
        ax.set_ylabel(rows[0]["metric"] + ("" if rows[0]["higher_is_better"] else " (lower is better)"))
        ax.set_title(task, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layer_energy(results: Results, path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = results.tables["rows"]
    ratios = [max(1, len(r["layer_energy_j"])) for r in rows]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.1 + 0.28 * sum(len(r["layer_energy_j"]) for r in rows)),
                             squeeze=False, gridspec_kw={"height_ratios": ratios})
    for ax, r in zip(axes[:, 0], rows):
        names = list(r["layer_energy_j"]) or ["(none)"]
        values = list(r["layer_energy_j"].values()) or [0.0]
        ax.barh(names, [1e9 * v for v in values], color="tab:orange" if r["neuromorphic"] else "tab:blue")
        ax.invert_yaxis()
        ax.tick_params(labelsize=6)
        ax.set_title(f"{r['task']}: {r['model']}", fontsize=8, loc="left")
    axes[-1, 0].set_xlabel(f"energy per inference or token (nJ, {_profile(results)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_rasters(results: Results, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rasters = {k: v for k, v in results.artifacts["rasters"].items() if v}
    fig, axes = plt.subplots(1, max(1, len(rasters)), figsize=(4.2 * max(1, len(rasters)), 3.4), squeeze=False)
    for ax, (paradigm, r) in zip(axes[0], rasters.items()):
        if r["events"]:
            steps, neurons = zip(*r["events"])
            ax.scatter(steps, neurons, s=4, c=r["values"], cmap="viridis", marker="|")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(-0.5, r["steps"] - 0.5)
        ax.set_ylim(-0.5, r["neurons"] - 0.5)
        ax.set_xlabel("step (virtual time or token)")
        ax.set_ylabel("neuron")
        ax.set_title(f"{paradigm}: {r['layer']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


PLOTS = {"pareto.png": plot_pareto, "layer_energy.png": plot_layer_energy, "rasters.png": plot_rasters}


def write_html(results: Results, images: list[Path], path: Path) -> Path:
    """One self-contained page: the table and every plot inline (base64 PNG)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>"
                   for r in results.tables["rows"])
    figures = "".join(f'<figure><img alt="{p.name}" src="data:image/png;base64,'
                      f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{p.name}</figcaption></figure>'
                      for p in images)
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>neurotoken run</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:right}}td:nth-child(-n+3){{text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>neurotoken: conventional vs neuromorphic</h1><p>Energy under the {html.escape(_profile(results))} profile,
per inference (per token for the language model); ACs, MACs and bytes per the same unit.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{html.escape(unpriced_note(results) or "")}</p>
{figures}</body></html>
""")
    return path


def write_report(results: Results, run_dir: str | Path) -> list[Path]:
    """results.json, the PNG plots and report.html under ``run_dir``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "results.json"
    data.write_text(json.dumps(results.to_json(), indent=1))
    images = [plot(results, run_dir / name) for name, plot in PLOTS.items()]
    return [data, *images, write_html(results, images, run_dir / "report.html")]


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


__all__ = ["COLUMNS", "PLOTS", "cells", "unpriced_note", "table", "plot_pareto", "plot_layer_energy", "plot_rasters",
           "write_html", "write_report", "load_results"]
