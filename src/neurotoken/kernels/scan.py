"""Fused linear scan on CPU, eq. (24): forward and backward each one pass over the sequence in a
numba kernel (:mod:`neurotoken.kernels.scan_numba`, imported lazily), in the tensor's own layout
(time at `dim`, the channels after it contiguous). Reference twin: ``linear_scan(method="sequential")``.

The backward of h_t = a_t h_{t-1} + b_t is the reverse scan g_t = dL/dh_t + a_{t+1} g_{t+1}
(conjugated gains for complex values), with dL/db_t = g_t and dL/da_t = g_t h_{t-1}.
"""

from __future__ import annotations

import importlib.util
import math

import torch

from . import numba_threads, workspace

DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def unsupported(b: torch.Tensor) -> str | None:
    """Why the kernel cannot scan b, or None when it can."""
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed"
    if torch.compiler.is_compiling():
        return "torch.compile is tracing (the numba kernel is opaque to it)"
    if b.device.type != "cpu" or b.dtype not in DTYPES:
        return f"b is {b.dtype} on {b.device.type}; the kernel takes float or complex tensors on cpu"
    return None


class _FusedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0):
        from .scan_numba import scan_forward

        h = workspace.empty(b.shape, b.dtype)
        numba_threads(b.shape[0])
        scan_forward(a.numpy(), b.numpy(), h0.numpy(), h.numpy())
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, gh):
        from .scan_numba import scan_backward

        a, h, h0 = ctx.saved_tensors
        gb, gh0 = workspace.empty(h.shape, h.dtype), torch.empty_like(h0)
        ga = h.new_empty((h.shape[0], *a.shape[1:]))  # per batch row; summed below when a is shared
        numba_threads(h.shape[0])
        scan_backward(a.numpy(), h.numpy(), h0.numpy(), gh.contiguous().numpy(), gb.numpy(), ga.numpy(),
                      gh0.numpy())
        return ga.sum(0, keepdim=True) if a.shape[0] == 1 else ga, gb, gh0


def _rows(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int):
    """(a [1 or N, L or 1, C], b [N, L, C], h0 [N, C]) contiguous in the promoted dtype, N the dims before
    `dim`, C those after it."""
    dim %= b.dim()
    dtype = torch.promote_types(a.dtype, b.dtype)
    pre, length, post = b.shape[:dim], b.shape[dim], b.shape[dim + 1:]
    n, c = math.prod(pre), math.prod(post)
    shared = all(size == 1 for size in a.shape[:dim])  # one gain for every batch row
    a3 = a.to(dtype).expand(*a.shape[:dim] if shared else pre, a.shape[dim], *post)
    a3 = a3.reshape(1 if shared else n, a.shape[dim], c).contiguous()
    h0 = b.new_zeros((), dtype=dtype) if h0 is None else h0.to(dtype)
    return a3, b.to(dtype).reshape(n, length, c).contiguous(), h0.expand(pre + post).reshape(n, c).contiguous()


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t along `dim` of b (see :func:`unsupported`), h_{-1} = h0 (None: 0);
    a has b's rank and broadcasts to it, h0 broadcasts to b without `dim`."""
    return _FusedScan.apply(*_rows(a, b, h0, dim)).view(b.shape)


def triton_unsupported(b: torch.Tensor) -> str | None:
    """Why the Triton scan cannot scan b, or None when it can."""
    from . import triton

    why = triton.unsupported(b)
    if why is None and torch.compiler.is_compiling():
        return "torch.compile is tracing (the Triton kernel is opaque to it)"
    if why is None and b.dtype not in DTYPES:
        return f"b is {b.dtype}; the Triton scan takes float or complex tensors (32 or 64 bits)"
    return why


def linear_scan_triton(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None, dim: int,
                       chunk: int | None = None) -> torch.Tensor:
    """As :func:`linear_scan`, in the Triton kernel (see :func:`triton_unsupported`), time cut into
    chunks of `chunk` steps (None: enough chunks to fill the device)."""
    from .triton.scan import TritonScan

    return TritonScan.apply(*_rows(a, b, h0, dim), chunk).view(b.shape)
