"""Surrogate gradients for the Heaviside step H(x), x = h - theta.

Each surrogate is a smooth stand-in ``primitive(x)`` for H; the backward pass of a spike
function uses its derivative ``grad(x) = formula(x, w)``. Every surrogate takes one width/slope
parameter w, its only field. ``formula`` is written once, in plain arithmetic (``abs`` and this
module's ``exp``), so torch runs it on tensors and the fused kernels compile it per class.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from . import _checks, _spec
from ._registry import Registry

SURROGATES: Registry[type[Surrogate]] = Registry("surrogate")
BLOCK = 65536


def exp(x):
    """e^x for a formula: torch.exp on tensors (the fused kernels compile it as the scalar exp)."""
    return torch.exp(x)


@dataclass(frozen=True)
class Surrogate:
    """Base class: a subclass has one positive field w and defines ``primitive(x)`` (a smooth step)
    and ``formula(x, w)``, a staticmethod giving its derivative dH/dx."""

    formula = None

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def parameter(self) -> float:
        """The value of the one parameter w (whatever the subclass names it)."""
        return getattr(self, dataclasses.fields(self)[0].name)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """dH/dx := formula(x, w), a fresh tensor. On the CPU a large x is done in blocks of
        ``BLOCK`` elements per thread: the formula's temporaries then stay in cache instead of each
        being a fresh large tensor that pays its page faults."""
        if self.formula is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither formula nor grad")
        w, block = self.parameter, BLOCK * torch.get_num_threads()
        if x.device.type != "cpu" or x.numel() <= block:
            return self.formula(x, w)
        out = torch.empty(x.shape, dtype=x.dtype)
        for xb, ob in zip(x.reshape(-1).split(block), out.view(-1).split(block)):
            ob.copy_(self.formula(xb, w))
        return out

    def __post_init__(self):
        fields = dataclasses.fields(self)
        if len(fields) == 1:
            _checks.number(f"{type(self).__name__}.{fields[0].name}", self.parameter, low=0.0, low_open=True)


@SURROGATES.register("straight_through")
@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Straight-through estimator: dH/dx := scale (identity backward for scale = 1)."""

    scale: float = 1.0

    def primitive(self, x):
        return self.scale * x

    @staticmethod
    def formula(x, w):
        return x * 0 + w


@SURROGATES.register("sigmoid")
@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """H(x) ~ sigma(k x); dH/dx := k sigma(k x) (1 - sigma(k x))."""

    slope: float = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.slope * x)

    @staticmethod
    def formula(x, w):
        e = 1 / (1 + exp(-w * x))
        return w * e * (1 - e)


@SURROGATES.register("atan")
@dataclass(frozen=True)
class Atan(Surrogate):
    """H(x) ~ 1/2 + atan(pi/2 alpha x)/pi; dH/dx := (alpha/2) / (1 + (pi/2 alpha x)^2)."""

    alpha: float = 2.0

    def primitive(self, x):
        return 0.5 + torch.atan(0.5 * math.pi * self.alpha * x) / math.pi

    @staticmethod
    def formula(x, w):
        u = (0.5 * math.pi * w) * x
        return (0.5 * w) / (1 + u * u)


@SURROGATES.register("triangle")
@dataclass(frozen=True)
class Triangle(Surrogate):
    """Piecewise-linear surrogate: dH/dx := max(0, 1 - |x|/w) / w (unit area, support |x| < w)."""

    width: float = 1.0

    def primitive(self, x):
        u = (x / self.width).clamp(-1.0, 1.0)
        return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)

    @staticmethod
    def formula(x, w):
        t = 1 - abs(x) / w
        return (t + abs(t)) * (0.5 / w)  # max(0, t) / w


@SURROGATES.register("fast_sigmoid")
@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike fast sigmoid (Zenke & Ganguli 2018): dH/dx := 1 / (1 + k|x|)^2 (peak 1, as snnTorch)."""

    slope: float = 25.0

    def primitive(self, x):
        return x / (1 + self.slope * x.abs())

    @staticmethod
    def formula(x, w):
        d = 1 + w * abs(x)
        return 1 / (d * d)


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
