"""The ``neurotoken`` command: a thin typer shell over the library."""

from __future__ import annotations

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


def main() -> None:
    app()
