"""Intra-token SNN on scikit-learn digits: test accuracy vs T and input encoding, with the twin."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import _checks
from ..data import load_digits
from ..learning.bptt import FitConfig, fit_classifier
from ..metrics import accuracy
from ..models import SNNClassifier


@dataclass(frozen=True)
class DigitsSweep:
    """An SNN [64 -> hidden -> 10] trained by surrogate-gradient BPTT for each (encoding, T)."""

    Ts: tuple[int, ...] = (1, 2, 4, 8, 16)
    encodings: tuple[str, ...] = ("direct", "rate", "bernoulli", "positional")
    hidden: tuple[int, ...] = (256,)
    beta: float = 0.9
    threshold: float = 1.0
    fit: FitConfig = FitConfig(epochs=30, batch_size=64, lr=5e-3)
    split_seed: int = 0

    def __post_init__(self):
        for i, T in enumerate(self.Ts):
            _checks.positive_int(f"Ts[{i}]", T)


def run_digits_sweep(config: DigitsSweep = DigitsSweep(),
                     on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the conventional twin once and the SNN per (encoding, T); one row dict per model."""
    data = load_digits(seed=config.split_seed)
    runs = [("conventional", 1, False)] + [(e, T, True) for e in config.encodings for T in config.Ts]
    rows = []
    for enc, T, spiking in runs:
        torch.manual_seed(config.fit.seed)  # same init whatever ran before
        model = SNNClassifier(64, config.hidden, 10, T=T, encoding=enc if spiking else "direct",
                              spiking=spiking, beta=config.beta, threshold=config.threshold)
        start = time.perf_counter()
        losses = fit_classifier(model, data.x_train, data.y_train, config.fit)
        row = {"model": "ReLU MLP (twin)" if not spiking else "SNN", "encoding": enc if spiking else "-",
               "T": T if spiking else None, "test_accuracy": accuracy(model, data.x_test, data.y_test),
               "final_loss": losses[-1], "train_seconds": time.perf_counter() - start}
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
