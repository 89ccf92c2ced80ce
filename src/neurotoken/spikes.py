"""Spike functions, eq. (4)-(7): exact discrete forward values, surrogate-gradient backward.

Convention: reaching a threshold fires, H(0) = 1. Thresholds may be floats or tensors
(learnable); gradients reach them through x = h - theta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _checks, _spec
from ._registry import Registry
from .surrogate import Atan, Surrogate, resolve

DEFAULT_SURROGATE = Atan()


class _Heaviside(torch.autograd.Function):
    """Forward H(x) (or the Bernoulli sample 1[u < sigma(x)] when u is given), NaN where x is NaN;
    backward surrogate'(x)."""

    @staticmethod
    def forward(ctx, x, u, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        # floor(clamp(d, -1, 0)) is -1 where d < 0, 0 where d >= 0 and NaN where d is NaN: one fresh
        # tensor, exact, and NaN propagates without a separate isnan pass
        if u is None:
            return x.clamp(-1, 0).floor_().add_(1)
        return (u - torch.sigmoid(x)).clamp_(-1, 0).floor_().abs_()

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return ctx.surrogate.grad(x).mul_(grad_out), None, None


def _step(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    return _Heaviside.apply(x, None, surrogate)


def _check_h(h) -> torch.Tensor:
    return _checks.real("h", _checks.tensor("h", h))


def _threshold(threshold):
    """A finite float threshold, or a tensor (trusted: learnable thresholds are checked by their owner)."""
    return threshold if isinstance(threshold, torch.Tensor) else _checks.number("threshold", threshold)


def binary(h: torch.Tensor, threshold=1.0, surrogate: Surrogate | str = DEFAULT_SURROGATE) -> torch.Tensor:
    """Eq. (4): s = H(h - theta)."""
    return _step(_check_h(h) - _threshold(threshold), resolve(surrogate))


def bernoulli(h: torch.Tensor, threshold=1.0, generator: torch.Generator | None = None,
              surrogate: Surrogate | str = DEFAULT_SURROGATE, grad: str = "surrogate") -> torch.Tensor:
    """Eq. (5): s ~ Bernoulli(sigma(h - theta)).

    grad="surrogate" back-propagates surrogate'(h - theta); grad="mean" is straight-through of
    the mean, ds/dh := d sigma(h - theta)/dh.
    """
    _check_h(h)
    _checks.choice("grad", grad, ("surrogate", "mean"))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator is not None and generator.device.type != h.device.type:
        raise ValueError(f"generator is on {generator.device} but h is on {h.device}: "
                         f"use torch.Generator(device={str(h.device)!r}) (or none on meta)")
    return _bernoulli(h - _threshold(threshold), generator, resolve(surrogate), grad)


def _bernoulli(x, generator, surrogate, grad):
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    if grad == "surrogate":
        return _Heaviside.apply(x, u, surrogate)
    p = torch.sigmoid(x)
    return p + ((u < p).to(x.dtype) - p).detach()


def _ordered(name: str, thresholds, min_len: int):
    """Validate float thresholds (strictly increasing); tensors are trusted."""
    if any(isinstance(t, torch.Tensor) for t in thresholds):
        if len(thresholds) < min_len:
            raise ValueError(f"{name} must hold at least {min_len} values, got {len(thresholds)}")
        return tuple(thresholds)
    return _checks.increasing(name, thresholds, min_len=min_len)


def ternary(h: torch.Tensor, thresholds=(-1.0, 1.0), surrogate: Surrogate | str = DEFAULT_SURROGATE) -> torch.Tensor:
    """Eq. (6): s = +1 if h >= theta_plus, -1 if h <= theta_minus, else 0."""
    _check_h(h)
    if len(thresholds) != 2:
        raise ValueError(f"thresholds must be (theta_minus, theta_plus), got {len(thresholds)} values")
    lo, hi = _ordered("thresholds", thresholds, 2)
    sg = resolve(surrogate)
    return _step(h - hi, sg) - _step(lo - h, sg)


def multilevel(h: torch.Tensor, thresholds=(1.0, 2.0, 3.0), surrogate: Surrogate | str = DEFAULT_SURROGATE) -> torch.Tensor:
    """Eq. (7): s = number of thresholds theta_1 < ... < theta_{K-1} reached, in {0..K-1}."""
    _check_h(h)
    sg = resolve(surrogate)
    return sum(_step(h - t, sg) for t in _ordered("thresholds", thresholds, 1))


# ---- spike kinds used by neurons: one threshold theta sets all levels -------------------------

SPIKES: Registry[type] = Registry("spike")


@SPIKES.register("binary")
@dataclass(frozen=True)
class Binary:
    """s in {0, 1}: eq. (4) at theta."""

    bits = 1

    def __call__(self, h, theta, surrogate):
        return _step(h - theta, surrogate)


@SPIKES.register("bernoulli")
@dataclass(frozen=True)
class Bernoulli:
    """s in {0, 1}: eq. (5) at theta, seeded by ``generator``; ``grad`` as in :func:`bernoulli`."""

    generator: torch.Generator | None = None
    grad: str = "surrogate"
    bits = 1

    def __post_init__(self):
        _checks.choice("grad", self.grad, ("surrogate", "mean"))

    def __call__(self, h, theta, surrogate):
        return _bernoulli(h - theta, self.generator, surrogate, self.grad)


@SPIKES.register("ternary")
@dataclass(frozen=True)
class Ternary:
    """s in {-1, 0, 1}: eq. (6) with thresholds (-theta, +theta)."""

    bits = 2

    def __call__(self, h, theta, surrogate):
        return _step(h - theta, surrogate) - _step(-theta - h, surrogate)


@SPIKES.register("multilevel")
@dataclass(frozen=True)
class MultiLevel:
    """s in {0..K-1}: eq. (7) with thresholds theta, 2 theta, ..., (K-1) theta."""

    levels: int = 4

    def __post_init__(self):
        _checks.positive_int("levels", self.levels, low=2)

    @property
    def bits(self) -> int:
        return math.ceil(math.log2(self.levels))

    def __call__(self, h, theta, surrogate):
        return sum(_step(h - k * theta, surrogate) for k in range(1, self.levels))


def resolve_spike(spike) -> Binary | Bernoulli | Ternary | MultiLevel:
    """A spike-kind object, its registered name with defaults, or its :func:`spike_config` dict."""
    if isinstance(spike, str):
        return SPIKES.get(spike)()
    if isinstance(spike, dict):
        return _spec.build(SPIKES, spike, "spike")
    if isinstance(spike, SPIKES.values()):
        return spike
    raise TypeError(f"spike must be a spike kind or one of {SPIKES.names()}, got {type(spike).__name__}")


def spike_config(spike) -> dict:
    """A JSON-able dict of a spike kind, {"name": ..., **options} (a Bernoulli generator is not saved)."""
    return _spec.spec(SPIKES, resolve_spike(spike), skip=("generator",))


__all__ = ["binary", "bernoulli", "ternary", "multilevel", "Binary", "Bernoulli", "Ternary",
           "MultiLevel", "SPIKES", "resolve_spike", "spike_config"]
