"""Byte-level language modelling on standard-library docstrings: SpikeGPT-style LM vs its RWKV twin."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import _checks
from ..data.text import load_text
from ..learning.bptt import FitConfig, Trainer
from ..metrics import bits_per_byte, spike_rate
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
