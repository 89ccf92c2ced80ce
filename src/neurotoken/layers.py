"""Intra-token blocks along a virtual time axis tau: projections followed by LIF NPEs (eq. 13).

Inputs carry time first and channels last: [T, B, D] (or [T, B, ..., D]); images are
channels-last [T, B, H, W, C].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import _checks
from .mixers.base import DEFAULT, check_bool, check_dtype, resolve_neuron
from .neurons import LIF, NPE


def _neuron(neuron, options: dict) -> NPE:
    """The layer's own NPE: a copy of ``neuron`` (an NPE or its config dict), else LIF(**options)."""
    if neuron is not None and options:
        raise TypeError(f"pass either neuron= or LIF options, not both: {sorted(options)}")
    return resolve_neuron(DEFAULT if neuron is None else neuron, lambda: LIF(**options))


class SpikingLinear(nn.Module):
    """s_t = NPE(W x_t + b) for every step t of x [T, ..., in], eq. (13): ``neuron`` (an NPE, copied,
    or its config dict) or LIF options as keyword arguments."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, neuron=None, **options):
        super().__init__()
        self.linear = nn.Linear(_checks.positive_int("in_features", in_features),
                                _checks.positive_int("out_features", out_features), bias=check_bool("bias", bias))
        self.neuron = _neuron(neuron, options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, ..., in_features] -> spikes [T, ..., out_features]."""
        _checks.tensor("x", x, min_dim=2)
        if x.shape[-1] != self.linear.in_features or x.numel() == 0:
            raise ValueError(f"x must be [T, ..., {self.linear.in_features}] with no size 0, "
                             f"got shape {tuple(x.shape)}")
        return self.neuron(self.linear(check_dtype("x", x, self)))


class SpikingMLP(nn.Sequential):
    """A stack of SpikingLinear layers, sizes = (in, hidden_1, ..., out)."""

    def __init__(self, sizes: Sequence[int], bias: bool = True, **neuron):
        sizes = [_checks.positive_int(f"sizes[{i}]", n) for i, n in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes must hold at least (in, out), got {sizes}")
        super().__init__(*(SpikingLinear(a, b, bias, **neuron) for a, b in zip(sizes, sizes[1:])))


def _pair(name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints >= low, as a pair (numpy integers too)."""
    pair = tuple(value) if hasattr(value, "__iter__") and not isinstance(value, str) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(_checks.positive_int(f"{name}", v, low=low) for v in pair)


class SpikingConv2d(nn.Module):
    """s_t = LIF(conv(x_t)) for x [T, B, H, W, C] (channels last); returns [T, B, H', W', C']."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, **neuron):
        super().__init__()
        sizes = {n: _pair(n, v, low) for n, v, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                                         ("padding", padding, 0))}
        self.conv = nn.Conv2d(_checks.positive_int("in_channels", in_channels),
                              _checks.positive_int("out_channels", out_channels), **sizes,
                              bias=check_bool("bias", bias))
        self.neuron = LIF(**neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, H, W, C_in] -> spikes [T, B, H', W', C_out]."""
        _checks.tensor("x", x, min_dim=5, max_dim=5)
        T, B, H, W, C = x.shape
        if C != self.conv.in_channels:
            raise ValueError(f"x must have {self.conv.in_channels} channels last, got shape {tuple(x.shape)}")
        (kh, kw), (ph, pw) = self.conv.kernel_size, self.conv.padding
        if x.numel() == 0 or H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"x must be [T, B, H, W, {C}] with no size 0 and H, W at least the kernel "
                             f"{(kh, kw)} after padding {(ph, pw)}, got shape {tuple(x.shape)}")
        check_dtype("x", x, self)
        y = self.conv(x.reshape(T * B, H, W, C).permute(0, 3, 1, 2))  # channels_last strides, no copy
        return self.neuron(y.permute(0, 2, 3, 1).reshape(T, B, *y.shape[2:], y.shape[1]))


__all__ = ["SpikingLinear", "SpikingMLP", "SpikingConv2d"]
