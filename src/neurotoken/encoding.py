"""Encoders and decoders along the virtual time axis tau, eq. (11)-(12).

An encoder maps a real tensor x of shape [...] to spikes of shape [T, ...] (tau leading), float
tensors of x's dtype holding exact small integers; a decoder reduces dim 0 back to [...].
Rounding is half up everywhere: round(v) := floor(v + 1/2). Counts are computed in float64, so
they are exact for float32 inputs.
"""

from __future__ import annotations

import torch

from . import _checks
from ._registry import Registry

ENCODERS: Registry = Registry("encoding")

MAX_POSITIONAL_T = 24  # a T-bit integer stays exact in float32 only up to 2^24


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _wide(x: torch.Tensor) -> torch.Tensor:
    # float64 makes t * x * (K - 1) exact for float32 x; MPS has no float64.
    return x.float() if x.device.type == "mps" else x.double()


def _round(v: torch.Tensor) -> torch.Tensor:
    return torch.floor(v + 0.5)


def _steps(T: int, x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """t = start .. start + T - 1 shaped [T, 1, ..., 1] to broadcast against x."""
    t = torch.arange(start, start + T, device=x.device, dtype=x.dtype)
    return t.view(T, *([1] * x.dim()))


def _check_x(x, clip: bool, *, unit: bool = True) -> torch.Tensor:
    """x as a float tensor. A unit encoder's x must be finite (clip=True) or lie in [0, 1]: one value
    check (none on the meta device, which holds no values); ``direct`` reads no values, so a NaN
    current propagates as in any forward pass."""
    x = _float(_checks.real("x", _checks.tensor("x", x)))
    if not unit:
        return x
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be a bool, got {type(clip).__name__}")
    readable = x.device.type != "meta"
    if clip:
        _checks.tensor("x", x, finite=readable)
        return x.clamp(0.0, 1.0)
    if readable and not bool(((x >= 0) & (x <= 1)).all()):  # NaN fails both comparisons
        raise ValueError(f"x must lie in [0, 1] (got min {x.min().item():g}, max {x.max().item():g}); "
                         "pass clip=True to clamp")
    return x


def _spread(x: torch.Tensor, T: int, scale: int) -> torch.Tensor:
    """s_t = round(t x scale) - round((t-1) x scale), t = 1..T: Bresenham spreading of round(T x scale)."""
    w = _wide(x)
    c = _round(_steps(T + 1, w) * (w * scale))
    return (c[1:] - c[:-1]).to(x.dtype)


@ENCODERS.register("direct")
def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Direct coding: the real value x is the input current at every step (a [T, ...] view of x)."""
    x = _check_x(x, False, unit=False)
    T = _checks.positive_int("T", T)
    return x.expand(T, *x.shape)


@ENCODERS.register("rate")
def rate(x: torch.Tensor, T: int, clip: bool = False) -> torch.Tensor:
    """Rate code, eq. (11): round(x T) ones spread evenly over tau, so the mean is within 1/(2T) of x."""
    x = _check_x(x, clip)
    return _spread(x, _checks.positive_int("T", T), 1)


@ENCODERS.register("unary")
def unary(x: torch.Tensor, T: int, clip: bool = False) -> torch.Tensor:
    """Unary (thermometer) code, eq. (11): the first round(x T) steps fire, the rest are silent."""
    x = _check_x(x, clip)
    T = _checks.positive_int("T", T)
    n = _round(_wide(x) * T)
    return (_steps(T, n) < n).to(x.dtype)


@ENCODERS.register("bernoulli")
def bernoulli(x: torch.Tensor, T: int, generator: torch.Generator | None = None,
              clip: bool = False) -> torch.Tensor:
    """Bernoulli code, eq. (12): s_t ~ Bernoulli(x) iid over tau."""
    x = _check_x(x, clip)
    T = _checks.positive_int("T", T)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    u = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)


@ENCODERS.register("positional")
def positional(x: torch.Tensor, T: int, clip: bool = False) -> torch.Tensor:
    """Positional code: the T bits of q = round(x (2^T - 1)), most significant bit first."""
    x = _check_x(x, clip)
    T = _checks.positive_int("T", T)
    if T > MAX_POSITIONAL_T:
        raise ValueError(f"T must be <= {MAX_POSITIONAL_T} for positional encoding "
                         f"(a T-bit integer is exact in float32 only up to 2^24), got {T}")
    q = _round(_wide(x) * (2**T - 1)).long()
    shift = torch.arange(T - 1, -1, -1, device=x.device).view(T, *([1] * x.dim()))
    return ((q >> shift) & 1).to(x.dtype)


@ENCODERS.register("first_spike")
def first_spike(x: torch.Tensor, T: int, clip: bool = False) -> torch.Tensor:
    """Latency code: one spike at t* = round((1 - x)(T - 1)), so larger x fires earlier."""
    x = _check_x(x, clip)
    T = _checks.positive_int("T", T, low=2)
    t_star = _round((1 - _wide(x)) * (T - 1))
    return (_steps(T, t_star) == t_star).to(x.dtype)


@ENCODERS.register("multilevel")
def multilevel(x: torch.Tensor, T: int, levels: int = 4, clip: bool = False) -> torch.Tensor:
    """Multi-level code: K-ary spikes, each K-1 binary rate-code steps; sum = round(x T (K-1))."""
    x = _check_x(x, clip)
    T = _checks.positive_int("T", T)
    K = _checks.positive_int("levels", levels, low=2)
    return _spread(x, T, K - 1)


def encode(name: str, x: torch.Tensor, T: int, **kw) -> torch.Tensor:
    """Encode x over T steps with the encoder registered as name (see ENCODERS.names())."""
    return ENCODERS.get(name)(x, T, **kw)


def _check_s(s) -> torch.Tensor:
    s = _float(_checks.real("s", _checks.tensor("s", s, min_dim=1)))
    if s.shape[0] == 0:
        raise ValueError(f"s must hold at least one time step (dim 0), got shape {tuple(s.shape)}")
    return s


def decode_rate(s: torch.Tensor) -> torch.Tensor:
    """Rate decoding, eq. (11): the mean over tau (inverts direct, rate, unary and bernoulli)."""
    return _check_s(s).mean(0)


def decode_positional(s: torch.Tensor) -> torch.Tensor:
    """Exact inverse of positional: sum_t s_t 2^(T-1-t) / (2^T - 1), for binary s of T <= MAX_POSITIONAL_T."""
    s = _check_s(s)
    T = s.shape[0]
    if T > MAX_POSITIONAL_T:
        raise ValueError(f"s must have at most {MAX_POSITIONAL_T} time steps (dim 0) for positional decoding "
                         f"(the encoder's limit), got shape {tuple(s.shape)}")
    if not bool(((s == 0) | (s == 1)).all()):
        raise ValueError("s must be binary (0/1) for positional decoding")
    w = _wide(s)
    weights = 2.0 ** torch.arange(T - 1, -1, -1, device=s.device, dtype=w.dtype)
    q = torch.tensordot(weights, w, dims=([0], [0]))
    return (q / (2.0**T - 1)).to(s.dtype)


def decode_first_spike(s: torch.Tensor) -> torch.Tensor:
    """Latency decoding: x = 1 - t*/(T - 1) from the first nonzero step; no spike decodes to 0."""
    s = _check_s(s)
    T = s.shape[0]
    if T < 2:
        raise ValueError("s must have at least 2 time steps (dim 0) for first_spike decoding, "
                         f"got shape {tuple(s.shape)}")
    fired = s != 0
    t_star = fired.to(torch.uint8).argmax(0).to(_wide(s).dtype)
    x = 1 - t_star / (T - 1)
    return torch.where(fired.any(0), x, torch.zeros_like(x)).to(s.dtype)


def decode_multilevel(s: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Multi-level decoding: mean over tau divided by K - 1."""
    s = _check_s(s)
    K = _checks.positive_int("levels", levels, low=2)
    return s.mean(0) / (K - 1)


__all__ = [
    "ENCODERS", "encode", "direct", "rate", "unary", "bernoulli", "positional", "first_spike",
    "multilevel", "decode_rate", "decode_positional", "decode_first_spike", "decode_multilevel",
]
