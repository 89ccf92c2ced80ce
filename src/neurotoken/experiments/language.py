"""Byte-level language modelling on standard-library docstrings: a spiking LM (SpikeGPT-style, P-SpikeSSM
or SpikingMamba backbone) vs its conventional twin, trained directly or distilled from the twin (eq. 83)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from ..data import text_corpus
from ..data.text import load_text
from ..learning.bptt import FitConfig, Trainer
from ..learning.distill import Distillation
from ..metrics import bits_per_byte, spike_rate
from ..models import LM_BACKBONES
from .config import each, existing_path, flag, integer, nested, one_of, optional, real, text, validate
from .runner import Results, Runner, recipe
from .task import Task


@dataclass(frozen=True)
class LanguageModels:
    """SpikingLM (SpikeGPT, P-SpikeSSM or SpikingMamba backbone) and its conventional twin: validation bits per byte.
    Defaults: 1600 steps of 32 windows of 64 bytes per model. ``distill`` also trains the spiking LM
    on the twin's softened outputs (weight ``distill_alpha``, temperature ``distill_temperature``)."""

    backbone: str = "spikegpt"
    d_model: int = 128
    layers: int = 2
    L: int = 64
    path: str | None = None  # a text file or a folder of them (`--data text=PATH`); None: the standard-library docstrings
    train_windows: int | None = None  # a fixed random subset of the training windows; None: all
    val_windows: int | None = None  # the first validation windows; None: all
    fit: FitConfig = FitConfig(epochs=4, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20, grad_clip=1.0)
    prompt: str = "Return the "
    sample_bytes: int = 200
    sample_temperature: float = 0.5
    twins: tuple[bool, ...] = (True, False)  # spiking, conventional
    d_state: int = 16  # the SSM state of the pspikessm and mamba backbones
    distill: bool = False
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5
    CHECKS = {"backbone": one_of(LM_BACKBONES), "d_model": integer(), "layers": integer(), "L": integer(),
              "path": optional(existing_path), "train_windows": optional(integer()), "val_windows": optional(integer()),
              "fit": nested(FitConfig), "prompt": text, "sample_bytes": integer(),
              "sample_temperature": real(low=0.0, low_open=True), "twins": each(flag, unique=True),
              "d_state": integer(), "distill": flag, "distill_temperature": real(low=0.0, low_open=True),
              "distill_alpha": real(low=0.0, high=1.0)}
    RELATIONS = (("distill", lambda c: not c.distill or False in c.twins,
                  "train the twin (its teacher): twins must hold False, got twins={c.twins}"),)

    __post_init__ = validate

    @classmethod
    def data_fields(cls) -> dict[str, str]:
        """`--data` names this config accepts -> the field each sets."""
        return {"text": "path"}

    @classmethod
    def quick(cls, **changes) -> LanguageModels:
        """d_model 32, one layer, 128 windows of 32 bytes, one epoch, a short sample."""
        return cls(**{"d_model": 32, "layers": 1, "L": 32, "train_windows": 128, "val_windows": 32,
                      "fit": FitConfig(epochs=1, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20,
                                       grad_clip=1.0), "sample_bytes": 20, **changes})


def model_kwargs(config: LanguageModels, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SpikingLM` of ``config`` (spiking or its twin)."""
    return dict(d_model=config.d_model, layers=config.layers, backbone=config.backbone, spiking=spiking,
                d_state=config.d_state)


def windows(config: LanguageModels) -> tuple:
    """(x_train, y_train, x_val, y_val) byte windows of ``config`` (subsets when it asks for them):
    tensors of the embedded text, or for ``path`` two Datasets of :func:`~neurotoken.data.text_corpus`
    windows (the last tenth for validation) and None for the targets."""
    if config.path is None:
        data = load_text(None, config.L)
        x, y, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    else:
        corpus = text_corpus(config.path, seq_len=config.L)
        cut = len(corpus) - max(1, len(corpus) // 10)
        if cut < 1:
            raise ValueError(f"path {config.path!r} holds {len(corpus)} window(s) of L = {config.L} bytes: too few "
                             "to split into training and validation")
        x, y, x_val, y_val = Subset(corpus, range(cut)), None, Subset(corpus, range(cut, len(corpus))), None
    if config.train_windows is not None:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:config.train_windows]
        x, y = (x[pick], y[pick]) if y is not None else (Subset(x, pick.tolist()), None)
    if config.val_windows is not None:
        x_val, y_val = (x_val[:config.val_windows], y_val[:config.val_windows]) if y_val is not None else \
            (Subset(x_val, range(min(config.val_windows, len(x_val)))), None)
    return x, y, x_val, y_val


def head(x, n: int) -> torch.Tensor:
    """The inputs of the first ``n`` windows of tensors ``x`` or of a Dataset of (x, y) windows."""
    return x[:n] if isinstance(x, torch.Tensor) else torch.stack([x[i][0] for i in range(min(n, len(x)))])


def val_bits_per_byte(model, x, y=None, batch_size: int = 64) -> float:
    """:func:`~neurotoken.metrics.bits_per_byte` over tensors (x, y) or a Dataset of windows (on the model's device)."""
    if y is not None:
        return bits_per_byte(model, x, y, batch_size)
    device = next(model.parameters()).device
    bits = positions = 0.0
    for xb, yb in DataLoader(x, batch_size=batch_size):
        bits += bits_per_byte(model, xb.to(device), yb.to(device), batch_size) * yb.numel()
        positions += yb.numel()
    return bits / positions


def _tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of tensors (x, y) or of a Dataset of (x, y) windows, stacked."""
    return (x, y) if y is not None else tuple(torch.stack(t) for t in zip(*(x[i] for i in range(len(x)))))


def bigram_bits_per_byte(x, y, x_val, y_val, alpha: float = 0.1) -> float:
    """Validation bits per byte of a byte bigram model counted on the training windows (tensors or
    Datasets of (x, y) pairs, as :func:`windows` gives them), add-``alpha`` smoothed: a non-neural baseline."""
    (x, y), (x_val, y_val) = _tensors(x, y), _tensors(x_val, y_val)
    counts = torch.bincount((x * 256 + y).flatten(), minlength=256 * 256).view(256, 256).double() + alpha
    log_p = (counts / counts.sum(1, keepdim=True)).log2()
    return -log_p[x_val.flatten(), y_val.flatten()].mean().item()


LABELS = {"spikegpt": ("RWKV", "SpikeGPT-style (spiking projections)"), "pspikessm": ("SSM", "P-SpikeSSM"),
          "mamba": ("Mamba", "SpikingMamba (spiking projections)")}  # backbone -> (twin, spiking) row labels


def task(c: LanguageModels, n: int, name: str = "text (language)") -> Task:
    """The main job's row of ``c``: the twin, then the spiking LM trained directly, judged by validation
    bits per byte (beside a byte bigram's), counted per token on ``n`` validation windows."""
    x, y, x_val, y_val = windows(c)
    models = [(role, label, "SpikingLM", model_kwargs(c, spiking))
              for role, label, spiking in zip(("twin", "spiking"), LABELS[c.backbone], (False, True))]
    return Task(name, "bits/byte", False, "token", models, c.fit, x, y,
                lambda m: val_bits_per_byte(m, x_val, y_val), head(x_val, n),
                baseline=("byte bigram", lambda: bigram_bits_per_byte(x, y, x_val, y_val)))


def _distill(config: LanguageModels, teacher, x, y):
    """A Runner fit: BPTT with ``config.fit`` on the loss of :class:`Distillation` from ``teacher``."""
    loss = Distillation(teacher, config.distill_temperature, config.distill_alpha)
    return lambda model: Trainer(model, config.fit, loss_fn=loss).fit(x, y)


@recipe(LanguageModels)
def run_language(config: LanguageModels, runner: Runner) -> Results:
    """Train the spiking LM and/or its twin (same data, init seed and schedule), then with ``distill``
    the spiking LM distilled from the twin; one row per model."""
    x, y, x_val, y_val = windows(config)
    runs = [("spiking" if spiking else "twin", spiking, config.fit) for spiking in config.twins]
    if config.distill:
        runs.append(("spiking distilled", True, None))
    for role, spiking, fit in runs:
        trained = runner.train(role, ("SpikingLM", model_kwargs(config, spiking)),
                               fit or _distill(config, twin, x, y), x, y, seed=config.fit.seed)
        model = trained.model
        if role == "twin":
            twin = model
        device = next(model.parameters()).device
        sample = model.generate(config.prompt, config.sample_bytes, config.sample_temperature,
                                torch.Generator(device).manual_seed(config.fit.seed))
        runner.emit({"model": f"{config.backbone} ({role})", "spiking": spiking, "distilled": fit is None,
                     "val_bpb": val_bits_per_byte(model, x_val, y_val), "final_train_loss": trained.losses[-1],
                     "spike_rate": spike_rate(model, head(x_val, 64).to(device)), "train_seconds": trained.seconds,
                     "parameters": sum(p.numel() for p in model.parameters()), "sample": config.prompt + sample,
                     "samples_per_s": trained.samples_per_s, "tokens_per_s": trained.tokens_per_s})
    return runner.results()
