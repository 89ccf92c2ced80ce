"""Teacher-forced BPTT with surrogate gradients: a seeded, resumable trainer.

Determinism: the batch order of epoch e comes from a generator seeded with (seed, e) and the
global torch RNG (stochastic encoders, Bernoulli spikes) is saved in every checkpoint, so an
interrupted-then-resumed run reproduces the uninterrupted losses bit for bit on CPU.
Distributed: when ``torch.distributed`` is initialised (e.g. by ``torchrun``), the model is
wrapped in DDP, each rank takes its slice of every global batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

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
        _checks.positive_int("epochs", self.epochs)
        _checks.positive_int("batch_size", self.batch_size)
        _checks.number("lr", self.lr, low=0.0, low_open=True)
        _checks.number("weight_decay", self.weight_decay, low=0.0)
        _checks.choice("schedule", self.schedule, SCHEDULES)
        _checks.positive_int("warmup_steps", self.warmup_steps, low=0)
        if self.grad_clip is not None:
            _checks.number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        _checks.positive_int("checkpoint_every", self.checkpoint_every, low=0)
        _checks.positive_int("keep_last", self.keep_last)


@dataclass
class _Session:
    root: Path
    resume: bool
    progress: bool
    fits: int = 0


_SESSION: ContextVar[_Session | None] = ContextVar("neurotoken_training_session", default=None)


@contextmanager
def session(root: str | Path, resume: bool = False, progress: bool = False) -> Iterator[Path]:
    """Run a whole experiment as one resumable unit: every :class:`Trainer` built inside without
    a ``run_dir`` of its own checkpoints under ``root/fit-NN`` (NN counts trainers in the order
    they are built), shows a progress bar when ``progress``, and with ``resume`` continues from
    its newest checkpoint (a finished fit reloads its final weights and trains no further)."""
    token = _SESSION.set(_Session(Path(root), resume, progress))
    try:
        yield Path(root)
    finally:
        _SESSION.reset(token)


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


class Trainer:
    """AdamW + schedule + clipping over in-memory tensors (x, y); checkpoints, JSONL metrics, resume.

    ``run_dir`` (optional) receives ``checkpoints/`` and ``metrics.jsonl``; ``progress`` shows a
    rich progress bar with the running loss; ``on_epoch(epoch, mean_loss)`` is called per epoch;
    ``evaluate(model) -> {name: value}`` runs after each epoch (model in eval mode, no grad) and
    its metrics are logged with the step.
    """

    def __init__(self, model: nn.Module, config: FitConfig = FitConfig(), loss_fn=cross_entropy,
                 run_dir: str | Path | None = None, progress: bool = False,
                 on_epoch: Callable[[int, float], None] | None = None,
                 evaluate: Callable[[nn.Module], dict[str, float]] | None = None):
        self.model, self.config, self.loss_fn = model, config, loss_fn
        active, self.resume_default = _SESSION.get(), False
        if run_dir is None and active is not None:
            run_dir, active.fits = active.root / f"fit-{active.fits:02d}", active.fits + 1
            progress, self.resume_default = progress or active.progress, active.resume
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress, self.on_epoch, self.evaluate = progress, on_epoch, evaluate
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.net = nn.parallel.DistributedDataParallel(model) if self.distributed else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.last_checkpoint: Path | None = None

    # -- files (rank 0 only) ---------------------------------------------------------------------
    def _save(self, step: int, state: dict) -> None:
        if self.run_dir is not None and self.rank == 0:
            self.last_checkpoint = save_checkpoint(self.run_dir / "checkpoints", step, self.model,
                                                   self.optimizer, state, self.config.keep_last)

    def _log(self, record: dict) -> None:
        if self.run_dir is not None and self.rank == 0:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _resume(self) -> dict:
        found = None if self.run_dir is None else latest_checkpoint(self.run_dir / "checkpoints")
        if found is None:
            return {"step": 0, "losses": [], "epoch_total": 0.0}
        path, skipped = found
        for problem in skipped:
            print(f"warning: skipped {problem}")
        state = load_checkpoint(path, self.model, self.optimizer)
        self.last_checkpoint = path
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists() and self.rank == 0:  # drop lines logged after the checkpoint
            keep = [line for line in metrics.read_text().splitlines() if json.loads(line)["step"] <= state["step"]]
            metrics.write_text("".join(line + "\n" for line in keep))
        return state

    # -- training ----------------------------------------------------------------------------------
    def fit(self, x: torch.Tensor, y: torch.Tensor, resume: bool = False) -> list[float]:
        """Train (from the newest checkpoint with ``resume``); returns the mean loss of each epoch."""
        resume = resume or self.resume_default
        _checks.tensor("x", x, min_dim=1)
        _checks.tensor("y", y, min_dim=1)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        cfg = self.config
        per_epoch = -(-len(x) // cfg.batch_size)
        total = cfg.epochs * per_epoch
        torch.manual_seed(cfg.seed)
        state = self._resume() if resume else {"step": 0, "losses": [], "epoch_total": 0.0}
        if not resume and self.run_dir is not None and self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        label = "training" if self.run_dir is None else self.run_dir.name
        bar = _Bar(total, state["step"], label) if self.progress and self.rank == 0 else None
        self.net.train()
        try:
            while state["step"] < total:
                self._train_step(x, y, state, per_epoch, total)
                if bar is not None:
                    bar.update(state)
                if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                    self._save(state["step"], state)
        except KeyboardInterrupt:
            self._save(state["step"], state)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._save(state["step"], state)
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
                   on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Minimise cross-entropy (no files); returns the mean loss per epoch."""
    return Trainer(model, config, on_epoch=on_epoch).fit(x, y)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of argmax predictions equal to y."""
    model.eval()
    correct = sum((model(xb).argmax(-1) == yb).sum().item()
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)


__all__ = ["FitConfig", "Trainer", "session", "fit_classifier", "accuracy", "learning_rate", "cross_entropy"]
