"""Teacher-forced BPTT with surrogate gradients: a seeded, resumable trainer.

Data: in-memory tensors, a ``Dataset`` (read through a DataLoader that follows the seeded plan of
:mod:`.sampler`, ``num_workers`` processes, ``__getitems__`` batched fetching) or a user's DataLoader.
Hardware: ``device`` (cpu, cuda, cuda:N, mps), ``precision`` (bf16/fp16 autocast, fp16 with a gradient
scaler), ``accumulate`` micro-batches per optimizer step.
Determinism: the batch order of epoch e comes from a generator seeded with (seed, e) and every torch
RNG (CPU, CUDA, MPS: stochastic encoders, Bernoulli spikes) and the gradient scaler are saved in every
checkpoint, so an interrupted-then-resumed fit on tensors or a Dataset reproduces the uninterrupted
losses and weights bit for bit on CPU (with ``num_workers`` > 0, when the dataset's own randomness
depends only on the index). A user's DataLoader cannot be rewound: a fit interrupted inside an epoch
resumes at the next epoch boundary, with a warning.
Interrupts: Ctrl-C during a step takes effect when the step ends (a second Ctrl-C at once; not
under ``torch.distributed``, whose ranks could then stop at different steps); any
``KeyboardInterrupt`` saves a checkpoint of the last completed step unless it landed while the
weights were being updated, in which case the newest checkpoint already on disk is the resume point.
Distributed: when ``torch.distributed`` is initialised (e.g. by ``torchrun``), the model is
wrapped in DDP (on CUDA: the rank's ``LOCAL_RANK`` device unless an index is given, as ``device_ids``),
each rank takes its slice of every global micro-batch, and rank 0 alone writes files.
Throughput (samples/s, tokens/s: targets per second) is logged with every step and shown in the bar.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .. import _checks
from .checkpoint import (atomic_write, discard_incomplete, list_checkpoints, newest_valid_checkpoint, restore,
                         rng_states, save_checkpoint)
from .sampler import Source, as_source, unwrap

SCHEDULES = ("cosine", "constant")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_TYPES = ("cpu", "cuda", "mps")
PLACEMENT = ("checkpoint_every", "keep_last", "device", "num_workers")  # where and how files go, not what is learnt


def _device_name(name):
    """A device string torch parses into one of DEVICE_TYPES (checked, not looked up: see resolve_device)."""
    if name is None:
        return None
    expected = "'cpu', 'cuda', 'cuda:N' or 'mps'"
    if not isinstance(name, str):
        raise TypeError(f"device must be a string ({expected}) or None, got {type(name).__name__}")
    try:
        parsed = torch.device(name)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise ValueError(f"device must be {expected}, got {name!r}")
    return name


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
    accumulate: int = 1  # micro-batches of batch_size per optimizer step
    precision: str = "fp32"  # "bf16" or "fp16": autocast (fp16 with a gradient scaler)
    device: str | None = None  # "cpu", "cuda", "cuda:1", "mps"; None: where the model's parameters are
    num_workers: int = 0  # DataLoader processes reading a Dataset

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
            "accumulate": _checks.positive_int("accumulate", self.accumulate),
            "precision": _checks.choice("precision", self.precision, PRECISIONS),
            "device": _device_name(self.device),
            "num_workers": _checks.positive_int("num_workers", self.num_workers, low=0),
        }
        for name, value in checked.items():  # store plain Python numbers (numpy scalars become int/float)
            object.__setattr__(self, name, value)

    def trajectory(self) -> dict:
        """The fields that shape the trained result (all but the file policy, device and workers)."""
        return {k: v for k, v in asdict(self).items() if k not in PLACEMENT}


def resolve_device(name: str | None, model: nn.Module, distributed: bool = False) -> torch.device:
    """The device to train on: ``name``, or the model's when None; under torch.distributed a CUDA
    device without an index is the rank's ``LOCAL_RANK``. Refuses a device this machine lacks."""
    if name is None:
        tensor = next(iter((*model.parameters(), *model.buffers())), None)
        device = torch.device("cpu") if tensor is None else tensor.device
    else:
        device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} is not available: torch sees no CUDA GPU here "
                             f"(torch {torch.__version__}); use device='cpu'")
        index = device.index
        if index is None or (distributed and (name is None or torch.device(name).index is None)):
            index = int(os.environ.get("LOCAL_RANK", 0)) if distributed else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} is not available: this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        device = torch.device("cuda", index)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} is not available: torch reports no MPS backend on this machine")
    return device


def learning_rate(config: FitConfig, step: int, total_steps: int) -> float:
    """Linear warm-up to lr, then constant or cosine decay to 0 at total_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the targets (classification or next-token, logits last): integer
    labels, or float class probabilities of the logits' shape."""
    logits = model(x)
    classes = logits.shape[-1]
    target = y.reshape(-1, classes) if y.is_floating_point() else y.reshape(-1)
    return F.cross_entropy(logits.reshape(-1, classes), target)


def check_labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device | None = None,
                 name: str = "y", first_only: bool = True) -> int:
    """Refuse integer class labels of another shape than the logits' leading axes or outside
    [0, classes), and float targets (class probabilities) of another shape than the logits, all read
    from one forward of ``x[:1]`` (of all of ``x`` unless ``first_only``: a batch whose first axis is not
    the samples'; moved to ``device`` when given; eval mode, no grad, the RNG left untouched): once,
    before training. Returns the number of classes; ``name`` names ``y`` in errors."""
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must hold integer class labels (or float class probabilities), got {y.dtype}")
    training = model.training
    model.eval()
    probe = x[:1] if first_only else x
    probe = probe if device is None else probe.to(device)
    devices = [probe.device] if probe.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        shape = model(probe).shape
    model.train(training)
    classes = shape[-1]
    if y.is_floating_point():
        if tuple(y.shape[1:]) != tuple(shape[1:]):
            raise ValueError(f"{name} must hold integer class labels of shape {(len(y), *shape[1:-1])} or class "
                             f"probabilities of the logits' shape {(len(y), *shape[1:])}, got float {name} of "
                             f"shape {tuple(y.shape)}")
        return classes
    if tuple(y.shape[1:]) != tuple(shape[1:-1]):
        raise ValueError(f"{name} must have shape {(len(y), *shape[1:-1])} to label the model's outputs "
                         f"{(len(y), *shape[1:])} (logits last), got {tuple(y.shape)}")
    _label_range(name, int(y.min()), int(y.max()), classes)
    return classes


def _label_range(name: str, low: int, high: int, classes: int) -> None:
    if low < 0 or high >= classes:
        raise ValueError(f"{name} must hold class labels in [0, {classes - 1}] (the model has {classes} outputs), "
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
    """AdamW + schedule + clipping over tensors (x, y), a Dataset or a DataLoader; checkpoints, JSONL
    metrics, resume. The model is moved to ``config.device`` (validated here: this machine must have it).

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
        self.device = resolve_device(config.device, model, self.distributed)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        model.to(self.device)
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        else:
            self.net = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.last_checkpoint: Path | None = None
        self.start_step = self.total_steps = 0
        # the last completed step: its RNG states, whether it is on disk, and whether the weights are
        # being updated right now (then the model matches no step and an interrupt saves nothing)
        self._rng, self._saved_step, self._updating = rng_states(), None, False
        self._unchecked = None  # a Dataset or DataLoader whose labels the next training batch checks
        self._clock, self.samples_per_s = time.perf_counter(), 0.0

    def _autocast(self):
        dtype = PRECISIONS[self.config.precision]
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    # -- files (rank 0 only) ---------------------------------------------------------------------
    def _save(self, state: dict) -> None:
        if self.run_dir is not None and self.rank == 0 and state["step"] != self._saved_step:
            if self.scaler.is_enabled():
                state["scaler"] = self.scaler.state_dict()
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
        state = {"step": 0, "losses": [], "epoch_total": 0.0, "epoch_samples": 0,
                 "config": self.config.trajectory(), "samples": samples}
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
            if "scaler" in state and self.scaler.is_enabled():
                self.scaler.load_state_dict(state["scaler"])
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
        before = {f.name: f.default for f in fields(FitConfig)} | before  # fields added since: their defaults
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
    def fit(self, x, y: torch.Tensor | None = None, resume: bool = False, *, val=None,
            collate_fn: Callable | None = None) -> list[float]:
        """Train; returns the mean loss of each epoch. ``x`` is a tensor (with targets ``y``), a Dataset
        of (x, y) pairs (batched by ``collate_fn``, else the Dataset's own ``collate_fn`` attribute, else
        stacking) or a DataLoader; with the default loss, class labels are checked against the model's
        outputs on the first batch (and over a Dataset's ``labels`` attribute, where it has one). ``val`` (an
        (x, y) pair of tensors, a Dataset or a DataLoader) logs ``val_loss`` after each epoch. With
        ``resume``, continue from the newest valid checkpoint in run_dir (from scratch if it holds
        none; a finished fit trains no further)."""
        if resume and self.run_dir is None:
            raise ValueError("resume=True needs a run_dir to resume from")
        _callable("collate_fn", collate_fn)
        if isinstance(x, torch.Tensor):
            self._check_tensors(x, y)
        source, samples = self._source(x, y, collate_fn, self.config.accumulate, self.world, self.rank)
        self._unchecked = x if self.loss_fn is cross_entropy and not isinstance(x, torch.Tensor) else None
        val_source = None
        if val is not None:
            vx, vy = _pair("val", val)
            if isinstance(vx, torch.Tensor):
                self._check_tensors(vx, vy, labels=False, names=("val[0]", "val[1]"))
            val_source = self._source(vx, vy, collate_fn, 1, 1, 0)[0]
        cfg = self.config
        per_epoch = source.steps
        self.total_steps = total = cfg.epochs * per_epoch
        state = self._start(resume, samples)
        state.setdefault("epoch_samples", state["step"] % per_epoch * cfg.batch_size * cfg.accumulate)
        if not source.exact and state["step"] % per_epoch:
            self._skip_to_epoch_end(state, per_epoch)
        self.start_step, self._rng, self._updating = state["step"], rng_states(), False
        label = "training" if self.run_dir is None else self.run_dir.name
        bar = _Bar(total, state["step"], label) if self.progress and self.rank == 0 else None
        self.net.train()
        self._clock = time.perf_counter()
        with _deferred_interrupts(enabled=not self.distributed) as interrupted:
            try:
                while state["step"] < total:
                    self._train_step(source, val_source, state, per_epoch, total)
                    if bar is not None:
                        bar.update(state, self.samples_per_s)
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

    def mean_loss(self, x, y: torch.Tensor | None = None, *, collate_fn: Callable | None = None) -> float:
        """Mean loss per sample over tensors (x, y), a Dataset or a DataLoader (eval mode, no grad)."""
        _callable("collate_fn", collate_fn)
        if isinstance(x, torch.Tensor):
            self._check_tensors(x, y, labels=False)
        return self._mean_loss(self._source(x, y, collate_fn, 1, 1, 0)[0], 0)

    def _check_tensors(self, x: torch.Tensor, y, labels: bool = True, names: tuple[str, str] = ("x", "y")) -> None:
        _checks.tensor(names[0], x, min_dim=1, finite=True)
        _checks.tensor(names[1], y, min_dim=1, finite=True)
        if len(x) == 0:
            raise ValueError(f"{names[0]} must hold at least one sample, got shape {tuple(x.shape)}")
        if len(x) != len(y):
            raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {len(x)} and {len(y)}")
        if labels and self.loss_fn is cross_entropy:
            check_labels(self.model, x, y, self.device)

    def _check_streamed_labels(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Once per fit on a Dataset or DataLoader: its first batch's labels (shape and range), then the
        range of a 1-D integer ``labels`` attribute of the Dataset (under any Subset), all against the
        model's outputs."""
        data, self._unchecked = self._unchecked, None
        classes = check_labels(self.model, xb, yb, name="the labels of x's first batch", first_only=False)
        dataset, keep = unwrap(data.dataset if isinstance(data, DataLoader) else data)
        labels = getattr(dataset, "labels", None)
        if not isinstance(labels, (np.ndarray, list, tuple)) or yb.is_floating_point():
            return
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != getattr(dataset, "__len__", lambda: -1)():
            return
        labels = labels if keep is None else labels[keep]
        if labels.size:
            _label_range(f"the labels attribute of {type(dataset).__name__}", int(labels.min()), int(labels.max()),
                         classes)

    def _source(self, x, y, collate_fn, accumulate: int, world: int, rank: int) -> tuple[Source, int]:
        cfg = self.config
        return as_source(x, y, batch_size=cfg.batch_size, accumulate=accumulate, seed=cfg.seed, world=world,
                         rank=rank, collate=collate_fn, num_workers=cfg.num_workers,
                         pin_memory=self.device.type == "cuda")

    def _skip_to_epoch_end(self, state: dict, per_epoch: int) -> None:
        """A DataLoader cannot be rewound: close the interrupted epoch with the batches it trained on."""
        epoch = state["step"] // per_epoch
        warnings.warn(f"resuming at step {state['step']}, inside epoch {epoch}: a DataLoader's position cannot "
                      f"be restored, so training continues at epoch {epoch + 1} (step {(epoch + 1) * per_epoch}); "
                      "pass a Dataset to resume exactly", RuntimeWarning, stacklevel=3)
        state["losses"].append(state["epoch_total"] / max(1, state["epoch_samples"]))
        state["step"], state["epoch_total"], state["epoch_samples"] = (epoch + 1) * per_epoch, 0.0, 0

    def _train_step(self, source: Source, val_source: Source | None, state: dict, per_epoch: int, total: int):
        cfg, step = self.config, state["step"]
        epoch, i = divmod(step, per_epoch)
        lr = learning_rate(cfg, step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        micro = source.step(epoch, i)
        step_size = sum(size for *_, size in micro)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, tokens = None, 0
        for k, (xb, yb, size) in enumerate(micro):
            xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
            if self._unchecked is not None:
                self._check_streamed_labels(xb, yb)
            last = not self.distributed or k == len(micro) - 1  # DDP reduces gradients once per step
            with nullcontext() if last else self.net.no_sync():
                with self._autocast():
                    loss = self.loss_fn(self.net, xb, yb)
                self.scaler.scale(loss * (size / step_size)).backward()
            part = loss.detach().float() * len(yb)
            loss_sum = part if loss_sum is None else loss_sum + part
            tokens += yb.numel()
        reduced = torch.stack([loss_sum, loss_sum.new_tensor(sum(len(b[1]) for b in micro)),
                               loss_sum.new_tensor(tokens)])
        if self.distributed:
            dist.all_reduce(reduced)
        loss_sum, samples, tokens = reduced.tolist()
        if not math.isfinite(loss_sum):
            where = self.last_checkpoint or "none saved"
            raise FloatingPointError(f"loss became {loss_sum} at step {step} (epoch {epoch}); "
                                     f"stopped; last good checkpoint: {where}")
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self._updating = True
        self.scaler.step(self.optimizer)
        self.scaler.update()
        seconds = max(time.perf_counter() - self._clock, 1e-9)
        state["step"] = step + 1
        state["epoch_total"] += loss_sum
        state["epoch_samples"] += int(samples)
        state["last_loss"] = loss_sum / samples
        self.samples_per_s = samples / seconds
        self._log({"step": step + 1, "epoch": epoch, "loss": state["last_loss"], "lr": lr,
                   "samples_per_s": round(samples / seconds, 1), "tokens_per_s": round(tokens / seconds, 1)})
        if i == per_epoch - 1:
            state["losses"].append(state["epoch_total"] / state["epoch_samples"])
            state["epoch_total"], state["epoch_samples"] = 0.0, 0
            if self.on_epoch is not None:
                self.on_epoch(epoch, state["losses"][-1])
            metrics = {} if val_source is None else {"val_loss": self._mean_loss(val_source, epoch)}
            if self.evaluate is not None:
                self.model.eval()
                with torch.no_grad():
                    metrics.update(self.evaluate(self.model))
                self.model.train()
            if metrics:
                self._log({"step": step + 1, "epoch": epoch, **metrics})
        self._rng = rng_states()
        self._updating = False
        self._clock = time.perf_counter()

    def _mean_loss(self, source: Source, epoch: int) -> float:
        """Mean loss per sample over every batch of ``source`` (eval mode, no grad, autocast)."""
        total = count = None
        training = self.model.training
        self.model.eval()
        with torch.no_grad(), self._autocast():
            for i in range(source.steps):
                for xb, yb, _ in source.step(epoch, i):
                    yb = yb.to(self.device, non_blocking=True)
                    part = self.loss_fn(self.model, xb.to(self.device, non_blocking=True), yb).float() * len(yb)
                    total = part if total is None else total + part
                    count = len(yb) + (count or 0)
        self.model.train(training)
        return total.item() / count


def _pair(name: str, data) -> tuple:
    """(x, y) of an (x, y) pair of tensors, else (data, None) for a Dataset or DataLoader."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(f"{name} must be an (x, y) pair of tensors, a Dataset or a DataLoader; "
                             f"got a sequence of {len(data)}")
        return tuple(data)
    return data, None


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
                                 TimeRemainingColumn(), TextColumn("loss {task.fields[loss]}"),
                                 TextColumn("{task.fields[rate]} samples/s"))
        self.task = self.progress.add_task("train", total=total, completed=done, loss="-", rate="-")
        self.progress.start()

    def update(self, state: dict, samples_per_s: float) -> None:
        self.progress.update(self.task, completed=state["step"], loss=f"{state['last_loss']:.4f}",
                             rate=f"{samples_per_s:.0f}")

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
