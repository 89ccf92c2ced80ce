"""Zeroth-order training (SPSA / MeZO): two forward passes, no backward, no stored activations.

One step with a fresh seed k and perturbation z ~ N(0, I) regenerated from k (never stored):
    g = (L(theta + eps z) - L(theta - eps z)) / (2 eps),   theta <- theta - lr (g z + wd theta)
E[g z] -> grad L as eps -> 0 (Spall 1992; Malladi et al. 2023). Memory is that of inference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import _checks
from .checkpoint import rng_states, set_rng_states


@dataclass(frozen=True)
class ZOConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    eps: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        _checks.positive_int("steps", self.steps)
        _checks.positive_int("batch_size", self.batch_size)
        _checks.number("lr", self.lr, low=0.0, low_open=True)
        _checks.number("eps", self.eps, low=0.0, low_open=True)
        _checks.number("weight_decay", self.weight_decay, low=0.0)
        _checks.positive_int("seed", self.seed, low=0)


def _generator(device: torch.device, seed: int) -> torch.Generator | None:
    """A generator seeded with ``seed`` on ``device`` (none on ``meta``, which holds no values)."""
    return None if device.type == "meta" else torch.Generator(device=device).manual_seed(seed)


def _perturb(params: list[torch.Tensor], seed: int, scale: float) -> None:
    """theta += scale * z, z regenerated from ``seed`` one tensor at a time, on each tensor's device."""
    gens: dict[torch.device, torch.Generator] = {}
    for p in params:
        gen = gens.setdefault(p.device, _generator(p.device, seed))
        p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype, device=p.device), alpha=scale)


@torch.no_grad()
def spsa_gradient(params: list[torch.Tensor], loss: Callable[[], torch.Tensor], seed: int, eps: float) -> tuple[float, float]:
    """(projected gradient g, mean loss) at theta; leaves theta as it found it (up to rounding)."""
    _perturb(params, seed, eps)
    plus = float(loss())
    _perturb(params, seed, -2 * eps)
    minus = float(loss())
    _perturb(params, seed, eps)
    return (plus - minus) / (2 * eps), (plus + minus) / 2


@torch.no_grad()
def zo_step(params: list[torch.Tensor], loss: Callable[[], torch.Tensor], seed: int, cfg: ZOConfig) -> float:
    """One SPSA update of params in place; returns the mean of the two losses."""
    g, mean_loss = spsa_gradient(params, loss, seed, cfg.eps)
    if cfg.weight_decay:
        for p in params:
            p.mul_(1 - cfg.lr * cfg.weight_decay)
    _perturb(params, seed, -cfg.lr * g)
    return mean_loss


def fit_zeroth_order(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ZOConfig = ZOConfig(),
                     loss_fn=nn.functional.cross_entropy) -> list[float]:
    """Train a classifier by SPSA on random mini-batches; returns the loss of every step."""
    _checks.tensor("x", x, min_dim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    losses = []
    for step in range(cfg.steps):
        idx = torch.randint(len(x), (cfg.batch_size,), generator=gen).to(x.device)
        step_seed = int(torch.randint(2**62, (1,), generator=gen))
        states = rng_states()  # both passes see the same stochastic encoding, on every device

        def loss():
            set_rng_states(states)
            return loss_fn(model(x[idx]), y[idx].to(x.device))

        losses.append(zo_step(params, loss, step_seed, cfg))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"zeroth-order loss became {losses[-1]} at step {step}")
    return losses
