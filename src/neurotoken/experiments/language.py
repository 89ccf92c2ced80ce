"""Byte-level language modelling on standard-library docstrings: SpikeGPT-style LM vs its RWKV twin."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from ..data import text_corpus
from ..data.text import load_text
from ..learning.bptt import FitConfig
from ..metrics import bits_per_byte, spike_rate
from ..models import LM_BACKBONES
from .config import each, existing_path, flag, integer, nested, one_of, optional, real, text, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class LanguageModels:
    """SpikingLM (SpikeGPT or P-SpikeSSM backbone) and its conventional twin: validation bits per byte.
    Defaults: 1600 steps of 32 windows of 64 bytes per model."""

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
    CHECKS = {"backbone": one_of(LM_BACKBONES), "d_model": integer(), "layers": integer(), "L": integer(),
              "path": optional(existing_path), "train_windows": optional(integer()), "val_windows": optional(integer()),
              "fit": nested(FitConfig), "prompt": text, "sample_bytes": integer(),
              "sample_temperature": real(low=0.0, low_open=True), "twins": each(flag, unique=True)}

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
    return dict(d_model=config.d_model, layers=config.layers, backbone=config.backbone, spiking=spiking)


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


@recipe(LanguageModels)
def run_language(config: LanguageModels, runner: Runner) -> Results:
    """Train the spiking LM and/or its twin (same data, init seed and schedule); one row per model."""
    x, y, x_val, y_val = windows(config)
    for spiking in config.twins:
        trained = runner.train("spiking" if spiking else "twin", ("SpikingLM", model_kwargs(config, spiking)),
                               config.fit, x, y, seed=config.fit.seed)
        model = trained.model
        device = next(model.parameters()).device
        sample = model.generate(config.prompt, config.sample_bytes, config.sample_temperature,
                                torch.Generator(device).manual_seed(config.fit.seed))
        runner.emit({"model": f"{config.backbone} ({'spiking' if spiking else 'twin'})", "spiking": spiking,
                     "val_bpb": val_bits_per_byte(model, x_val, y_val), "final_train_loss": trained.losses[-1],
                     "spike_rate": spike_rate(model, head(x_val, 64).to(device)), "train_seconds": trained.seconds,
                     "parameters": sum(p.numel() for p in model.parameters()), "sample": config.prompt + sample,
                     "samples_per_s": trained.samples_per_s, "tokens_per_s": trained.tokens_per_s})
    return runner.results()
