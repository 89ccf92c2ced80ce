"""Intra-token blocks along a virtual time axis tau: projections followed by LIF NPEs (eq. 13).

Inputs carry time first and channels last: [T, B, D] (or [T, B, ..., D]); images are
channels-last [T, B, H, W, C].
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .kernels.event_linear import BACKENDS as EVENT_BACKENDS
from .kernels.event_linear import EventLinear
from .mixers.base import DEFAULT, check_dtype, resolve_neuron
from .neurons import LIF, NPE
from .scan import linear_scan
from .spikes import Binary
from .surrogate import Triangle


def _neuron(neuron, options: dict) -> NPE:
    """The layer's own NPE: a copy of ``neuron`` (an NPE or its config dict), else LIF(**options)."""
    if neuron is not None and options:
        raise TypeError(f"pass either neuron= or LIF options, not both: {sorted(options)}")
    return resolve_neuron(DEFAULT if neuron is None else neuron, lambda: LIF(**options))


class SpikingLinear(nn.Module):
    """s_t = NPE(W x_t + b) for every step t of x [T, ..., in], eq. (13): ``neuron`` (an NPE, copied,
    or its config dict) or LIF options as keyword arguments. ``linear_backend`` ("auto", "dense",
    "event") chooses how W x_t is computed (:class:`EventLinear`, eq. (93))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, neuron=None,
                 linear_backend: str = "auto", **options):
        super().__init__()
        self.linear = EventLinear(in_features, out_features, bias, backend=_checks.choice(
            "linear_backend", linear_backend, EVENT_BACKENDS))
        self.neuron = _neuron(neuron, options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, ..., in_features] -> spikes [T, ..., out_features]."""
        return self.run(x)[0]

    def run(self, x: torch.Tensor, grad_mask: torch.Tensor | None = None,
            support: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(spikes, mask): ``grad_mask`` keeps dL/dx only where it is True (event path, eq. (93));
        with ``support`` the mask is where this layer's surrogate derivative is non-zero, else None."""
        _checks.tensor("x", x, min_dim=2)
        if x.shape[-1] != self.linear.in_features or x.numel() == 0:
            raise ValueError(f"x must be [T, ..., {self.linear.in_features}] with no size 0, "
                             f"got shape {tuple(x.shape)}")
        x = check_dtype("x", x, self)  # forward hooks (counters, NeuroBench) see the input alone without a mask
        current = self.linear(x) if grad_mask is None else self.linear(x, grad_mask)
        s = self.neuron(current)
        return s, _support(self.neuron, current, s) if support else None


def _check_support(neuron: NPE) -> NPE:
    """``neuron`` if :func:`_support` can recompute its membrane (binary spikes, a real
    decay, reset "subtract" without feedback or "none"), else ValueError."""
    p = neuron.params()
    if type(p.spike) is not Binary or p.reset not in ("subtract", "none") or p.feedback is not None \
            or torch.as_tensor(p.decay).is_complex():
        raise ValueError("sparse_input_grad needs neurons with binary spikes, a real decay and reset 'subtract' "
                         f"(no feedback) or 'none', got {neuron!r}")
    return neuron


def _support(neuron: NPE, current: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """Where the surrogate derivative of ``neuron`` is non-zero over a run from rest (bool, the
    current's shape [T, ...]): the only entries of dL/d spikes that reach its input current. The
    membrane h_t = a h_{t-1} + x_t - theta s_{t-1} (eq. (9)) is recomputed from the current and the
    spikes by one scan, without gradient; an entry at the support's edge may flip by rounding, where
    the derivative is near zero for a continuous surrogate."""
    p = neuron.params()
    with torch.no_grad():
        drive = current.clone()
        if p.reset == "subtract":
            drive[1:] -= p.threshold * spikes[:-1]
        h = linear_scan(p.decay, drive, dim=0).sub_(p.threshold)
        if isinstance(p.surrogate, Triangle):  # its support |x| < width, without the formula's temporaries
            return h.abs_() < p.surrogate.width
        return p.surrogate.grad(h) != 0


class SpikingMLP(nn.Sequential):
    """A stack of SpikingLinear layers, sizes = (in, hidden_1, ..., out). ``sparse_input_grad``: each
    layer after the first computes dL/d(input spikes) only where the previous layer's surrogate
    derivative is non-zero (the rest never reaches a weight), on its event path (eq. (93)): the same
    weight gradients, cheaper with a surrogate of narrow support (e.g. "triangle" of small width) at
    low spike rates; dL/dx of the spikes between layers is zero outside the support."""

    def __init__(self, sizes: Sequence[int], bias: bool = True, sparse_input_grad: bool = False, **neuron):
        sizes = [_checks.positive_int(f"sizes[{i}]", n) for i, n in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes must hold at least (in, out), got {sizes}")
        super().__init__(*(SpikingLinear(a, b, bias, **neuron) for a, b in zip(sizes, sizes[1:])))
        self.sparse_input_grad = _checks.flag("sparse_input_grad", sparse_input_grad)
        if sparse_input_grad:
            for layer in list(self)[:-1]:
                _check_support(layer.neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, ..., sizes[0]] -> spikes [T, ..., sizes[-1]]."""
        if not self.sparse_input_grad:
            return super().forward(x)
        mask = None
        for i, layer in enumerate(self):
            x, mask = layer.run(x, mask, support=i < len(self) - 1)
        return x


def _pair(name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints >= low, as a pair (numpy integers too)."""
    pair = tuple(value) if hasattr(value, "__iter__") and not isinstance(value, str) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(_checks.positive_int(f"{name}", v, low=low) for v in pair)


NORMS = ("none", "bn", "tdbn")
POOLS = ("none", "avg", "max")


class TimeBatchNorm(nn.BatchNorm1d):
    """Batch norm of x [..., C] per channel, statistics over every leading axis (time steps folded
    into the batch), times ``scale``: y = scale gamma (x - mu) / sqrt(var + eps) + beta. ``scale`` = 1
    is BN folded over time; ``scale`` = alpha V_th is threshold-dependent BN (tdBN), eq. (77)."""

    def __init__(self, channels: int, scale: float = 1.0, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(_checks.positive_int("channels", channels), eps=_checks.number("eps", eps, low=0.0,
                         low_open=True), momentum=_checks.number("momentum", momentum, low=0.0, high=1.0))
        self.scale = _checks.number("scale", scale, low=0.0, low_open=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(x.reshape(-1, x.shape[-1]), self.running_mean, self.running_var, self.weight * self.scale,
                         self.bias, self.training, self.momentum, self.eps)
        return y.reshape(x.shape)


def pool2d(x: torch.Tensor, kind: str, size: int) -> torch.Tensor:
    """``kind`` ("avg" | "max") pooling of x [..., H, W, C] (channels last) over H, W in windows of
    ``size`` with stride ``size``, per leading index (per time step)."""
    lead, (H, W, C) = x.shape[:-3], x.shape[-3:]
    y = (F.avg_pool2d if kind == "avg" else F.max_pool2d)(x.reshape(-1, H, W, C).permute(0, 3, 1, 2), size)
    return y.permute(0, 2, 3, 1).reshape(*lead, *y.shape[2:], C)


def conv_steps(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` applied to every time step of x [T, B, H, W, C] (channels last) -> [T, B, H', W', C'];
    a current repeated over time (a stride-0 time axis, as direct coding gives) is convolved once."""
    if x.shape[0] > 1 and x.stride(0) == 0:
        return conv_steps(conv, x[:1]).expand(x.shape[0], -1, -1, -1, -1)
    T, B, H, W, C = x.shape
    y = conv(x.reshape(T * B, H, W, C).permute(0, 3, 1, 2))  # channels_last strides, no copy
    return y.permute(0, 2, 3, 1).reshape(T, B, *y.shape[2:], y.shape[1])


def _threshold(neuron: NPE | None) -> float:
    """V_th of ``neuron`` as a float (1 for the conventional form); tdBN needs one scalar threshold."""
    if neuron is None:
        return 1.0
    theta = neuron.params().threshold
    if isinstance(theta, torch.Tensor):
        if theta.numel() != 1:
            raise ValueError("norm='tdbn' needs a scalar neuron threshold, got a per-channel one")
        theta = float(theta.detach())
    return float(theta)


def activation(neuron=None, spiking: bool = True, **options) -> nn.Module:
    """The non-linearity of a layer: its own NPE (a copy of ``neuron``, else LIF(**options)), or
    ReLU for the conventional twin (``spiking=False``; neuron options are then ignored)."""
    return _neuron(neuron, options) if _checks.flag("spiking", spiking) else nn.ReLU()


class SpikingConv2d(nn.Module):
    """s_t = NPE(pool(norm(conv(x_t)))) for x [T, B, H, W, C] (channels last), eq. (13) with a
    convolution; returns [T, B, H', W', C']. ``norm``: "none", "bn" (:class:`TimeBatchNorm`) or
    "tdbn" (scale ``alpha`` V_th); ``pool``: "none", "avg" or "max" on the currents, window
    ``pool_size``, so the output stays spikes. ``spiking=False`` is the conventional twin: ReLU for
    the NPE (its options are then ignored)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, neuron=None, *, norm: str = "none", alpha: float = 1.0, pool: str = "none",
                 pool_size: int = 2, spiking: bool = True, **options):
        super().__init__()
        sizes = {n: _pair(n, v, low) for n, v, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                                         ("padding", padding, 0))}
        self.conv = nn.Conv2d(_checks.positive_int("in_channels", in_channels),
                              _checks.positive_int("out_channels", out_channels), **sizes,
                              bias=_checks.flag("bias", bias))
        self.spiking = _checks.flag("spiking", spiking)
        self.neuron = activation(neuron, spiking, **options)
        norm = _checks.choice("norm", norm, NORMS)
        alpha = _checks.number("alpha", alpha, low=0.0, low_open=True)
        scale = alpha * _threshold(self.neuron if spiking else None) if norm == "tdbn" else 1.0
        self.norm = None if norm == "none" else TimeBatchNorm(out_channels, scale)
        self.pool = _checks.choice("pool", pool, POOLS)
        self.pool_size = _checks.positive_int("pool_size", pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, H, W, C_in] -> spikes [T, B, H', W', C_out]."""
        return self.run(self.check(x))

    def check(self, x: torch.Tensor) -> torch.Tensor:
        """Require x [T, B, H, W, C_in] (no size 0, H and W at least the padded kernel) on the device and
        of the dtype of the parameters (metadata only)."""
        _checks.tensor("x", x, min_dim=5, max_dim=5)
        T, B, H, W, C = x.shape
        if C != self.conv.in_channels:
            raise ValueError(f"x must have {self.conv.in_channels} channels last, got shape {tuple(x.shape)}")
        (kh, kw), (ph, pw) = self.conv.kernel_size, self.conv.padding
        if x.numel() == 0 or H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"x must be [T, B, H, W, {C}] with no size 0 and H, W at least the kernel "
                             f"{(kh, kw)} after padding {(ph, pw)}, got shape {tuple(x.shape)}")
        return check_dtype("x", x, self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The layer without the boundary checks (for the models that call it on checked tensors)."""
        y = conv_steps(self.conv, x)
        if self.norm is not None:
            y = self.norm(y)
        if self.pool != "none":
            y = pool2d(y, self.pool, self.pool_size)
        return self.neuron(y)


class SEWBlock(nn.Module):
    """Spike-element-wise residual block (SEW-ResNet ADD, eq. (78)): s + f(s), f two
    3x3 :class:`SpikingConv2d` units; the sum of two spike maps is a spike count (0, 1, 2 for
    binary spikes), so the next layer still reads events. ``options`` go to both units."""

    def __init__(self, channels: int, **options):
        super().__init__()
        self.units = nn.Sequential(*(SpikingConv2d(channels, channels, 3, padding=1, **options) for _ in range(2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, H, W, C] spikes -> x + f(x), same shape."""
        return self.run(self.units[0].check(x))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The block without the boundary checks (for the models that call it on checked tensors)."""
        return x + self.units[1].run(self.units[0].run(x))


class MSBlock(nn.Module):
    """Membrane-shortcut residual block (MS-ResNet, eq. (79)): u + norm(conv(SpikingConv2d(NPE(u)))),
    the shortcut carrying real membrane currents u while both convolutions read spikes."""

    def __init__(self, channels: int, neuron=None, *, norm: str = "none", alpha: float = 1.0,
                 spiking: bool = True, **options):
        super().__init__()
        unit = SpikingConv2d(channels, channels, 3, padding=1, neuron=neuron, norm=norm, alpha=alpha,
                             spiking=spiking, **options)
        self.fire = copy.deepcopy(unit.neuron)  # the same neuron configuration, its own state
        self.unit = unit
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = None if norm == "none" else TimeBatchNorm(channels, unit.norm.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, H, W, C] membrane currents -> x + residual, same shape."""
        return self.run(self.unit.check(x))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The block without the boundary checks (for the models that call it on checked tensors)."""
        y = conv_steps(self.conv, self.unit.run(self.fire(x)))
        return x + (y if self.norm is None else self.norm(y))


class SpikingRecurrent(nn.Module):
    """s_t = NPE(W x_t + V s_{t-1}) along the leading axis of x [T, B, in] (eq. (80): eq. 9 with a
    recurrent current; ``recurrent=False`` drops V). ``spiking=False`` is the conventional twin: the NPE's leak
    a without spike or reset, h_t = a h_{t-1} + W x_t + V r_{t-1}, r_t = ReLU(Re h_t)."""

    def __init__(self, in_features: int, out_features: int, recurrent: bool = True, neuron=None,
                 spiking: bool = True, **options):
        super().__init__()
        self.linear = nn.Linear(_checks.positive_int("in_features", in_features),
                                _checks.positive_int("out_features", out_features))
        self.recurrent = None
        if _checks.flag("recurrent", recurrent):  # small recurrent gains: the leaky sum alone has gain 1 / (1 - a)
            self.recurrent = nn.Linear(out_features, out_features, bias=False)
            with torch.no_grad():
                self.recurrent.weight.mul_(0.1)
        self.spiking = _checks.flag("spiking", spiking)
        self.neuron = _neuron(neuron, options)  # the twin keeps it for its leak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, in_features] -> spikes (twin: activations) [T, B, out_features]."""
        _checks.tensor("x", x, min_dim=3, max_dim=3)
        if x.shape[-1] != self.linear.in_features or x.numel() == 0:
            raise ValueError(f"x must be [T, B, {self.linear.in_features}] with no size 0, got shape {tuple(x.shape)}")
        return self.run(check_dtype("x", x, self))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The layer without the boundary checks (for the models that call it on checked tensors)."""
        c = self.linear(x)
        if not self.spiking:
            return self._twin(c)
        if self.recurrent is None:
            return self.neuron(c)
        state, out = None, []
        for c_t in c.unbind(0):
            s, state = self.neuron((c_t if state is None else c_t + self.recurrent(state.s))[None], state,
                                   return_state=True)
            out.append(s[0])
        return torch.stack(out)

    def _twin(self, c: torch.Tensor) -> torch.Tensor:
        a = self.neuron.params().decay
        if self.recurrent is None:
            h = linear_scan(a, c, dim=0)
            return F.relu(h.real if h.is_complex() else h)
        h, r, out = None, None, []
        for c_t in c.unbind(0):
            h = c_t if h is None else a * h + c_t + self.recurrent(r)
            r = F.relu(h.real if h.is_complex() else h)
            out.append(r)
        return torch.stack(out)


__all__ = ["EventLinear", "SpikingLinear", "SpikingMLP", "SpikingConv2d", "TimeBatchNorm", "SEWBlock", "MSBlock",
           "SpikingRecurrent", "activation", "pool2d", "conv_steps", "NORMS", "POOLS"]
