"""Triton multi-step LIF, eq. (9)-(10), forward and surrogate backward (imported lazily by
:mod:`neurotoken.kernels.lif`). Reference twin: :func:`neurotoken.neurons.npe_multistep` with
``backend="sequential"``; the recurrences are those of :mod:`neurotoken.kernels.lif_numba`.

One program owns ``BLOCK`` neurons and loops over time with their membrane in registers. With
gradients, forward saves only the pre-reset potential h_t per step: in float32 backward recomputes
the spikes from it; with ``state_dtype=torch.bfloat16`` it also saves the spikes (binary ones as
1 bit, others as int8), since spikes recomputed from a rounded state could flip. Backward runs the
adjoint recurrence in reverse time with the surrogate's ``formula(x, w)``, compiled for Triton.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import math
import textwrap

import torch
import triton
import triton.language as tl

BLOCK = 256
PACK_NONE, PACK_BITS, PACK_INT8 = 0, 1, 2


@triton.jit
def _abs(x):
    return tl.abs(x)


@triton.jit
def _exp(x):
    return tl.exp(x)


@functools.cache
def formula(surrogate: type):
    """A surrogate class's ``formula(x, w)`` as a Triton function (its source, with the formula's
    ``abs`` and ``exp`` as Triton's)."""
    fn = surrogate.formula
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    tree.body[0].decorator_list = []
    source = ast.unparse(tree) + "\n"
    name = f"<triton formula {surrogate.__module__}.{surrogate.__qualname__}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # Triton reads the source
    scope = {**fn.__globals__, "abs": _abs, "exp": _exp, "tl": tl}
    exec(compile(source, name, "exec"), scope)
    return triton.jit(scope[fn.__name__])


@triton.jit
def _apply(x, y, w, F: tl.constexpr):
    tl.store(y, F(tl.load(x), w))


@functools.cache
def formula_error(surrogate: type, device: torch.device) -> str | None:
    """Why ``surrogate``'s formula does not compile for Triton on `device`, or None (tried once)."""
    x = torch.zeros(1, device=device)
    try:
        _apply[(1,)](x, torch.empty_like(x), 1.0, F=formula(surrogate))
    except Exception as error:  # any failure of parsing, compiling or running the formula
        return f"{surrogate.__name__}.formula does not compile for Triton ({type(error).__name__}: {error})"
    return None


@triton.jit
def _or(a, b):
    return a | b


@triton.jit
def _spike(h, th, NEG: tl.constexpr, LEVELS: tl.constexpr):
    """s_t = sum_{k<K} H(h - k theta) - neg H(-theta - h); NaN where h is NaN."""
    s = (h - th >= 0).to(tl.float32)
    for k in tl.static_range(2, LEVELS):
        s += (h - k * th >= 0).to(tl.float32)
    if NEG:
        s -= (-th - h >= 0).to(tl.float32)
    return tl.where(h == h, s, h)


@triton.jit
def _keep(s, RESET: tl.constexpr):
    """The factor on beta h_{t-1}: [s_{t-1} = 0] for the zero reset, else 1."""
    if RESET == 1:
        return (s == 0).to(tl.float32)
    return tl.full(s.shape, 1.0, tl.float32)


@triton.jit
def _store_spikes(spikes, s, t, offs, mask, M, PACK: tl.constexpr, BLOCK: tl.constexpr):
    if PACK == 1:  # 8 neighbouring neurons per byte, bit j = neuron 8 w + j
        bits = (s != 0).to(tl.int32) << (offs % 8).to(tl.int32)
        words = tl.reduce(tl.reshape(bits, (BLOCK // 8, 8)), 1, _or).to(tl.uint8)
        w = tl.program_id(0) * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
        width = (M + 7) // 8
        tl.store(spikes + t * width + w, words, w < width)
    if PACK == 2:
        tl.store(spikes + t * M + offs, s.to(tl.int8), mask)


@triton.jit
def _load_step(states, spikes, t, offs, mask, M, th, NEG: tl.constexpr, LEVELS: tl.constexpr,
               PACK: tl.constexpr):
    """(h_t, s_t) from the saved state and spikes (or spikes recomputed from h_t)."""
    h = tl.load(states + t * M + offs, mask, other=0.0).to(tl.float32)
    if PACK == 0:
        s = _spike(h, th, NEG, LEVELS)
    elif PACK == 1:
        word = tl.load(spikes + t * ((M + 7) // 8) + offs // 8, mask, other=0).to(tl.int32)
        s = ((word >> (offs % 8).to(tl.int32)) & 1).to(tl.float32)
    else:
        s = tl.load(spikes + t * M + offs, mask, other=0).to(tl.float32)
    return h, s


@triton.jit
def _lif_forward(x, beta, th, h0, s0, s_out, states, final, spikes, T, M, RESET: tl.constexpr, NEG: tl.constexpr,
                 LEVELS: tl.constexpr, SAVE: tl.constexpr, PACK: tl.constexpr, BLOCK: tl.constexpr):
    """x [T, M]; beta, th, h0, s0 [M] -> s_out [T, M], the final state [M]; with SAVE every state
    [T, M] in states' dtype; spikes saved as PACK says."""
    offs = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    mask = offs < M
    b = tl.load(beta + offs, mask, other=0.0)
    tt = tl.load(th + offs, mask, other=1.0)
    h = tl.load(h0 + offs, mask, other=0.0)
    s = tl.load(s0 + offs, mask, other=0.0)
    for t in range(T):
        xt = tl.load(x + t * M + offs, mask, other=0.0)
        if RESET == 0:
            h = (b * h + xt) - tt * s
        elif RESET == 1:
            h = b * h * (s == 0).to(tl.float32) + xt
        else:
            h = b * h + xt
        s = _spike(h, tt, NEG, LEVELS)
        tl.store(s_out + t * M + offs, s, mask)
        if SAVE:
            tl.store(states + t * M + offs, h.to(states.dtype.element_ty), mask)
        _store_spikes(spikes, s, t, offs, mask, M, PACK, BLOCK)
    tl.store(final + offs, h, mask)


@triton.jit
def _lif_backward(states, spikes, beta, th, h0, s0, gs, gh, width, T, Tg, M, dx, dbeta, dth, dh0, ds0,
                  RESET: tl.constexpr, NEG: tl.constexpr, LEVELS: tl.constexpr, PACK: tl.constexpr,
                  PARAMS: tl.constexpr, F: tl.constexpr, BLOCK: tl.constexpr):
    """Backwards in time: q_t = gs_t - theta g_{t+1} (subtract reset),
    g_t = gh_t + q_t ds/dh + beta [s_t = 0 | reset != zero] g_{t+1}; dx_t = g_t; per-neuron dh0, ds0
    and (PARAMS) dbeta, dth summed over time. gh holds dL/dh of the last Tg states."""
    offs = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    mask = offs < M
    b = tl.load(beta + offs, mask, other=0.0)
    tt = tl.load(th + offs, mask, other=1.0)
    sub = 1.0 if RESET == 0 else 0.0
    g = tl.full((BLOCK,), 0.0, tl.float32)  # tl.full, not tl.zeros: a builtin, also under the interpreter
    db = tl.full((BLOCK,), 0.0, tl.float32)
    dt = tl.full((BLOCK,), 0.0, tl.float32)
    h_t, s_t = _load_step(states, spikes, T - 1, offs, mask, M, tt, NEG, LEVELS, PACK)
    for i in range(T):
        t = T - 1 - i
        h_p, s_p = _load_step(states, spikes, tl.maximum(t - 1, 0), offs, mask, M, tt, NEG, LEVELS, PACK)
        h_p = tl.where(t > 0, h_p, tl.load(h0 + offs, mask, other=0.0))
        s_p = tl.where(t > 0, s_p, tl.load(s0 + offs, mask, other=0.0))
        dsdh = F(h_t - tt, width)
        dsdth = -dsdh
        for k in tl.static_range(2, LEVELS):
            gk = F(h_t - k * tt, width)
            dsdh += gk
            dsdth -= k * gk
        if NEG:
            gn = F(-tt - h_t, width)
            dsdh += gn
            dsdth += gn
        tg = tl.maximum(t - (T - Tg), 0)
        gh_t = tl.load(gh + tg * M + offs, mask & (offs * 0 + t >= T - Tg), other=0.0)
        q = tl.load(gs + t * M + offs, mask, other=0.0) - tt * g * sub
        g = q * dsdh + b * g * _keep(s_t, RESET) + gh_t
        if PARAMS:
            db += g * h_p * _keep(s_p, RESET)
            dt += q * dsdth - g * s_p * sub
        tl.store(dx + t * M + offs, g, mask)
        h_t, s_t = h_p, s_p
    tl.store(dh0 + offs, b * g * _keep(tl.load(s0 + offs, mask, other=0.0), RESET), mask)
    tl.store(ds0 + offs, -tt * g * sub, mask)
    if PARAMS:
        tl.store(dbeta + offs, db, mask)
        tl.store(dth + offs, dt, mask)


def _flat(t: torch.Tensor, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """t broadcast to `shape`, as a contiguous float32 tensor [M] on like's device."""
    return t.detach().to(like.device, torch.float32).expand(shape).reshape(-1).contiguous()


class _TritonLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, threshold, h0, s0, reset, spike_code, surrogate, all_states, state_dtype):
        T, shape = x.shape[0], x.shape[1:]
        M = math.prod(shape)
        neg, levels = spike_code
        grad = any(ctx.needs_input_grad[:5])
        save = all_states or grad
        dtype = torch.float32 if all_states else state_dtype
        pack = PACK_NONE if not grad or dtype == torch.float32 else PACK_BITS if (neg, levels) == (0, 2) else PACK_INT8
        xf = x.detach().contiguous()
        s, final = torch.empty_like(xf), xf.new_empty((1, M))
        states = xf.new_empty((T, M), dtype=dtype) if save else final
        spikes = (xf.new_empty((T, (M + 7) // 8), dtype=torch.uint8) if pack == PACK_BITS
                  else xf.new_empty((T, M), dtype=torch.int8) if pack == PACK_INT8 else states)
        flat = [_flat(t, shape, x) for t in (beta, threshold, h0, s0)]
        _lif_forward[(triton.cdiv(M, BLOCK),)](xf, *flat, s, states, final, spikes, T, M, RESET=reset, NEG=neg,
                                               LEVELS=levels, SAVE=save, PACK=pack, BLOCK=BLOCK)
        if grad:
            ctx.save_for_backward(states, *(() if pack == PACK_NONE else (spikes,)), beta, threshold, h0, s0)
            ctx.codes = shape, reset, neg, levels, pack, surrogate
        ctx.set_materialize_grads(False)
        return s.view(x.shape), (states if all_states else final).view(-1, *shape)

    @staticmethod
    def backward(ctx, gs, gh):
        shape, reset, neg, levels, pack, surrogate = ctx.codes
        states, *rest = ctx.saved_tensors
        spikes, (beta, threshold, h0, s0) = (states, rest) if pack == PACK_NONE else (rest[0], rest[1:])
        T, M = states.shape
        gs = states.new_zeros((T, M), dtype=torch.float32) if gs is None else gs.float().reshape(T, M).contiguous()
        gh = gs.new_zeros((0, M)) if gh is None else gh.float().reshape(-1, M).contiguous()
        dx = torch.empty_like(gs)
        per_neuron = gs.new_empty((4, M))
        params = any(ctx.needs_input_grad[1:3])
        flat = [_flat(t, shape, gs) for t in (beta, threshold, h0, s0)]
        _lif_backward[(triton.cdiv(M, BLOCK),)](states, spikes, *flat, gs, gh, float(surrogate.parameter), T,
                                                gh.shape[0], M, dx, *per_neuron, RESET=reset, NEG=neg,
                                                LEVELS=levels, PACK=pack, PARAMS=params,
                                                F=formula(type(surrogate)), BLOCK=BLOCK)
        per_neuron = per_neuron.view(4, *shape)
        grads = [g.sum_to_size(t.shape) if n else None
                 for n, g, t in zip(ctx.needs_input_grad[1:5], per_neuron, (beta, threshold, h0, s0))]
        return (dx.view(T, *shape), *grads, None, None, None, None, None)


def lif(x, beta, threshold, h0, s0, reset: int, spike_code: tuple[int, int], surrogate, all_states: bool,
        state_dtype: torch.dtype):
    """Eq. (9)-(10) over the leading axis of float32 x (codes of :mod:`neurotoken.kernels.lif_numba`);
    returns (spikes [T, ...], states [T, ...], or only the final state [1, ...] if not all_states)."""
    return _TritonLIF.apply(x, beta, threshold, h0, s0, reset, spike_code, surrogate, all_states, state_dtype)
