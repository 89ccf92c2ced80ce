"""Fused multi-step LIF on CPU, eq. (9)-(10): forward and surrogate backward each one pass over
time in a numba kernel (:mod:`neurotoken.kernels.lif_numba`, imported lazily). Reference twin:
:func:`neurotoken.neurons.npe_multistep` with ``backend="sequential"``. :func:`lif_triton` runs the
same recurrences in Triton (:mod:`neurotoken.kernels.triton.lif`, GPU or the interpreter).

With gradients, forward keeps every state h_t (float32, or bfloat16 on request), nothing more:
backward recomputes each spike from its float32 state (the same bits), reads the states once with
dL/ds and writes dL/dx in one reverse pass over time.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import math

import numpy as np
import torch

from ..spikes import Binary, MultiLevel, Ternary
from ..surrogate import Surrogate
from . import numba_threads, workspace

RESETS = {"subtract": 0, "zero": 1, "none": 2}


def available() -> bool:
    """Whether the kernel can run (numba installed; it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def _spike_code(spike) -> tuple[int, int] | None:
    """(neg, levels) of lif_numba's spike: binary (0, 2), ternary (1, 2), multilevel (0, K)."""
    if type(spike) is MultiLevel:
        return 0, spike.levels
    return {Binary: (0, 2), Ternary: (1, 2)}.get(type(spike))


@functools.cache
def _has_source(surrogate: type) -> bool:
    try:
        inspect.getsource(surrogate.formula)
    except (OSError, TypeError):
        return False
    return True


def no_formula(surrogate: Surrogate) -> str | None:
    """Why the kernels cannot compute ``surrogate``'s derivative, or None when its formula serves."""
    return _no_formula(type(surrogate))


@functools.cache
def _no_formula(cls: type) -> str | None:
    """:func:`no_formula` of a surrogate class (everything it checks is the class's)."""
    name = cls.__name__
    if cls.formula is None:
        return f"surrogate {name} has no kernel formula (define a staticmethod formula(x, w))"
    if not _has_source(cls):
        return f"the source of {name}.formula is not available (defined interactively?) to compile it"
    if cls.grad is not Surrogate.grad:
        return f"surrogate {name} overrides grad, so its formula may not be its derivative"
    if len(dataclasses.fields(cls)) != 1:
        return f"surrogate {name} has {len(dataclasses.fields(cls))} fields; formula(x, w) takes one"
    return None


def _unsupported_params(p) -> str | None:
    """Why no fused kernel (numba or Triton) can run eq. (9) with NPEParams p, or None."""
    if torch.compiler.is_compiling():
        return "torch.compile is tracing (the fused kernels are opaque to it)"
    if p.decay.is_complex() if isinstance(p.decay, torch.Tensor) else isinstance(p.decay, complex):
        return "the decay is complex (resonate-and-fire)"
    if p.feedback is not None:
        return "a feedback matrix R is set"
    if _spike_code(p.spike) is None:
        return f"spike {type(p.spike).__name__} is not deterministic (binary, ternary, multilevel)"
    return no_formula(p.surrogate)


def unsupported(x: torch.Tensor, p) -> str | None:
    """Why the fused kernel cannot run eq. (9) with NPEParams p on x, or None when it can."""
    if not available():
        return "numba is not installed"
    why = _unsupported_params(p)
    if why is not None:
        return why
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return f"x is {x.dtype} on {x.device.type}; the kernel takes float32 on cpu"
    return None


def triton_unsupported(x: torch.Tensor, p) -> str | None:
    """Why the Triton kernel cannot run eq. (9) with NPEParams p on x, or None when it can."""
    from . import triton

    why = triton.unsupported(x) or _unsupported_params(p)
    if why is None and x.dtype != torch.float32:
        return f"x is {x.dtype}; the Triton kernel takes float32"
    if why is None:
        from .triton.lif import formula_error

        why = formula_error(type(p.surrogate), x.device)
    return why


def _params(beta, threshold, shape: torch.Size) -> tuple:
    """beta and theta for the kernels: two float32 numbers when every neuron shares both (the kernel
    then keeps no per-neuron copy in cache), else both as :func:`_flat` (one compiled form for each
    case, not four)."""
    if all(not isinstance(t, torch.Tensor) or t.numel() == 1 for t in (beta, threshold)):
        return tuple(np.float32(t.item() if isinstance(t, torch.Tensor) else t) for t in (beta, threshold))
    return _flat(beta, shape), _flat(threshold, shape)


def _flat(t: torch.Tensor | float | None, shape: torch.Size) -> np.ndarray:
    """t broadcast to `shape` as a new, writable, contiguous float32 array [M] (None: zeros, one kept
    array per size; the kernels only read it): a read-only view would be another compiled form of each
    kernel. The per-neuron work around the kernels runs in numpy: a torch op over M values would wake
    torch's OpenMP pool, whose spinning threads then compete with numba's for the cores."""
    if t is None:
        return _zeros(math.prod(shape))
    out = np.empty(math.prod(shape), dtype=np.float32)
    out.reshape(shape)[...] = t.detach().to(torch.float32).numpy() if isinstance(t, torch.Tensor) else t
    return out


@functools.lru_cache(maxsize=8)
def _zeros(size: int) -> np.ndarray:
    return np.zeros(size, dtype=np.float32)


def _sum_to(g: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    """The per-neuron gradient g (x's shape without time) summed to t's shape, in numpy."""
    lead = g.ndim - t.dim()
    axes = (*range(lead), *(lead + i for i, n in enumerate(t.shape) if n == 1 and g.shape[lead + i] != 1))
    return torch.from_numpy(np.ascontiguousarray(g.sum(axis=axes, dtype=np.float32)).reshape(t.shape))


def _threads(shape: torch.Size) -> int:
    """numba threads for a kernel over the neurons of `shape`: at most one per 1024."""
    return numba_threads(math.prod(shape) // 1024)


def _rows(t: torch.Tensor) -> np.ndarray:
    """[T, ...] -> a contiguous array [T, M] (a view of t when t is contiguous)."""
    return t.detach().contiguous().view(t.shape[0], math.prod(t.shape[1:])).numpy()


def _buffer(rows: int, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor | None:
    """An uninitialised, pooled [rows, *shape] tensor of dtype (float32, bfloat16 or int8); None for no rows."""
    if rows == 0:
        return None
    if dtype == torch.bfloat16:  # numpy has no bfloat16: pool its bits
        return workspace.empty((rows, *shape), torch.int16).view(torch.bfloat16)
    return workspace.empty((rows, *shape), dtype)


def _states(h: torch.Tensor) -> np.ndarray:
    """Saved states [T, ...] as a [T, M] array: float32, or a bfloat16 tensor's bits as uint16 (no copy)."""
    return _rows(h.view(torch.int16)).view(np.uint16) if h.dtype == torch.bfloat16 else _rows(h)


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, threshold, h0, s0, reset, spike, surrogate, all_states, state_dtype):
        from .lif_numba import forward

        T, shape = x.shape[0], x.shape[1:]
        code, levels = _spike_code(spike)
        grad, params = any(ctx.needs_input_grad[:5]), any(ctx.needs_input_grad[1:3])
        lean = grad and not all_states and state_dtype == torch.bfloat16
        kept = T if all_states or grad else 0
        s, h = workspace.empty(x.shape), _buffer(kept, shape, torch.bfloat16 if lean else torch.float32)
        spikes = _buffer(T if lean and (reset == "zero" or params) else 0, shape, torch.int8)
        last = workspace.empty((1, *shape))
        kernel = forward(RESETS[reset], code, levels)
        kernel(_rows(x), *_params(beta, threshold, shape), _flat(h0, shape), _flat(s0, shape), _threads(shape),
               _rows(s), None if h is None else _states(h), None if spikes is None else _rows(spikes),
               last.view(-1).numpy())
        if grad:  # a fixed beta or theta may be a float: kept on ctx, save_for_backward takes tensors
            fixed = [None if isinstance(t, torch.Tensor) else t for t in (beta, threshold)]
            ctx.save_for_backward(h, spikes, *(t if f is None else None for t, f in zip((beta, threshold), fixed)),
                                  h0, s0)
            ctx.fixed = fixed
            ctx.codes = RESETS[reset], code, levels, type(surrogate), np.float32(surrogate.parameter)
        ctx.set_materialize_grads(False)
        return s, h if all_states else last

    @staticmethod
    def backward(ctx, gs, gh):
        from .lif_numba import backward

        h, spikes, beta, threshold, h0, s0 = ctx.saved_tensors
        beta, threshold = (t if f is None else f for t, f in zip((beta, threshold), ctx.fixed))
        reset, code, levels, surrogate, width = ctx.codes
        T, shape = h.shape[0], h.shape[1:]
        gs = torch.zeros((T, *shape)) if gs is None else gs
        gh = torch.zeros((0, *shape)) if gh is None else gh
        dx, per_neuron = workspace.empty((T, *shape)), workspace.empty((4, *shape))  # grads below: sums, new arrays
        kernel = backward(reset, code, levels, surrogate, any(ctx.needs_input_grad[1:3]))
        spikes = None if spikes is None else _rows(spikes)  # None: recomputed from h
        kernel(_states(h), spikes, *_params(beta, threshold, shape), _flat(h0, shape), _flat(s0, shape), _rows(gs),
               _rows(gh), width, _threads(shape), _rows(dx), *per_neuron.view(4, -1).numpy())
        grads = [_sum_to(g, t) if need else None
                 for g, t, need in zip(per_neuron.numpy(), (beta, threshold, h0, s0), ctx.needs_input_grad[1:5])]
        return (dx, *grads, None, None, None, None, None)


def lif_fused(x: torch.Tensor, p, h0: torch.Tensor | None, s0: torch.Tensor | None, all_states: bool = True,
              state_dtype: torch.dtype = torch.float32):
    """Eq. (9)-(10) over the leading axis of float32 CPU x with NPEParams p (see :func:`unsupported`)
    from state (h0, s0) (None: zeros); returns (spikes [T, ...], states h [T, ...], or only the final
    state [1, ...] if not all_states). For backward it keeps the states (float32, or bfloat16 with
    ``state_dtype=torch.bfloat16`` when not all_states, then also int8 spikes where the zero reset or
    a learnable beta, theta needs them; float32 states give the spikes again exactly)."""
    return _FusedLIF.apply(x, p.decay, p.threshold, h0, s0, p.reset, p.spike, p.surrogate, all_states, state_dtype)


def lif_triton(x: torch.Tensor, p, h0: torch.Tensor, s0: torch.Tensor, all_states: bool = True,
               state_dtype: torch.dtype = torch.float32):
    """As :func:`lif_fused`, in the Triton kernel (see :func:`triton_unsupported`); with
    ``state_dtype=torch.bfloat16`` backward keeps bf16 states and the spikes (1 bit for binary ones)."""
    from .triton.lif import lif

    beta, threshold = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (p.decay, p.threshold))
    return lif(x, beta, threshold, h0, s0, RESETS[p.reset], _spike_code(p.spike), p.surrogate, all_states,
               state_dtype)
