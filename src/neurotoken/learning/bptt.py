"""Teacher-forced BPTT with surrogate gradients: a seeded, resumable trainer.

Determinism: the batch order of epoch e comes from a generator seeded with (seed, e) and the
global torch RNG (stochastic encoders, Bernoulli spikes) is saved in every checkpoint, so an
interrupted-then-resumed run reproduces the uninterrupted losses and weights bit for bit on CPU.
Interrupts: Ctrl-C during a step takes effect when the step ends (a second Ctrl-C at once; not
under ``torch.distributed``, whose ranks could then stop at different steps); any
``KeyboardInterrupt`` saves a checkpoint of the last completed step unless it landed while the
weights were being updated, in which case the newest checkpoint already on disk is the resume point.
Distributed: when ``torch.distributed`` is initialised (e.g. by ``torchrun``), the model is
wrapped in DDP, each rank takes its slice of every global batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .checkpoint import (atomic_write, discard_incomplete, list_checkpoints, newest_valid_checkpoint, restore,
                         save_checkpoint)

SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 0
    grad_clip: float | None = None  # max global gradient norm
    seed: int = 0
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end); needs run_dir
    keep_last: int = 3

    def __post_init__(self):
        checked = {
            "epochs": _checks.positive_int("epochs", self.epochs),
            "batch_size": _checks.positive_int("batch_size", self.batch_size),
            "lr": _checks.number("lr", self.lr, low=0.0, low_open=True),
            "weight_decay": _checks.number("weight_decay", self.weight_decay, low=0.0),
            "schedule": _checks.choice("schedule", self.schedule, SCHEDULES),
            "warmup_steps": _checks.positive_int("warmup_steps", self.warmup_steps, low=0),
            "grad_clip": None if self.grad_clip is None else _checks.number("grad_clip", self.grad_clip,
                                                                            low=0.0, low_open=True),
            "seed": _checks.positive_int("seed", self.seed, low=0),
            "checkpoint_every": _checks.positive_int("checkpoint_every", self.checkpoint_every, low=0),
            "keep_last": _checks.positive_int("keep_last", self.keep_last),
        }
        for name, value in checked.items():  # store plain Python numbers (numpy scalars become int/float)
            object.__setattr__(self, name, value)

    def trajectory(self) -> dict:
        """The fields that shape the trained result (all but the checkpoint file policy)."""
        return {k: v for k, v in asdict(self).items() if k not in ("checkpoint_every", "keep_last")}


def learning_rate(config: FitConfig, step: int, total_steps: int) -> float:
    """Linear warm-up to lr, then constant or cosine decay to 0 at total_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the targets (classification or next-token, logits last)."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def check_labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse integer class labels of another shape than the logits' leading axes or outside
    [0, classes), both read from one forward of ``x[:1]`` (eval mode, no grad, the RNG left
    untouched): once, before training."""
    if y.is_floating_point() or y.dtype == torch.bool:
        return
    training = model.training
    model.eval()
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        shape = model(x[:1]).shape
    model.train(training)
    classes = shape[-1]
    if tuple(y.shape[1:]) != tuple(shape[1:-1]):
        raise ValueError(f"y must have shape {(len(y), *shape[1:-1])} to label the model's outputs "
                         f"{(len(x), *shape[1:])} (logits last), got {tuple(y.shape)}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        raise ValueError(f"y must hold class labels in [0, {classes - 1}] (the model has {classes} outputs), "
                         f"got values from {low} to {high}")


@contextmanager
def _deferred_interrupts(enabled: bool = True) -> Iterator[Callable[[], bool]]:
    """While active, a first Ctrl-C is only recorded (the returned callable reports it) and a second
    one interrupts at once; a no-op unless ``enabled`` (distributed ranks could stop at different
    steps), outside the main thread or under a custom SIGINT handler."""
    pending: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return

    def record(signum, frame):
        pending.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, record)
    try:
        yield lambda: bool(pending)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _callable(name: str, fn, optional: bool = True) -> None:
    if not (callable(fn) or (optional and fn is None)):
        raise TypeError(f"{name} must be callable{' or None' if optional else ''}, got {type(fn).__name__}")


class Trainer:
    """AdamW + schedule + clipping over in-memory tensors (x, y); checkpoints, JSONL metrics, resume.

    ``run_dir`` (optional) receives ``checkpoints/`` and ``metrics.jsonl``; ``progress`` shows a
    rich progress bar with the running loss; ``on_epoch(epoch, mean_loss)`` is called per epoch;
    ``evaluate(model) -> {name: value}`` runs after each epoch (model in eval mode, no grad) and
    its metrics are logged with the step. After ``fit``, ``start_step`` is the step it began at
    (0 from scratch, ``total_steps`` when it resumed a finished fit and trained nothing).
    """

    def __init__(self, model: nn.Module, config: FitConfig = FitConfig(), loss_fn=cross_entropy,
                 run_dir: str | os.PathLike | None = None, progress: bool = False,
                 on_epoch: Callable[[int, float], None] | None = None,
                 evaluate: Callable[[nn.Module], dict[str, float]] | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(config, FitConfig):
            hint = "; build one with FitConfig(**config)" if isinstance(config, dict) else ""
            raise TypeError(f"config must be a FitConfig, got {type(config).__name__}{hint}")
        _callable("loss_fn", loss_fn, optional=False)
        _callable("on_epoch", on_epoch)
        _callable("evaluate", evaluate)
        if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"run_dir must be a path (str or os.PathLike) or None, got {type(run_dir).__name__}")
        self.model, self.config, self.loss_fn = model, config, loss_fn
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress, self.on_epoch, self.evaluate = progress, on_epoch, evaluate
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.net = nn.parallel.DistributedDataParallel(model) if self.distributed else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.last_checkpoint: Path | None = None
        self.start_step = self.total_steps = 0
        # the last completed step: its RNG state, whether it is on disk, and whether the weights are
        # being updated right now (then the model matches no step and an interrupt saves nothing)
        self._rng, self._saved_step, self._updating = torch.get_rng_state(), None, False

    # -- files (rank 0 only) ---------------------------------------------------------------------
    def _save(self, state: dict) -> None:
        if self.run_dir is not None and self.rank == 0 and state["step"] != self._saved_step:
            self.last_checkpoint = save_checkpoint(self.run_dir / "checkpoints", state["step"], self.model,
                                                   self.optimizer, state, self.config.keep_last, self._rng)
            self._saved_step = state["step"]

    def _log(self, record: dict) -> None:
        if self.run_dir is not None and self.rank == 0:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _start(self, resume: bool, samples: int) -> dict:
        """Fresh state, or with ``resume`` the newest valid checkpoint's (model, optimizer and RNG
        restored); prepares run_dir: incomplete saves removed, metrics.jsonl cut back to the state."""
        torch.manual_seed(self.config.seed)
        state = {"step": 0, "losses": [], "epoch_total": 0.0, "config": self.config.trajectory(),
                 "samples": samples}
        self._saved_step = None
        if self.run_dir is None:
            return state
        directory = self.run_dir / "checkpoints"
        found = newest_valid_checkpoint(directory) if resume else None
        if found is not None:
            path, record, tensors, skipped = found
            for problem in skipped:
                warnings.warn(f"skipped a damaged checkpoint ({problem}); resuming from {path.name}",
                              RuntimeWarning, stacklevel=3)
            self._check_same_run(record["trainer"], state)
            state = {**restore(record, tensors, self.model, self.optimizer), "config": state["config"],
                     "samples": samples}  # checkpoints older than these records gain them
            self.last_checkpoint, self._saved_step = path, state["step"]
        elif not resume and list_checkpoints(directory):
            raise ValueError(f"run_dir {self.run_dir} already holds checkpoints of an earlier fit: pass "
                             "resume=True to continue it, or give an empty run_dir")
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            discard_incomplete(directory)
            self._cut_metrics(state["step"])
        return state

    def _check_same_run(self, saved: dict, state: dict) -> None:
        """Refuse to resume a run trained with another config or on another number of samples."""
        before = saved.get("config", state["config"])  # checkpoints older than this record skip the check
        changed = [f"{k} ({before.get(k)!r} -> {v!r})" for k, v in state["config"].items() if before.get(k) != v]
        if changed:
            raise ValueError(f"config differs from the run being resumed in {self.run_dir}: "
                             f"{', '.join(changed)}; resume with the run's own FitConfig or use a new run_dir")
        if saved.get("samples", state["samples"]) != state["samples"]:
            raise ValueError(f"x has {state['samples']} samples but the run being resumed in {self.run_dir} "
                             f"was trained on {saved['samples']}; resume with the same data")

    def _cut_metrics(self, step: int) -> None:
        """Atomically drop metrics.jsonl lines logged after ``step`` (and a torn last line)."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        keep = [line for line in lines if _logged_step(line) <= step]
        if len(keep) != len(lines):
            atomic_write(path, "".join(line + "\n" for line in keep).encode())

    # -- training ----------------------------------------------------------------------------------
    def fit(self, x: torch.Tensor, y: torch.Tensor, resume: bool = False) -> list[float]:
        """Train; returns the mean loss of each epoch. With ``resume``, continue from the newest valid
        checkpoint in run_dir (from scratch if it holds none; a finished fit trains no further)."""
        _checks.tensor("x", x, min_dim=1, finite=True)
        _checks.tensor("y", y, min_dim=1, finite=True)
        if len(x) == 0:
            raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        if resume and self.run_dir is None:
            raise ValueError("resume=True needs a run_dir to resume from")
        if self.loss_fn is cross_entropy:
            check_labels(self.model, x, y)
        cfg = self.config
        per_epoch = -(-len(x) // cfg.batch_size)
        self.total_steps = total = cfg.epochs * per_epoch
        state = self._start(resume, len(x))
        self.start_step, self._rng, self._updating = state["step"], torch.get_rng_state(), False
        label = "training" if self.run_dir is None else self.run_dir.name
        bar = _Bar(total, state["step"], label) if self.progress and self.rank == 0 else None
        self.net.train()
        with _deferred_interrupts(enabled=not self.distributed) as interrupted:
            try:
                while state["step"] < total:
                    self._train_step(x, y, state, per_epoch, total)
                    if bar is not None:
                        bar.update(state)
                    if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                        self._save(state)
                    if interrupted():
                        raise KeyboardInterrupt
                self._save(state)
            except KeyboardInterrupt:
                if not self._updating:
                    self._save(state)
                raise
            finally:
                if bar is not None:
                    bar.close()
        if interrupted():  # Ctrl-C during the final save: the fit is complete and saved, then stop
            raise KeyboardInterrupt
        return state["losses"]

    def _train_step(self, x, y, state, per_epoch, total):
        cfg, step = self.config, state["step"]
        epoch, i = divmod(step, per_epoch)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
        idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        local = idx.tensor_split(self.world)[self.rank]
        lr = learning_rate(cfg, step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss_fn(self.net, x[local], y[local])
        batch_loss = loss.detach() * len(local)
        if self.distributed:
            dist.all_reduce(batch_loss)
        if not torch.isfinite(batch_loss):
            where = self.last_checkpoint or "none saved"
            raise FloatingPointError(f"loss became {batch_loss.item()} at step {step} (epoch {epoch}); "
                                     f"stopped; last good checkpoint: {where}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self._updating = True
        self.optimizer.step()
        state["step"] = step + 1
        state["epoch_total"] += batch_loss.item()
        state["last_loss"] = batch_loss.item() / len(idx)
        self._log({"step": step + 1, "epoch": epoch, "loss": state["last_loss"], "lr": lr})
        if i == per_epoch - 1:
            state["losses"].append(state["epoch_total"] / len(x))
            state["epoch_total"] = 0.0
            if self.on_epoch is not None:
                self.on_epoch(epoch, state["losses"][-1])
            if self.evaluate is not None:
                self.model.eval()
                with torch.no_grad():
                    metrics = self.evaluate(self.model)
                self.model.train()
                self._log({"step": step + 1, "epoch": epoch, **metrics})
        self._rng = torch.get_rng_state()
        self._updating = False


def _logged_step(line: str) -> float:
    """The step of a metrics.jsonl line; infinity for a line torn by a crash."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


class _Bar:
    """A rich progress bar with ETA and the running loss (imported only when asked for)."""

    def __init__(self, total: int, done: int, label: str):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeRemainingColumn(), TextColumn("loss {task.fields[loss]}"))
        self.task = self.progress.add_task("train", total=total, completed=done, loss="-")
        self.progress.start()

    def update(self, state: dict) -> None:
        self.progress.update(self.task, completed=state["step"], loss=f"{state['last_loss']:.4f}")

    def close(self) -> None:
        self.progress.stop()


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FitConfig = FitConfig(),
                   on_epoch: Callable[[int, float], None] | None = None, *,
                   run_dir: str | os.PathLike | None = None, resume: bool = False,
                   progress: bool = False) -> list[float]:
    """Minimise cross-entropy (checkpoints under ``run_dir`` when given); returns the mean loss per epoch."""
    return Trainer(model, config, run_dir=run_dir, progress=progress, on_epoch=on_epoch).fit(x, y, resume=resume)


def __getattr__(name: str):
    """``accuracy`` moved to :mod:`neurotoken.metrics`; the old name works, with a warning, for one release."""
    if name == "accuracy":
        warnings.warn("accuracy moved to neurotoken.metrics; import it from there", DeprecationWarning, stacklevel=2)
        from ..metrics import accuracy
        return accuracy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FitConfig", "Trainer", "fit_classifier", "check_labels", "learning_rate", "cross_entropy"]
