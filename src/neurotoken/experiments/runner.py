"""The experiment contract and its one runner.

A recipe is ``run(config, *, on_result=None, run_dir=None, resume=False, progress=False) -> Results``
(:class:`Recipe`), written as a body ``(config, runner) -> Results`` wrapped by :func:`recipe`.
The :class:`Runner` does the loop every recipe shares: seed -> build -> fit -> evaluate -> count ->
row. Each fit gets a stable folder named by its role, ``run_dir/fits/<name>``, so an interrupted
run resumes whatever order its models are built in.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import zoo
from ..learning.bptt import FitConfig, Trainer
from ..learning.checkpoint import atomic_write

C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


@dataclass
class Results:
    """What a recipe returns: named tables (lists of row dicts) and artifacts (files, figure data, tensors)."""

    tables: dict[str, list[dict]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain JSON values: tensors as nested lists, paths as strings."""
        def plain(v):
            if isinstance(v, torch.Tensor):
                return v.tolist()
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
        return {"tables": plain(self.tables), "artifacts": plain(self.artifacts)}

    @classmethod
    def from_json(cls, data: dict) -> Results:
        return cls(dict(data.get("tables", {})), dict(data.get("artifacts", {})))


class Recipe(Protocol):
    def __call__(self, config: Any = None, *, on_result: Callable[[dict], None] | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, progress: bool = False,
                 on_epoch: Callable[[dict], None] | None = None) -> Results: ...


@dataclass
class Trained:
    """A model after its fit: the per-epoch (or per-step) losses and the training wall time."""

    model: nn.Module
    losses: list[float]
    seconds: float
    model_file: Path | None = None  # the saved weights (loadable by neurotoken.zoo.load_model)
    epochs: list[dict] = field(default_factory=list)  # per epoch: epoch, loss, samples_per_s, tokens_per_s

    @property
    def samples_per_s(self) -> float | None:
        """Mean training throughput over the epochs trained in this process (None when none were)."""
        return _mean_rate(self.epochs, "samples_per_s")

    @property
    def tokens_per_s(self) -> float | None:
        """Targets per second (one per sample for a classifier, one per position for a language model)."""
        return _mean_rate(self.epochs, "tokens_per_s")


def _mean_rate(epochs: list[dict], key: str) -> float | None:
    return sum(e[key] for e in epochs) / len(epochs) if epochs else None


def _sizes(x, y) -> tuple[int, int]:
    """(samples, targets) of one epoch over tensors (x, y), a Dataset or a DataLoader of (x, y) pairs."""
    if isinstance(x, torch.Tensor):
        return len(x), y.numel()
    dataset = x.dataset if isinstance(x, DataLoader) else x
    samples = len(dataset)
    return samples, samples * torch.as_tensor(dataset[0][1]).numel()


class Throughput:
    """``on_epoch`` of a Trainer: records samples/s and tokens/s of each epoch (wall time since the
    previous epoch ended) and passes each record to ``report``."""

    def __init__(self, samples: int, targets: int, report: Callable[[dict], None] | None = None):
        self.samples, self.targets, self.report = samples, targets, report
        self.records: list[dict] = []
        self.clock = time.perf_counter()

    def __call__(self, epoch: int, loss: float) -> None:
        now = time.perf_counter()
        seconds, self.clock = max(now - self.clock, 1e-9), now
        record = {"epoch": epoch, "loss": loss, "samples_per_s": self.samples / seconds,
                  "tokens_per_s": self.targets / seconds}
        self.records.append(record)
        if self.report is not None:
            self.report(record)


def slug(name: str) -> str:
    """A folder name for a fit's role: ``"SNN rate T=2"`` -> ``"snn-rate-t-2"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "fit"


class Runner:
    """seed -> build -> fit -> (the recipe evaluates and counts) -> row, for one run of a recipe.

    ``run_dir`` (optional) holds ``fits/<name>/`` per trained model (checkpoints, metrics.jsonl and
    the accumulated training seconds); with ``resume`` each fit continues from its newest checkpoint.
    ``on_epoch(record)`` receives each BPTT epoch's fit name, loss, samples/s and tokens/s.
    """

    def __init__(self, on_result: Callable[[dict], None] | None = None, run_dir: str | Path | None = None,
                 resume: bool = False, progress: bool = False, on_epoch: Callable[[dict], None] | None = None):
        self.on_result, self.resume, self.progress, self.on_epoch = on_result, resume, progress, on_epoch
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.tables: dict[str, list[dict]] = {}
        self._fits: set[str] = set()

    def fit_dir(self, name: str) -> Path | None:
        """The folder of the fit called ``name`` (None without a run folder); names are unique per run."""
        key = slug(name)
        if key in self._fits:
            raise ValueError(f"two fits of one run share the name {name!r}")
        self._fits.add(key)
        return None if self.run_dir is None else self.run_dir / "fits" / key

    def train(self, name: str, build: Callable[[], M] | tuple[str, dict],
              fit: FitConfig | Callable[[M], list[float]], x=None, y: torch.Tensor | None = None, *,
              seed: int = 0, collate_fn: Callable | None = None, spec: tuple[str, dict] | None = None) -> Trained:
        """Seed torch with ``seed``, build the model, then fit it: by BPTT with a :class:`FitConfig`
        (checkpointed in :meth:`fit_dir`) on tensors (x, y), a Dataset (batched by ``collate_fn``) or a
        DataLoader, or by calling ``fit(model)``. A model fitted on tensors comes back on their device
        (where the recipe evaluates them); one fitted on a Dataset stays on ``fit.device``.

        ``build`` is a callable or the (registered class name, keyword arguments) of a
        :mod:`neurotoken.zoo` model; a zoo model trained in a run folder is saved there as
        ``models/<name>.safetensors``, as is a callable's model given its zoo ``spec`` (e.g. an analog copy).
        """
        folder = self.fit_dir(name)
        torch.manual_seed(seed)  # the same initial draw whatever ran before
        model = build() if callable(build) else zoo.build(*build)
        timing = None if folder is None else folder / "train_seconds.json"
        before = json.loads(timing.read_text()) if self.resume and timing is not None and timing.is_file() else 0.0
        start = time.perf_counter()
        try:
            if isinstance(fit, FitConfig):
                report = None if self.on_epoch is None else lambda record: self.on_epoch({"fit": name, **record})
                throughput = Throughput(*_sizes(x, y), report)
                trainer = Trainer(model, fit, run_dir=folder, progress=self.progress, on_epoch=throughput)
                losses = trainer.fit(x, y, resume=self.resume, collate_fn=collate_fn)
                if isinstance(x, torch.Tensor):
                    model.to(x.device)
            else:
                losses = fit(model)
        finally:
            seconds = before + time.perf_counter() - start
            if timing is not None:
                timing.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(timing, json.dumps(seconds).encode())
        saved = None
        spec = spec if callable(build) else build
        if self.run_dir is not None and spec is not None:
            with torch.random.fork_rng(devices=[]):  # what runs next draws as it would without the file
                saved = zoo.save_model(self.run_dir / "models" / f"{slug(name)}.safetensors", *spec, model)
        return Trained(model, losses, seconds, saved, throughput.records if isinstance(fit, FitConfig) else [])

    def emit(self, row: dict, table: str = "rows") -> dict:
        """Add ``row`` to ``table`` and pass it to ``on_result``."""
        self.tables.setdefault(table, []).append(row)
        if self.on_result is not None:
            self.on_result(row)
        return row

    def results(self, **artifacts) -> Results:
        return Results(self.tables, artifacts)


def recipe(config_class: type[C]) -> Callable[[Callable[..., Results]], Recipe]:
    """Turn ``body(config, runner, **extra) -> Results`` into a :class:`Recipe` over ``config_class``
    (the default config when none is given); recipe-specific keywords pass through to ``body``."""
    def wrap(body: Callable[..., Results]) -> Recipe:
        @functools.wraps(body)
        def run(config: C | None = None, *, on_result: Callable[[dict], None] | None = None,
                run_dir: str | Path | None = None, resume: bool = False, progress: bool = False,
                on_epoch: Callable[[dict], None] | None = None, **extra) -> Results:
            config = config_class() if config is None else config
            if not isinstance(config, config_class):
                raise TypeError(f"config must be a {config_class.__name__}, got {type(config).__name__}")
            return body(config, Runner(on_result, run_dir, resume, progress, on_epoch), **extra)
        del run.__wrapped__  # its signature is the recipe's, not the body's
        return run
    return wrap


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its config dataclass (with a ``quick()`` classmethod) and its recipe."""

    config: type
    run: Recipe

    @property
    def description(self) -> str:
        return (self.config.__doc__ or "").strip().splitlines()[0]
