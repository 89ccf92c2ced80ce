"""The ``neurotoken`` command: a thin typer shell over the library.

Errors print one line (``error: ...``) and exit 1; ``--debug`` (before or after the command)
shows the traceback instead and switches on :func:`neurotoken.debug`. Training commands
checkpoint every fit under ``fits/<name>`` of their run folder, so Ctrl-C stops with a message
saying how to resume.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup


class _Group(TyperGroup):
    """Accepts the global ``--debug`` anywhere before ``--`` (e.g. after the command's name)."""

    def parse_args(self, ctx, args):
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            args = ["--debug", *(a for i, a in enumerate(args) if i >= end or a != "--debug")]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_Group, help="neurotoken: neuromorphic NPEs for intra- and inter-token processing, with "
                  "honest energy accounting.\n\nStart with `neurotoken run` (the main job) or `neurotoken list`.",
                  add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)  # logs: no squeeze
err = Console(stderr=True)
_DEBUG = {"on": False}


def _version(show: bool) -> None:
    if show:
        from . import __version__

        console.print(f"neurotoken {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="show full tracebacks instead of one-line errors "
                                        "and raise at the first non-finite tensor, naming the module"),
             version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="print the version and exit")):
    _DEBUG["on"] = debug
    if debug:
        from . import debug as switch

        switch(True)


def friendly(command):
    """Turn any exception of ``command`` into one red line and exit code 1 (unless --debug)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001  (every failure becomes one clear line)
            if _DEBUG["on"]:
                raise
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)  # the message verbatim
            raise typer.Exit(1) from None
    return wrapper


def _set_threads(threads: int) -> None:
    """torch threads (numba kernels follow torch's count); 0 leaves the default."""
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


THREADS_HELP = "torch threads, numba kernels follow (0: the default)"


def _new_run_dir(out: Path, name: str) -> Path:
    """A fresh timestamped folder ``out/<YYYYmmdd-HHMMSS>-<name>`` (suffixed when taken)."""
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    suffix = itertools.count(1)
    while path.exists():
        path = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{next(suffix)}"
    path.mkdir(parents=True)
    return path


DEVICE_HELP = "train on this device: cpu, cuda, cuda:N or mps (default: the CPU)"
DATA_HELP = "NAME=PATH: train on a real dataset's local folder (repeatable; NAME: cifar10, speech_commands, shd, " \
            "ssc, nmnist, dvs_gesture, text; `neurotoken list` shows which experiment takes which)"


def _config_for(experiment: str, config_file: Path | None, assignments: list[str], resume: Path | None,
                quick: bool = False, data: list[str] = (), device: str | None = None):
    """(Experiment, config): from the resumed run's config.toml, or defaults (or the quick config)
    + the keys of the file + --data + --set; then --device on every fit of the config."""
    from .experiments import EXPERIMENTS
    from .experiments import config as cfg

    exp = EXPERIMENTS.get(experiment)
    if resume is not None:
        if config_file is not None or assignments or quick or data:
            raise ValueError("--resume takes the run's own config.toml; drop --config, --set, --data and --quick")
        config = cfg.load(exp.config, resume / "config.toml")
    else:
        base = exp.config.quick() if quick else exp.config()
        if config_file is not None:
            base = cfg.load(exp.config, config_file, base)
        config = cfg.with_overrides(base, [*cfg.data_assignments(exp.config, experiment, list(data)), *assignments])
    return exp, config if device is None else _on_device(experiment, config, device)


def _ready(config) -> None:
    """Refuse a config that cannot run yet (a real-data recipe without its data folder)."""
    if hasattr(config, "require_data"):
        config.require_data()


def _on_device(experiment: str, config, device: str):
    """``config`` with every fit on ``device``, which this machine must have."""
    from torch import nn

    from .experiments import config as cfg
    from .learning.bptt import FitConfig, resolve_device

    FitConfig(device=device)  # the name's form
    resolve_device(device, nn.Module())  # its presence
    keys = cfg.fit_keys(config)
    if not keys:
        raise ValueError(f"experiment {experiment!r} trains nothing by BPTT, so --device does not apply to it")
    return cfg.with_overrides(config, [f"{k}.device={device}" for k in keys])


def _train(run_dir: Path, resume: bool, work, how: str):
    """Run ``work(run_dir, resume)`` (training and writing results); on Ctrl-C say where the
    checkpoints are and ``how`` to go on."""
    try:
        return work(run_dir, resume)
    except KeyboardInterrupt:
        err.print(f"\ninterrupted: checkpoints are in {run_dir / 'fits'}\n{how}", markup=False, highlight=False,
                  soft_wrap=True)
        raise typer.Exit(130) from None


def _short(value) -> bool:
    """A value worth a table cell: a scalar of at most 40 characters (not a generated sample)."""
    return isinstance(value, (int, float, str, bool, type(None))) and len(str(value)) <= 40


def _scalar_table(title: str, rows: list[dict]) -> Table:
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if all(_short(r.get(k)) for r in rows)]
    table = Table(title=title)
    for k in keys:
        table.add_column(k, justify="right")
    for r in rows:
        table.add_row(*("-" if r.get(k) is None else f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])
                        for k in keys))
    return table


def _epoch_line(record: dict) -> None:
    """One line per trained epoch: the fit, its mean loss and throughput."""
    console.print(f"{record['fit']} epoch {record['epoch']}: loss {record['loss']:.4g}, "
                  f"{record['samples_per_s']:.4g} samples/s, {record['tokens_per_s']:.4g} tokens/s",
                  markup=False, highlight=False)


def _line(row: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items() if _short(v))


def _main_line(row: dict) -> str:
    """A main-job row as it arrives: a trained model, or that model estimated on a chip."""
    if "chip" in row:
        return f"  on {row['chip']}: {row['energy_j']:.3g} J/{row['per']}, {row['cores']} cores" + \
            ("" if row["fits"] else " (does not fit)")
    return (f"{row['model']}: {row['metric']} {row['value']:.4g}, {row['energy_j']:.3g} J/{row['unit']}, "
            f"trained in {row['train_seconds']:.1f} s")


def _finish(run_dir: Path, results, main: bool = False) -> None:
    """Write results.json (and the report of a main-job result) and print its tables and where."""
    from .experiments import report

    if main:
        console.print(report.table(results))
        if results.tables.get("hardware"):
            console.print(report.hardware_table(results))
        for path in report.write_report(results, run_dir):
            console.print(f"wrote {path}", markup=False)
        return
    (run_dir / "results.json").write_text(json.dumps(results.to_json(), indent=1))
    for name, rows in results.tables.items():
        console.print(_scalar_table(f"{run_dir.name}: {name}", rows))
    console.print(f"wrote {run_dir / 'results.json'}", markup=False)


@app.command()
@friendly
def run(quick: bool = typer.Option(False, help="tiny models, one epoch each: checks the machinery in a minute"),
        paradigm: list[str] = typer.Option([], "--paradigm", "-p", help="only these paradigms (repeatable): "
                                           "intra-token, keyword-spotting, image-conv, segmentation, inter-token-ssm, "
                                           "inter-token-attention, language, spiking-mamba, spiking-bert"),
        config_file: Path = typer.Option(None, "--config", help="TOML file of the main job's config (see --dump)"),
        assignments: list[str] = typer.Option([], "--set", help="override a config key, e.g. --set intra.Ts=[4]"),
        out: Path = typer.Option(Path("runs"), help="parent folder of the run folder"),
        resume: Path = typer.Option(None, help="continue an interrupted run folder"),
        threads: int = typer.Option(1, help=THREADS_HELP + "; one is fastest for these small models"),
        data: list[str] = typer.Option([], "--data", help=DATA_HELP),
        device: str = typer.Option(None, help=DEVICE_HELP),
        hardware: str = typer.Option(None, help="estimate every model on these chips too: a comma list of chip "
                                     "names (loihi, analog_pcm, digital_accelerator) or .toml chip files"),
        dump: bool = typer.Option(False, help="print the config as TOML and exit")) -> None:
    """The main job: every paradigm's conventional model and neuromorphic twin, one comparison table.

    Trains on embedded data (digits, pixel-sequence digits, QPSK demodulation, standard-library
    text), counts every model's operations and energy, prints the Table-II-style comparison and
    writes runs/<timestamp>-main/ with results.json, report.html and PNG plots.

    Examples:

      neurotoken run

      neurotoken run --quick -p intra-token

      neurotoken run --set profile=loihi --set "intra.Ts=[4]"

      neurotoken run --data text=~/corpus --device cuda

      neurotoken run --hardware loihi,analog_pcm,digital_accelerator
    """
    from dataclasses import replace

    from .experiments import config as cfg

    exp, config = _config_for("main", config_file, assignments, resume, quick, data, device)
    if paradigm:
        if resume is not None:
            raise ValueError("--resume takes the run's own config.toml; drop --paradigm")
        config = replace(config, paradigms=tuple(paradigm))
    if hardware is not None:
        if resume is not None:
            raise ValueError("--resume takes the run's own config.toml; drop --hardware")
        config = replace(config, hardware=tuple(c.strip() for c in hardware.split(",")))
    if dump:
        console.print(cfg.dumps(config), markup=False, highlight=False)
        return
    _set_threads(threads)
    run_dir = resume or _new_run_dir(out, "main")
    (run_dir / "config.toml").write_text(cfg.dumps(config))
    console.print(f"run folder: {run_dir}", markup=False)
    _train(run_dir, resume is not None, lambda folder, again: _finish(folder, exp.run(
        config, run_dir=folder, resume=again, progress=True, on_epoch=_epoch_line,
        on_start=lambda name: console.rule(f"[bold]{name}"),
        on_result=lambda r: console.print(_main_line(r), markup=False)), main=True), f"resume with: neurotoken run --resume {run_dir}")


@app.command("list")
@friendly
def list_experiments() -> None:
    """List the experiments and what each does (train one with `neurotoken train NAME`).

    Example: neurotoken list
    """
    from .experiments import EXPERIMENTS

    table = Table(show_header=False, box=None)
    for name in EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        data = exp.config.data_fields() if hasattr(exp.config, "data_fields") else {}
        takes = f" (--data {', '.join(f'{k}=PATH' for k in data)})" if data else ""
        table.add_row(f"[bold]{name}[/bold]", escape(exp.description + takes))
    console.print(table)


@app.command()
@friendly
def train(experiment: str = typer.Argument(..., help="an experiment name from `neurotoken list`"),
          config_file: Path = typer.Option(None, "--config", help="TOML file overriding the defaults"),
          assignments: list[str] = typer.Option([], "--set", help="override one key, e.g. --set fit.epochs=5"),
          out: Path = typer.Option(Path("runs"), help="parent folder of the run folder"),
          resume: Path = typer.Option(None, help="continue an interrupted run folder"),
          threads: int = typer.Option(0, help=THREADS_HELP),
          quick: bool = typer.Option(False, help="the experiment's quick config (tiny models, seconds): checks "
                                                 "the machinery; --config and --set apply on top"),
          data: list[str] = typer.Option([], "--data", help=DATA_HELP),
          device: str = typer.Option(None, help=DEVICE_HELP),
          dump: bool = typer.Option(False, help="print the resolved config as TOML and exit")) -> None:
    """Train one experiment; writes runs/<timestamp>-<experiment>/ (config.toml, results.json, checkpoints).

    Examples:

      neurotoken train digits --set "Ts=[4]" --set "encodings=['rate']"

      neurotoken train language --config lm.toml

      neurotoken train digits --dump > digits.toml

      neurotoken train stdp-digits --quick

      neurotoken train shd --data shd=~/data/SHD --device cuda
    """
    from .experiments import config as cfg

    exp, config = _config_for(experiment, config_file, assignments, resume, quick, data, device)
    if dump:
        console.print(cfg.dumps(config), markup=False, highlight=False)
        return
    _ready(config)
    _set_threads(threads)
    run_dir = resume or _new_run_dir(out, experiment)
    (run_dir / "config.toml").write_text(cfg.dumps(config))
    console.print(f"run folder: {run_dir}", markup=False)
    _train(run_dir, resume is not None, lambda folder, again: _finish(folder, exp.run(
        config, run_dir=folder, resume=again, progress=True, on_epoch=_epoch_line,
        on_result=lambda r: console.print(_line(r), markup=False, highlight=False)), main=experiment == "main"),
        f"resume with: neurotoken train {experiment} --resume {run_dir}")


@app.command()
@friendly
def sweep(experiment: str = typer.Argument(..., help="an experiment name from `neurotoken list`"),
          param: list[str] = typer.Option(..., "--param", help="KEY=v1,v2,... (repeat for a grid)"),
          config_file: Path = typer.Option(None, "--config", help="TOML file overriding the defaults"),
          assignments: list[str] = typer.Option([], "--set", help="fixed overrides, e.g. --set fit.epochs=5"),
          out: Path = typer.Option(Path("runs"), help="parent folder of the run folder"),
          threads: int = typer.Option(0, help=THREADS_HELP),
          data: list[str] = typer.Option([], "--data", help=DATA_HELP),
          device: str = typer.Option(None, help=DEVICE_HELP)) -> None:
    """Run an experiment once per value (grid over several --param); one table with the swept keys.

    A tuple-valued key (such as the digits sweep's Ts) takes each value as a one-element tuple.

    Examples:

      neurotoken sweep digits --param Ts=1,2,4,8 --set "encodings=['rate']"

      neurotoken sweep language --param d_model=64,128 --param fit.lr=1e-3,3e-3
    """
    import typing

    from .experiments import config as cfg

    exp, base = _config_for(experiment, config_file, assignments, None, data=data, device=device)
    grid = []
    for p in param:
        key, sep, values = p.partition("=")
        if not sep or not values:
            raise ValueError(f"--param expects KEY=v1,v2,..., got {p!r}")
        tuple_valued = typing.get_origin(cfg.field_type(exp.config, key.strip())) is tuple
        grid.append([(key.strip(), f"[{v.strip()}]" if tuple_valued else v.strip()) for v in values.split(",")])
    from .experiments import Results

    points = list(itertools.product(*grid))
    configs = [cfg.with_overrides(base, [f"{k}={v}" for k, v in point]) for point in points]  # all valid first
    for config in configs:
        _ready(config)
    _set_threads(threads)
    run_dir = _new_run_dir(out, f"{experiment}-sweep")
    (run_dir / "config.toml").write_text(cfg.dumps(base))
    console.print(f"run folder: {run_dir} ({len(points)} points)", markup=False)
    tables: dict[str, list[dict]] = {}
    for i, (point, config) in enumerate(zip(points, configs)):
        console.rule(escape(", ".join(f"{k}={v}" for k, v in point)))
        point_dir = run_dir / f"point-{i:03d}"
        point_dir.mkdir()
        (point_dir / "config.toml").write_text(cfg.dumps(config))
        results = _train(point_dir, False, lambda folder, again: exp.run(
            config, run_dir=folder, resume=again, progress=True, on_epoch=_epoch_line,
            on_result=lambda r: console.print(_line(r), markup=False, highlight=False)),
            f"a sweep does not resume; finish this point with: neurotoken train {experiment} --resume {point_dir}")
        swept = {k: str(cfg.parse_value(v)) for k, v in point}
        for name, rows in results.tables.items():
            tables.setdefault(name, []).extend({**swept, **r} for r in rows)
    _finish(run_dir, Results(tables))


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="a folder written by `neurotoken run`"),
           screenshots: Path = typer.Option(None, "--screenshots", help="also write PNG screenshots of each "
                                            "section of report.html into this folder (needs Chromium)")) -> None:
    """Print a run's comparison table and redraw its plots and report.html from results.json.

    Examples:

      neurotoken report runs/20261123-101500-main

      neurotoken report runs/20261123-101500-main --screenshots docs/img
    """
    from .experiments import report as rep

    _finish(run_dir, rep.load_results(run_dir), main=True)
    if screenshots is not None:
        for path in rep.screenshots(run_dir, screenshots):
            console.print(f"wrote {path}", markup=False)


@app.command()
@friendly
def export(model: Path = typer.Argument(..., help="a model file, e.g. "
                                       "runs/<run>/models/intra-token-neuromorphic.safetensors"),
           fmt: str = typer.Option("nir", "--format", help="export format: nir"),
           output: Path = typer.Option(None, "--out", help="output file (default: MODEL with the format's suffix)"),
           force: bool = typer.Option(False, "--force", help="overwrite an existing output file (never the model)"),
           approximate_subtract: bool = typer.Option(
               False, help="write subtract-reset LIFs as reset-to-zero (NIR has no exact node; spikes differ "
                           "after overshoots)")) -> None:
    """Export a saved model (written by `neurotoken run` or `train`) as a NIR graph for other frameworks.

    NIR holds spiking SNN classifiers: the graph holds the network body and readout; the input
    encoder, T and dt go in its metadata. It loads in snnTorch (snntorch.import_from_nir) with the
    same spike trains. Other models are refused, naming the layer that has no NIR node.

    Example: neurotoken export runs/<run>/models/intra-token-neuromorphic.safetensors --format nir
    """
    from .export import export_model

    if fmt != "nir":
        raise ValueError(f"unknown --format {fmt!r}; expected one of: nir")
    path = export_model(model, output or model.with_suffix(".nir"), format=fmt, force=force,
                        approximate_subtract=approximate_subtract)
    console.print(f"wrote {path}")


@app.command()
@friendly
def bench(out: Path = typer.Option(Path("runs"), help="parent folder of the run folder <timestamp>-bench "
                                                     "(results.json, results.png)"),
          case: list[str] = typer.Option([], "--case", help="only these cases (repeatable): lif, scan, "
                                                              "selective-scan, reset, attention, blocksparse, "
                                                              "event-linear, snn-step"),
          repeats: int = typer.Option(7, help="timed calls per case (median reported)"),
          threads: int = typer.Option(0, help=THREADS_HELP),
          peers: bool = typer.Option(True, help="include snnTorch, SpikingJelly, Norse when installed"),
          quick: bool = typer.Option(False, help="tiny sizes: checks the machinery, times mean nothing"),
          device: str = typer.Option("cpu", help="cpu, or cuda[:N]: GPU-sized cases (lif, scan, selective-scan, "
                                                 "blocksparse, attention, event-linear, snn-step) against the "
                                                 "peers' GPU paths")) -> None:
    """Time the fused/scan paths against sequential loops and the peers, on the same inputs.

    Examples:

      neurotoken bench --threads 1

      neurotoken bench --case attention --threads 1

      neurotoken bench --case event-linear --case snn-step --threads 1

      neurotoken bench --device cuda --case lif
    """
    from . import bench as b

    _set_threads(threads)
    results = b.run_all(quick=quick, repeats=repeats, peers=peers, cases=tuple(case) or None, device=device)
    m = results["machine"]
    console.print(f"{m.get('device_name', m['device'])}: copy bandwidth {m['copy_bandwidth_Bps'] / 1e9:.1f} GB/s "
                  f"(timed beside the cases; alone {m['copy_bandwidth_alone_Bps'] / 1e9:.1f} GB/s), "
                  f"{m['torch_threads']} torch threads, load average {m['load_avg'][0]:.2f} on {m['cores']} cores")
    extra = {"saved_bytes_per_neuron_step": ("saved B/neuron-step", lambda v: f"{v:.3g}"),
             "peak_bytes": ("peak MiB", lambda v: f"{v / 2**20:.0f}")}
    for case in dict.fromkeys(r["case"] for r in results["rows"]):
        rows = [r for r in results["rows"] if r["case"] == case]
        shown = [k for k in extra if any(r.get(k) is not None for r in rows)]
        beside = rows[0].get("copy_Bps")
        table = Table(title=case if beside is None else f"{case} (copy beside it {beside / 1e9:.1f} GB/s)")
        for col in ("implementation", "median ms", "vs best peer", "of bandwidth bound", *(extra[k][0] for k in shown)):
            table.add_column(col, justify="left" if col == "implementation" else "right")
        for r in rows:
            ratio = "-" if r["vs_best_peer"] is None else f"{r['vs_best_peer']:.2f}x"
            cells = ["-" if r.get(k) is None else extra[k][1](r[k]) for k in shown]
            table.add_row(r["impl"], f"{1e3 * r['median_s']:.2f}", ratio, f"{100 * r['fraction_of_bound']:.0f}%",
                          *cells)
        console.print(table)
    for peer, why in results["skipped_peers"].items():
        console.print(f"skipped {peer}: {why}", markup=False)
    for path in b.save(results, _new_run_dir(out, "bench")):
        console.print(f"wrote {path}", markup=False)


def main() -> None:
    app()
