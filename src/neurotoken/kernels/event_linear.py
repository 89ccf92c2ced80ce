"""Event-driven linear map on spikes, eq. (93): y = x W^T + b computed from the non-zero inputs
only, y[m] = b + sum over k with x[m, k] != 0 of x[m, k] W[:, k] (binary spikes: a sum of weight
columns, adds only). Reference twin: :func:`dense_linear`.

Forward turns x [M, K] into its events (per row the active inputs and their values, in one numba
kernel, :mod:`neurotoken.kernels._event_numba`, imported lazily) and accumulates rows of W^T; it
keeps the events, not x, for backward. Backward: dL/dW^T[k] = sum over the rows m where
x[m, k] != 0 of x[m, k] dL/dy[m] (only the rows of active inputs); dL/dx = dL/dy W dense and
exact, or only where ``grad_mask`` is True (zeros elsewhere: exact wherever the upstream
surrogate derivative is non-zero when the mask is its support), or skipped when x needs no
gradient. Zeros of x are skipped: a zero input times an infinite weight gives 0 here, NaN densely.

Host reads: the kernel sizes its event arrays from the count of non-zeros (CPU tensors only);
``backend="auto"`` reads a sampled count of non-zeros per call on the CPU, none elsewhere.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from . import numba_threads, workspace

BACKENDS = ("auto", "dense", "event")
DTYPES = (torch.float32, torch.float64)
# "auto" takes the event path below this rate of non-zeros, on at least MIN_ROWS rows and MIN_MACS
# dense multiply-accumulates (below them the kernel's fixed costs exceed the product); measured with
# `neurotoken bench --case event-linear`
CROSSOVER, MIN_ROWS, MIN_MACS = 0.15, 128, 2**24
SAMPLE = 4096  # elements read to estimate the rate


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The reference: x W^T + b over the last axis of x [..., K], weight [N, K], bias [N]."""
    y = x @ weight.T
    return y if bias is None else y + bias


def available() -> bool:
    """Whether the kernel can run (numba installed; it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def unsupported(x: torch.Tensor, weight: torch.Tensor) -> str | None:
    """Why the event kernel cannot run on x and weight, or None when it can."""
    if not available():
        return "numba is not installed"
    if torch.compiler.is_compiling():
        return "torch.compile is tracing (the kernel is opaque to it)"
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return f"x is on {x.device.type}, weight on {weight.device.type}; the kernel runs on cpu"
    if x.dtype not in DTYPES or weight.dtype != x.dtype:
        return f"x is {x.dtype}, weight {weight.dtype}; the kernel takes both float32 or both float64"
    return None


def spike_rate(x: torch.Tensor) -> float:
    """The fraction of non-zero entries of x, estimated from at most ``SAMPLE`` evenly strided
    elements (an odd stride, so a power-of-two channel axis is walked through); one host read."""
    flat = x.detach().reshape(-1)
    sample = flat[::max(1, flat.numel() // SAMPLE) | 1]
    return torch.count_nonzero(sample).item() / max(1, sample.numel())


def _events(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    from ._event_numba import events

    indptr = np.empty(x.shape[0] + 1, np.int64)
    return (indptr, *events(x, indptr))


def _transposed(a: torch.Tensor) -> torch.Tensor:
    """a^T of a CPU matrix, contiguous, on pooled memory (a tiled numba transpose: torch's copy of a
    transposed view walks one side a row per value)."""
    from ._event_numba import transposed

    out = workspace.empty((a.shape[1], a.shape[0]), a.dtype)
    transposed(a.contiguous().numpy(), out.numpy())
    return out


class _EventLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, grad_mask):
        from ._event_numba import accumulate

        numba_threads(x.shape[0] // 16)
        indptr, cols, values, ones = _events(x.detach().contiguous().numpy())
        y = workspace.empty((x.shape[0], weight.shape[0]), x.dtype)
        init = weight.new_zeros(weight.shape[0]) if bias is None else bias.detach()
        wt = _transposed(weight.detach())
        accumulate(not ones)(indptr, cols, values, wt.numpy(), init.numpy(), y.numpy())
        ctx.events, ctx.width = (indptr, cols, values, ones), x.shape[1]
        ctx.wt = None if grad_mask is None else wt  # the masked input gradient's rows of W^T
        ctx.save_for_backward(weight, grad_mask)
        ctx.set_materialize_grads(False)
        return y

    @staticmethod
    def backward(ctx, gy):
        from ._event_numba import accumulate, masked, transpose

        weight, mask = ctx.saved_tensors
        if gy is None:
            return None, None, None, None
        gy, gx, gw = gy.contiguous(), None, None
        numba_threads(gy.shape[0] // 16)
        if ctx.needs_input_grad[0] and mask is None:
            gx = gy @ weight
        elif ctx.needs_input_grad[0]:
            gx = workspace.empty((gy.shape[0], ctx.width), gy.dtype)
            masked(mask.contiguous().numpy(), gy.numpy(), ctx.wt.numpy(), gx.numpy())
        if ctx.needs_input_grad[1]:
            indptr, cols, values, ones = ctx.events
            colptr = np.empty(ctx.width + 1, np.int64)
            rows, by_col = transpose(indptr, cols, values, ctx.width, colptr)
            gwt = workspace.empty((ctx.width, gy.shape[1]), gy.dtype)
            accumulate(not ones)(colptr, rows, by_col, gy.numpy(), np.zeros(gy.shape[1], gwt.numpy().dtype),
                                 gwt.numpy())
            gw = _transposed(gwt)  # in weight's layout: autograd would copy a transposed view into it
        return gx, gw, gy.sum(0) if ctx.needs_input_grad[2] else None, None


def event_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 grad_mask: torch.Tensor | None = None) -> torch.Tensor:
    """x W^T + b over the last axis of x [..., K] (CPU, float32 or float64, see :func:`unsupported`)
    from x's non-zeros; with ``grad_mask`` (bool, x's shape) dL/dx only where it is True."""
    _checks.tensor("x", x, min_dim=1)
    _checks.tensor("weight", weight, min_dim=2, max_dim=2)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be [..., {weight.shape[1]}] (weight's in_features), got shape {tuple(x.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if grad_mask is not None and (grad_mask.dtype != torch.bool or grad_mask.shape != x.shape):
        raise ValueError(f"grad_mask must be a bool tensor of x's shape {tuple(x.shape)}, "
                         f"got {grad_mask.dtype} {tuple(grad_mask.shape)}")
    why = unsupported(x, weight)
    if why is not None:
        raise ValueError(f"event_linear cannot run: {why}")
    flat = (lambda t: None if t is None else t.reshape(-1, x.shape[-1]))
    y = _EventLinear.apply(flat(x), weight, bias, flat(grad_mask))
    return y.view(*x.shape[:-1], weight.shape[0])


class EventLinear(nn.Linear):
    """nn.Linear whose product skips zero inputs, eq. (93): ``backend`` "event" (:func:`event_linear`),
    "dense" (x W^T + b), or "auto": event on the CPU in float32/float64 when the sampled rate of
    non-zeros of the input (:func:`spike_rate`, kept in ``rate``) is below ``CROSSOVER`` and the
    product is large enough (``MIN_ROWS``, ``MIN_MACS``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, backend: str = "auto",
                 device=None, dtype=None):
        super().__init__(_checks.positive_int("in_features", in_features),
                         _checks.positive_int("out_features", out_features), _checks.flag("bias", bias),
                         device=device, dtype=dtype)
        self.backend = _checks.choice("backend", backend, BACKENDS)
        self.rate: float | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, backend: str = "auto") -> EventLinear:
        """An EventLinear holding ``linear``'s own parameters (no new initialisation, no random draws)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        new = cls(linear.in_features, linear.out_features, linear.bias is not None, backend, device="meta")
        new.weight, new.bias = linear.weight, linear.bias
        return new

    def _event(self, x: torch.Tensor) -> bool:
        if self.backend == "dense":
            return False
        why = unsupported(x, self.weight)
        if why is not None and self.backend == "event":
            warnings.warn(f"backend='event' cannot run: {why}; using the dense product", RuntimeWarning,
                          stacklevel=3)
        if why is not None or self.backend == "event":
            return why is None
        rows = x.numel() // self.in_features
        if rows < MIN_ROWS or rows * self.in_features * self.out_features < MIN_MACS:
            return False
        self.rate = spike_rate(x)
        return self.rate < CROSSOVER

    def forward(self, x: torch.Tensor, grad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [..., in_features] -> [..., out_features]; x of the weight's dtype (any under autocast) and device.
        ``grad_mask`` (bool, x's shape): on the event path dL/dx only where it is True (the dense path
        computes all of dL/dx)."""
        _checks.real("x", _checks.tensor("x", x, min_dim=1))
        if x.shape[-1] != self.in_features or x.numel() == 0:
            raise ValueError(f"x must be [..., {self.in_features}] with no size 0, got shape {tuple(x.shape)}")
        w = self.weight
        if not x.is_floating_point() or x.device != w.device or (
                x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(f"x must be a floating-point tensor of the weight's dtype on its device "
                            f"({w.dtype} on {w.device}), got {x.dtype} on {x.device}")
        if self._event(x):
            return event_linear(x, self.weight, self.bias, grad_mask=grad_mask)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"
