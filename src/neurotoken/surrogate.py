"""Surrogate gradients for the Heaviside step H(x), x = h - theta.

Each surrogate is a smooth stand-in ``primitive(x)`` for H; the backward pass of a spike
function uses its derivative ``grad(x)``. Every surrogate takes one width/slope parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _checks, _spec
from ._registry import Registry

SURROGATES: Registry[type[Surrogate]] = Registry("surrogate")


@dataclass(frozen=True)
class Surrogate:
    """Base class: subclasses define ``primitive`` (smooth step) and ``grad`` (its derivative)."""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """dH/dx := the surrogate's derivative, a fresh tensor (built in place: one allocation,
        which matters on CPU where every large fresh tensor pays its page faults)."""
        raise NotImplementedError

    def _positive(self, field: str) -> None:
        _checks.number(f"{type(self).__name__}.{field}", getattr(self, field), low=0.0, low_open=True)


@SURROGATES.register("straight_through")
@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Straight-through estimator: dH/dx := scale (identity backward for scale = 1)."""

    scale: float = 1.0

    def __post_init__(self):
        self._positive("scale")

    def primitive(self, x):
        return self.scale * x

    def grad(self, x):
        return torch.full_like(x, self.scale)


@SURROGATES.register("sigmoid")
@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """H(x) ~ sigma(k x); dH/dx := k sigma(k x) (1 - sigma(k x))."""

    slope: float = 4.0

    def __post_init__(self):
        self._positive("slope")

    def primitive(self, x):
        return torch.sigmoid(self.slope * x)

    def grad(self, x):
        s = torch.sigmoid(self.slope * x)
        return s.sub_(s.square()).mul_(self.slope)


@SURROGATES.register("atan")
@dataclass(frozen=True)
class Atan(Surrogate):
    """H(x) ~ 1/2 + atan(pi/2 alpha x)/pi; dH/dx := (alpha/2) / (1 + (pi/2 alpha x)^2)."""

    alpha: float = 2.0

    def __post_init__(self):
        self._positive("alpha")

    def primitive(self, x):
        return 0.5 + torch.atan(0.5 * math.pi * self.alpha * x) / math.pi

    def grad(self, x):
        return (x * (0.5 * math.pi * self.alpha)).square_().add_(1).reciprocal_().mul_(0.5 * self.alpha)


@SURROGATES.register("triangle")
@dataclass(frozen=True)
class Triangle(Surrogate):
    """Piecewise-linear surrogate: dH/dx := max(0, 1 - |x|/w) / w (unit area, support |x| < w)."""

    width: float = 1.0

    def __post_init__(self):
        self._positive("width")

    def primitive(self, x):
        u = (x / self.width).clamp(-1.0, 1.0)
        return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)

    def grad(self, x):
        return x.abs().div_(-self.width).add_(1).clamp_min_(0.0).div_(self.width)


@SURROGATES.register("fast_sigmoid")
@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike fast sigmoid (Zenke & Ganguli 2018): dH/dx := 1 / (1 + k|x|)^2 (peak 1, as snnTorch)."""

    slope: float = 25.0

    def __post_init__(self):
        self._positive("slope")

    def primitive(self, x):
        return x / (1 + self.slope * x.abs())

    def grad(self, x):
        return x.abs().mul_(self.slope).add_(1).square_().reciprocal_()


def resolve(surrogate: Surrogate | str | dict) -> Surrogate:
    """A surrogate object, its registered name with default width, or its :func:`config` dict."""
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str):
        return SURROGATES.get(surrogate)()
    if isinstance(surrogate, dict):
        return _spec.build(SURROGATES, surrogate, "surrogate")
    raise TypeError(f"surrogate must be a Surrogate or one of {SURROGATES.names()}, got {type(surrogate).__name__}")


def config(surrogate: Surrogate) -> dict:
    """A JSON-able dict of a registered surrogate, {"name": ..., width parameter}."""
    return _spec.spec(SURROGATES, surrogate)
