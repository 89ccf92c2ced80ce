"""Byte-level language modelling on standard-library docstrings: SpikeGPT-style LM vs its RWKV twin."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _checks
from ..accounting import count
from ..data.text import load_text
from ..learning.bptt import FitConfig, Trainer
from ..models import LM_BACKBONES, SpikingLM


@dataclass(frozen=True)
class LanguageModels:
    """SpikingLM (SpikeGPT or P-SpikeSSM backbone) and its conventional twin: validation bits per byte.
    Defaults: 1600 steps of 32 windows of 64 bytes, both spikegpt twins in ~10 min on one thread."""

    backbone: str = "spikegpt"
    d_model: int = 128
    layers: int = 2
    L: int = 64
    path: str | None = None  # a UTF-8 text file; None: the standard-library docstrings
    fit: FitConfig = FitConfig(epochs=4, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20, grad_clip=1.0)
    prompt: str = "Return the "
    sample_bytes: int = 200
    sample_temperature: float = 0.5
    twins: tuple[bool, ...] = (True, False)  # spiking, conventional

    def __post_init__(self):
        _checks.choice("backbone", self.backbone, LM_BACKBONES)
        _checks.positive_int("L", self.L)
        _checks.positive_int("sample_bytes", self.sample_bytes)


@torch.no_grad()
def bits_per_byte(model: SpikingLM, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-byte cross-entropy in bits: sum of -log2 p(y | x) over all positions / their count."""
    model.eval()
    nats = sum(F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), reduction="sum").item()
               for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    model.train()
    return nats / y.numel() / math.log(2)


@torch.no_grad()
def spike_rate(model: SpikingLM, x: torch.Tensor) -> float:
    """Fraction of neuron updates that emit a (nonzero) spike over the tokens x [B, L] (0 for the twin)."""
    model.eval()
    with count(model) as c:
        model(x)
    model.train()
    return c.totals.get("spikes", 0) / max(1, c.totals.get("neuron_updates", 0))


def run_language(config: LanguageModels = LanguageModels(),
                 on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the spiking LM and/or its twin (same data, init seed and schedule); one row per model."""
    data = load_text(config.path, config.L)
    rows = []
    for spiking in config.twins:
        torch.manual_seed(config.fit.seed)
        model = SpikingLM(d_model=config.d_model, layers=config.layers, backbone=config.backbone, spiking=spiking)
        start = time.perf_counter()
        losses = Trainer(model, config.fit).fit(data.x_train, data.y_train)
        seconds = time.perf_counter() - start
        sample = model.generate(config.prompt, config.sample_bytes, config.sample_temperature,
                                torch.Generator().manual_seed(config.fit.seed))
        row = {"model": f"{config.backbone} ({'spiking' if spiking else 'twin'})", "spiking": spiking,
               "val_bpb": bits_per_byte(model, data.x_val, data.y_val), "final_train_loss": losses[-1],
               "spike_rate": spike_rate(model, data.x_val[:64]), "train_seconds": seconds,
               "parameters": sum(p.numel() for p in model.parameters()), "sample": config.prompt + sample}
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
