"""The ``neurotoken`` command: a thin typer shell over the library."""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help="neurotoken: neuromorphic NPEs for intra- and inter-token processing.",
                  no_args_is_help=False, add_completion=False)
console = Console()


def digits_table(rows: list[dict]) -> Table:
    table = Table(title="Digits (sklearn, 25% held out): test accuracy")
    for col in ("model", "encoding", "T", "test accuracy", "train s"):
        table.add_column(col, justify="right" if col not in ("model", "encoding") else "left")
    for r in rows:
        table.add_row(r["model"], r["encoding"], "-" if r["T"] is None else str(r["T"]),
                      f"{100 * r['test_accuracy']:.2f}%", f"{r['train_seconds']:.1f}")
    return table


@app.command()
def run() -> None:
    """The main job: train the digits SNN for each encoding and T, and its conventional twin.

    Example: neurotoken run
    """
    from .experiments import DigitsSweep, run_digits_sweep

    config = DigitsSweep()
    total = 1 + len(config.Ts) * len(config.encodings)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("training", total=total)

        def done(row):
            bar.update(task, advance=1, description=f"{row['model']} {row['encoding']} T={row['T']}: "
                                                    f"{100 * row['test_accuracy']:.1f}%")

        rows = run_digits_sweep(config, on_result=done)
    console.print(digits_table(rows))


@app.command("list")
def list_experiments() -> None:
    """List the experiments and what each does."""
    from .experiments import EXPERIMENTS

    for name in EXPERIMENTS.names():
        console.print(f"[bold]{name:<22}[/bold] {EXPERIMENTS.get(name).description}")


@app.command()
def bench(out: str = typer.Option("runs/bench", help="folder for results.json and results.png"),
          repeats: int = typer.Option(7, help="timed calls per case (median reported)"),
          threads: int = typer.Option(0, help="torch and numba threads (0: leave as is)"),
          peers: bool = typer.Option(True, help="include snnTorch, SpikingJelly, Norse when installed"),
          quick: bool = typer.Option(False, help="tiny sizes: checks the machinery, times mean nothing")) -> None:
    """Time the fused/scan paths against sequential loops and the peers, on the same inputs.

    Example: neurotoken bench --threads 1
    """
    from pathlib import Path

    from . import bench as b

    if threads:
        import torch

        torch.set_num_threads(threads)
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    results = b.run_all(quick=quick, repeats=repeats, peers=peers)
    m = results["machine"]
    console.print(f"copy bandwidth {m['copy_bandwidth_Bps'] / 1e9:.1f} GB/s, {m['torch_threads']} torch threads, "
                  f"load average {m['load_avg'][0]:.2f} on {m['cores']} cores")
    for case in dict.fromkeys(r["case"] for r in results["rows"]):
        table = Table(title=case)
        for col in ("implementation", "median ms", "vs best peer", "of bandwidth bound"):
            table.add_column(col, justify="left" if col == "implementation" else "right")
        for r in (r for r in results["rows"] if r["case"] == case):
            ratio = "-" if r["vs_best_peer"] is None else f"{r['vs_best_peer']:.2f}x"
            table.add_row(r["impl"], f"{1e3 * r['median_s']:.2f}", ratio, f"{100 * r['fraction_of_bound']:.0f}%")
        console.print(table)
    for peer, why in results["skipped_peers"].items():
        console.print(f"skipped {peer}: {why}")
    for path in b.save(results, Path(out)):
        console.print(f"wrote {path}")


def main() -> None:
    app()
