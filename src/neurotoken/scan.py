"""Linear recurrence, eq. (24): h_t = a_t h_{t-1} + b_t along one dim, h_{-1} = h0.

Every method in ``METHODS`` has one signature, ``method(a, b, h0, dim) -> h``: a, b and h0 (or None)
of one dtype, a of b's rank and broadcastable to it, h0 broadcastable to b without dim, dim in
[0, b.dim()). `sequential` is the readable definition; `parallel` (prefix scan), `chunked` (matmul
within chunks), `fft` (convolution, constant gains), `fused` (a compiled CPU kernel,
:mod:`neurotoken.kernels.scan`) and `triton` (a chunked GPU kernel, :mod:`neurotoken.kernels.triton.scan`)
are fast paths tested against it; `auto` runs the method
:func:`choose` picks. :func:`linear_scan` validates the arguments once and calls a method.
"""

from __future__ import annotations

import cmath
import functools
import warnings

import torch
import torch.nn.functional as F

from . import _checks
from ._registry import Registry
from .kernels import scan as fused_scan

METHODS: Registry = Registry("scan method")
CHUNK_SIZE = 64


def _time_last(core):
    """A method (a, b, h0, dim) -> h from a core scanning the last dim with h0 folded into b_0
    (h_0 = a_0 h0 + b_0); keyword options go to the core."""
    @functools.wraps(core)
    def method(a, b, h0, dim, **options):
        a, b = a.movedim(dim, -1), b.movedim(dim, -1)
        if h0 is not None:
            b = torch.cat([b[..., :1] + a[..., :1] * h0.unsqueeze(-1), b[..., 1:]], -1)
        return core(a, b, **options).movedim(-1, dim)
    return method


@METHODS.register("sequential")
@_time_last
def _sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. (24) step by step: h_t = a_t h_{t-1} + b_t."""
    h, hs = 0, []
    for a_t, b_t in zip(a.expand(*a.shape[:-1], b.shape[-1]).unbind(-1), b.unbind(-1)):
        h = a_t * h + b_t
        hs.append(h)
    return torch.stack(hs, -1)


@METHODS.register("parallel")
@_time_last
def _parallel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. (24) as a Hillis-Steele scan of (a, b) pairs, (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)."""
    a = a.expand(*a.shape[:-1], b.shape[-1])
    shift = 1
    while shift < b.shape[-1]:
        b = torch.cat([b[..., :shift], a[..., shift:] * b[..., :-shift] + b[..., shift:]], -1)
        a = torch.cat([a[..., :shift], a[..., shift:] * a[..., :-shift]], -1)
        shift *= 2
    return b


@METHODS.register("chunked")
@_time_last
def _chunked(a: torch.Tensor, b: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> torch.Tensor:
    """Eq. (24) per chunk as h = M b + carry * cumprod(a), M[i, j] = prod_{j<k<=i} a_k."""
    length = b.shape[-1]
    pad = -length % chunk_size
    a = F.pad(a.expand(*a.shape[:-1], length), (0, pad)).unflatten(-1, (-1, chunk_size))
    b = F.pad(b, (0, pad)).unflatten(-1, (-1, chunk_size))
    after = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=b.device).triu(1)
    transfer_t = torch.where(after, a.unsqueeze(-2), 1).cumprod(-1).triu()  # [j, i] = M[i, j]
    local = (b.unsqueeze(-2) @ transfer_t).squeeze(-2)
    carry, hs = 0, []
    for decay, h in zip(a.cumprod(-1).unbind(-2), local.unbind(-2)):
        h = h + decay * carry
        carry = h[..., -1:]
        hs.append(h)
    return torch.cat(hs, -1)[..., :length]


@_time_last
def _convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. (24) for constant a as a causal convolution, h_t = sum_{k<=t} a^{t-k} b_k, in float64."""
    length, dtype = b.shape[-1], b.dtype
    wide = torch.complex128 if dtype.is_complex else torch.float64
    a, b = a.to(wide), b.to(wide)
    kernel = torch.cat([torch.ones_like(a), a.expand(*a.shape[:-1], length - 1)], -1).cumprod(-1)
    if dtype.is_complex:
        h = torch.fft.ifft(torch.fft.fft(kernel, 2 * length) * torch.fft.fft(b, 2 * length))
    else:
        h = torch.fft.irfft(torch.fft.rfft(kernel, 2 * length) * torch.fft.rfft(b, 2 * length), 2 * length)
    return h[..., :length].to(dtype)


@METHODS.register("fft")
def _fft(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Eq. (24) by FFT convolution; gains must be constant along dim."""
    if a.shape[dim] != 1:
        raise ValueError(f"a of shape {tuple(a.shape)} varies along dim {dim} of b; "
                         "method 'fft' needs gains constant along dim")
    return _convolution(a, b, h0, dim)


@METHODS.register("fused")
def _fused(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Eq. (24) in one compiled pass over dim of b in its own layout, forward and backward (numba,
    CPU); off the CPU it steps aside to `parallel`."""
    if b.device.type != "cpu":
        warnings.warn(f"scan method 'fused' runs on the cpu only; b is on {b.device.type}: using 'parallel'",
                      RuntimeWarning, stacklevel=3)
        return _parallel(a, b, h0, dim)
    why = fused_scan.unsupported(b)
    if why is not None:
        raise ValueError(f"method 'fused' cannot run: {why}; use method='sequential' or 'parallel'")
    return fused_scan.linear_scan(a, b, h0, dim)


def choose(b: torch.Tensor, dim: int) -> str:
    """The method `auto` runs for b, from its shape, device and dtype (no values read): `triton` on
    CUDA and `fused` on the CPU where their kernels run; else off the CPU `parallel` (no Python loop
    over time); else on the CPU
    `parallel` for L >= 64 with at most 512 channels (numel / L), where its O(L log L) work beats
    the loop's per-step overhead, and `sequential` otherwise."""
    if b.device.type == "cuda" and fused_scan.triton_unsupported(b) is None:
        return "triton"
    if fused_scan.unsupported(b) is None:
        return "fused"
    length = b.shape[dim]
    if b.device.type != "cpu" or (length >= 64 and b.numel() // length <= 512):
        return "parallel"
    return "sequential"


@METHODS.register("auto")
def _auto(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, dim: int | None = None):
    """Eq. (24) by the method :func:`choose` picks for b."""
    if not isinstance(b, torch.Tensor):  # the former chooser form, METHODS.get("auto")(b, dim) -> name
        warnings.warn("METHODS.get('auto')(b, dim) returning a method name is deprecated; use "
                      "neurotoken.scan.choose(b, dim)", DeprecationWarning, stacklevel=2)
        return choose(a, b)
    return METHODS.get(choose(b, dim))(a, b, h0, dim)


@METHODS.register("triton")
def _triton(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int,
            chunk_size: int | None = None) -> torch.Tensor:
    """Eq. (24) in a chunked Triton kernel, forward and reverse-scan backward (real gains; CUDA, or
    the CPU under ``TRITON_INTERPRET=1``); chunk_size None lets the kernel cut chunks to fill the
    device. Where the kernel cannot run it steps aside to `parallel`, with a warning."""
    why = fused_scan.triton_unsupported(b)
    if why is not None:
        warnings.warn(f"scan method 'triton' cannot run: {why}; using 'parallel'", RuntimeWarning, stacklevel=3)
        return _parallel(a, b, h0, dim)
    return fused_scan.linear_scan_triton(a, b, h0, dim, chunk_size)


def linear_scan(a, b: torch.Tensor, h0: torch.Tensor | None = None, dim: int = 0,
                method: str = "auto", chunk_size: int | None = None) -> torch.Tensor:
    """All h_t of eq. (24), h_t = a_t h_{t-1} + b_t along `dim` with h_{-1} = h0 (default 0).

    a is a number or a tensor broadcastable to b (constant along `dim` when its size there is 1);
    h0 broadcasts to b's shape without `dim`. Returns a tensor of b's shape in the promoted dtype of
    a, b and h0. method: one of ``METHODS`` ("sequential" is the reference; "chunked" and "triton"
    use chunk_size, None for their default; "fft" needs a constant along `dim`; "auto" runs :func:`choose`'s pick).
    """
    run = METHODS.get(method)
    _checks.tensor("b", b, min_dim=1)
    if not (b.is_floating_point() or b.is_complex()):
        raise TypeError(f"b must be a floating-point or complex tensor, got {b.dtype}")
    dim = _checks.integer("dim", dim)
    if not -b.dim() <= dim < b.dim():
        raise ValueError(f"dim must be in [{-b.dim()}, {b.dim() - 1}] for b of shape {tuple(b.shape)}, "
                         f"got {dim}")
    dim %= b.dim()
    if b.shape[dim] == 0:
        raise ValueError(f"b must have a nonzero length along dim {dim}, got shape {tuple(b.shape)}")
    if chunk_size is not None:
        _checks.positive_int("chunk_size", chunk_size)
    if isinstance(a, torch.Tensor):
        _broadcastable("a", a, b.shape, "b")
    elif isinstance(a, bool) or not isinstance(a, (int, float, complex)):
        raise TypeError(f"a must be a number or a torch.Tensor, got {type(a).__name__}")
    elif not cmath.isfinite(a):
        raise ValueError(f"a must be finite, got {a}")
    dtype = torch.result_type(a, b)
    if h0 is not None:
        _checks.tensor("h0", h0)
        _broadcastable("h0", h0, b.shape[:dim] + b.shape[dim + 1:], "b without dim")
        dtype = torch.promote_types(dtype, h0.dtype)
        h0 = h0.to(dtype)
    a = torch.as_tensor(a, dtype=dtype, device=b.device)
    a = a.reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape))
    options = {"chunk_size": chunk_size} if chunk_size is not None and method in ("chunked", "triton") else {}
    return run(a, b.to(dtype), h0, dim, **options)


def _broadcastable(name: str, x: torch.Tensor, shape: torch.Size, target: str) -> None:
    try:
        ok = x.dim() <= len(shape) and torch.broadcast_shapes(x.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {tuple(x.shape)} must broadcast to {target} "
                         f"of shape {tuple(shape)}")
