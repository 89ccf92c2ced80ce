"""Linear recurrence, eq. (24): h_t = a_t h_{t-1} + b_t along one dim, h_{-1} = h0.

`sequential` is the readable definition; `parallel` (prefix scan), `chunked` (matmul within
chunks), `fft` (convolution, constant gains) and `fused` (a compiled CPU kernel,
:mod:`neurotoken.kernels.scan`) are fast paths tested against it. The torch method functions work
on time-last tensors with h0 already folded into b_0 (h_0 = a_0 h0 + b_0); `fused` takes b's own
layout.
"""

from __future__ import annotations

import cmath

import torch
import torch.nn.functional as F

from . import _checks
from ._registry import Registry
from .kernels import scan as fused_scan

METHODS: Registry = Registry("scan method")


@METHODS.register("sequential")
def _sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. (24) step by step: h_t = a_t h_{t-1} + b_t."""
    h, hs = 0, []
    for a_t, b_t in zip(a.expand(*a.shape[:-1], b.shape[-1]).unbind(-1), b.unbind(-1)):
        h = a_t * h + b_t
        hs.append(h)
    return torch.stack(hs, -1)


@METHODS.register("parallel")
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
def _chunked(a: torch.Tensor, b: torch.Tensor, chunk_size: int) -> torch.Tensor:
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


@METHODS.register("fft")
def _fft(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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


@METHODS.register("fused")
def _fused(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Eq. (24) in one compiled pass over `dim` of b in its own layout, forward and backward."""
    why = fused_scan.unsupported(b)
    if why is not None:
        raise ValueError(f"method 'fused' cannot run: {why}; use method='sequential' or 'parallel'")
    return fused_scan.linear_scan(a, b, h0, dim)


@METHODS.register("auto")
def _auto(b: torch.Tensor, dim: int) -> str:
    """The method for b: fused when its kernel can run, else parallel when L >= 64 and b has at
    most 512 channels (numel / L), else sequential.

    Measured on a 2-core CPU: the fused kernel beats the sequential loop from L = 8 up (the loop
    pays per-step overhead) and the torch scans at every size; without it, the parallel scan's
    O(L log L) work beats the loop only for few channels; chunked and fft won no case there.
    """
    if fused_scan.unsupported(b) is None:
        return "fused"
    length = b.shape[dim]
    return "parallel" if length >= 64 and b.numel() // length <= 512 else "sequential"


def linear_scan(a, b: torch.Tensor, h0: torch.Tensor | None = None, dim: int = 0,
                method: str = "auto", chunk_size: int = 64) -> torch.Tensor:
    """All h_t of eq. (24), h_t = a_t h_{t-1} + b_t along `dim` with h_{-1} = h0 (default 0).

    a is a number or a tensor broadcastable to b (constant along `dim` when its size there is 1);
    h0 broadcasts to b's shape without `dim`. Returns a tensor of b's shape (dtype promoted).
    method: "sequential" (reference), "parallel", "chunked" (uses chunk_size), "fft" (a constant
    along `dim` only), "fused" (numba, CPU) or "auto" (see `_auto`).
    """
    METHODS.get(method)
    _checks.tensor("b", b, min_dim=1)
    if not (b.is_floating_point() or b.is_complex()):
        raise TypeError(f"b must be a floating-point or complex tensor, got {b.dtype}")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if not -b.dim() <= dim < b.dim():
        raise ValueError(f"dim must be in [{-b.dim()}, {b.dim() - 1}] for b of shape {tuple(b.shape)}, "
                         f"got {dim}")
    if b.shape[dim] == 0:
        raise ValueError(f"b must have a nonzero length along dim {dim}, got shape {tuple(b.shape)}")
    _checks.positive_int("chunk_size", chunk_size)
    if isinstance(a, torch.Tensor):
        _checks.tensor("a", a)
        _broadcastable("a", a, b.shape, "b")
    elif isinstance(a, bool) or not isinstance(a, (int, float, complex)):
        raise TypeError(f"a must be a number or a torch.Tensor, got {type(a).__name__}")
    elif not cmath.isfinite(a):
        raise ValueError(f"a must be finite, got {a}")
    a = torch.as_tensor(a, dtype=torch.result_type(a, b), device=b.device)
    shape = tuple(a.shape)
    a = a.reshape((1,) * (b.dim() - a.dim()) + shape)
    if method == "fft" and a.shape[dim] != 1:
        raise ValueError(f"a of shape {shape} varies along dim {dim} of b; "
                         "method 'fft' needs gains constant along dim")
    if h0 is not None:
        _checks.tensor("h0", h0)
        _broadcastable("h0", h0, b.shape[:dim % b.dim()] + b.shape[dim % b.dim() + 1:], "b without dim")
    method = _auto(b, dim) if method == "auto" else method
    if method == "fused":
        return _fused(a, b, h0, dim)
    a = a.movedim(dim, -1)
    b = b.to(a.dtype).movedim(dim, -1)
    if h0 is not None:
        b = torch.cat([b[..., :1] + a[..., :1] * h0.unsqueeze(-1), b[..., 1:]], -1)
    a = a.to(b.dtype)
    h = _chunked(a, b, chunk_size) if method == "chunked" else METHODS.get(method)(a, b)
    return h.movedim(-1, dim)


def _broadcastable(name: str, x: torch.Tensor, shape: torch.Size, target: str) -> None:
    try:
        ok = x.dim() <= len(shape) and torch.broadcast_shapes(x.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {tuple(x.shape)} must broadcast to {target} "
                         f"of shape {tuple(shape)}")
