"""Byte-level language modelling on standard-library docstrings: SpikeGPT-style LM vs its RWKV twin."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.text import load_text
from ..learning.bptt import FitConfig
from ..metrics import bits_per_byte, spike_rate
from ..models import LM_BACKBONES
from .config import each, existing_file, flag, integer, nested, one_of, optional, real, text, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class LanguageModels:
    """SpikingLM (SpikeGPT or P-SpikeSSM backbone) and its conventional twin: validation bits per byte.
    Defaults: 1600 steps of 32 windows of 64 bytes per model."""

    backbone: str = "spikegpt"
    d_model: int = 128
    layers: int = 2
    L: int = 64
    path: str | None = None  # a UTF-8 text file; None: the standard-library docstrings
    train_windows: int | None = None  # a fixed random subset of the training windows; None: all
    val_windows: int | None = None  # the first validation windows; None: all
    fit: FitConfig = FitConfig(epochs=4, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20, grad_clip=1.0)
    prompt: str = "Return the "
    sample_bytes: int = 200
    sample_temperature: float = 0.5
    twins: tuple[bool, ...] = (True, False)  # spiking, conventional
    CHECKS = {"backbone": one_of(LM_BACKBONES), "d_model": integer(), "layers": integer(), "L": integer(),
              "path": optional(existing_file), "train_windows": optional(integer()), "val_windows": optional(integer()),
              "fit": nested(FitConfig), "prompt": text, "sample_bytes": integer(),
              "sample_temperature": real(low=0.0, low_open=True), "twins": each(flag, unique=True)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> LanguageModels:
        """d_model 32, one layer, 128 windows of 32 bytes, one epoch, a short sample."""
        return cls(**{"d_model": 32, "layers": 1, "L": 32, "train_windows": 128, "val_windows": 32,
                      "fit": FitConfig(epochs=1, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20,
                                       grad_clip=1.0), "sample_bytes": 20, **changes})


def model_kwargs(config: LanguageModels, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SpikingLM` of ``config`` (spiking or its twin)."""
    return dict(d_model=config.d_model, layers=config.layers, backbone=config.backbone, spiking=spiking)


def windows(config: LanguageModels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val) byte windows of ``config`` (subsets when it asks for them)."""
    data = load_text(config.path, config.L)
    x, y = data.x_train, data.y_train
    if config.train_windows is not None:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:config.train_windows]
        x, y = x[pick], y[pick]
    return x, y, data.x_val[:config.val_windows], data.y_val[:config.val_windows]


@recipe(LanguageModels)
def run_language(config: LanguageModels, runner: Runner) -> Results:
    """Train the spiking LM and/or its twin (same data, init seed and schedule); one row per model."""
    x, y, x_val, y_val = windows(config)
    for spiking in config.twins:
        trained = runner.train("spiking" if spiking else "twin", ("SpikingLM", model_kwargs(config, spiking)),
                               config.fit, x, y, seed=config.fit.seed)
        model = trained.model
        sample = model.generate(config.prompt, config.sample_bytes, config.sample_temperature,
                                torch.Generator().manual_seed(config.fit.seed))
        runner.emit({"model": f"{config.backbone} ({'spiking' if spiking else 'twin'})", "spiking": spiking,
                     "val_bpb": bits_per_byte(model, x_val, y_val), "final_train_loss": trained.losses[-1],
                     "spike_rate": spike_rate(model, x_val[:64]), "train_seconds": trained.seconds,
                     "parameters": sum(p.numel() for p in model.parameters()), "sample": config.prompt + sample})
    return runner.results()
