"""Backpropagation through time with surrogate gradients: a small, seeded classifier loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        _checks.positive_int("epochs", self.epochs)
        _checks.positive_int("batch_size", self.batch_size)
        _checks.number("lr", self.lr, low=0.0, low_open=True)
        _checks.number("weight_decay", self.weight_decay, low=0.0)


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FitConfig = FitConfig(),
                   on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Minimise cross-entropy with AdamW and a cosine schedule; returns the mean loss per epoch.

    Seeds torch with ``config.seed`` so a run is reproducible (shuffling, init of stochastic
    encoders). ``on_epoch(epoch, loss)`` is called after each epoch (progress bars).
    """
    _checks.tensor("x", x, min_dim=2)
    _checks.tensor("y", y, min_dim=1, max_dim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    torch.manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(x) // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    model.train()
    for epoch in range(config.epochs):
        total = 0.0
        for idx in torch.randperm(len(x)).split(config.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of argmax predictions equal to y."""
    model.eval()
    correct = sum((model(xb).argmax(-1) == yb).sum().item()
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)
