"""numba kernels for the fused multi-step LIF (imported lazily by :mod:`neurotoken.kernels.lif`).

Eq. (9)-(10) per neuron, one pass over time, float32, arrays flattened to [T, M]:

    h_t = beta h_{t-1} + x_t - theta s_{t-1}           (reset 0: subtract)
    h_t = beta h_{t-1} [s_{t-1} = 0] + x_t             (reset 1: zero; the mask is not differentiated)
    h_t = beta h_{t-1} + x_t                           (reset 2: none)
    s_t = sum_{k=1}^{K-1} H(h_t - k theta) - neg H(-theta - h_t)
        binary: K = 2, neg = 0;  ternary: K = 2, neg = 1;  multilevel: K levels, neg = 0

Neurons are cut into blocks of ``block`` contiguous columns, processed in parallel (prange); inside
a block the time loop is outer and the column loop inner: contiguous and branch-free (reset and
spike kind enter as 0/1 factors), so LLVM vectorises it. The float operations are those of
:func:`neurotoken.neurons.npe_step` in the same order (multiplying by an exact 0 or 1 changes no
bits), so membranes are bit-identical to the reference. Backward recomputes the block's membranes
and spikes into [T + 1, block] buffers (nothing but the inputs is saved) and runs the adjoint
recurrence backwards in time. ``error_model="numpy"`` drops Python's zero-division checks, which
would otherwise stop the surrogate loops from vectorising.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _spike(h, th, neg, levels):
    """s_t of the module docstring, in the reference's float32 comparisons (h - k theta >= 0)."""
    s = np.float32(h - th >= 0)
    for k in range(2, levels):
        s += np.float32(h - np.float32(k) * th >= 0)
    if neg:
        s -= np.float32(-th - h >= 0)
    return s


@njit(inline="always")
def _surrogate(x, kind, width, out):
    """out = surrogate.py's grad(x) over a block: 0 Sigmoid(slope), 1 Atan(alpha), 2 Triangle(width),
    3 FastSigmoid(slope), 4 StraightThrough(scale). One loop per kind keeps each loop vectorisable."""
    one = np.float32(1.0)
    if kind == 0:
        for j in range(x.size):
            e = one / (one + np.exp(-width * x[j]))
            out[j] = width * e * (one - e)
    elif kind == 1:
        c = np.float32(0.5 * math.pi) * width
        for j in range(x.size):
            u = c * x[j]
            out[j] = np.float32(0.5) * width / (one + u * u)
    elif kind == 2:
        for j in range(x.size):
            out[j] = max(np.float32(0.0), one - abs(x[j]) / width) / width
    elif kind == 3:
        for j in range(x.size):
            d = one + width * abs(x[j])
            out[j] = one / (d * d)
    else:
        for j in range(x.size):
            out[j] = width


@njit(inline="always")
def _spike_grads(h, th, neg, levels, kind, width, arg, g, dh, dth):
    """dh, dth = (ds/dh, ds/dtheta) of the spike function at block membranes h; arg, g: scratch."""
    for j in range(h.size):
        arg[j] = h[j] - th[j]
    _surrogate(arg, kind, width, dh)
    for j in range(h.size):
        dth[j] = -dh[j]
    for k in range(2, levels):
        for j in range(h.size):
            arg[j] = h[j] - np.float32(k) * th[j]
        _surrogate(arg, kind, width, g)
        for j in range(h.size):
            dh[j] += g[j]
            dth[j] -= np.float32(k) * g[j]
    if neg:
        for j in range(h.size):
            arg[j] = -th[j] - h[j]
        _surrogate(arg, kind, width, g)
        for j in range(h.size):
            dh[j] += g[j]
            dth[j] += g[j]


@njit(inline="always")
def _keep(s, reset):
    """The factor on beta h_{t-1}: [s_{t-1} = 0] for the zero reset, else 1."""
    return np.float32(reset != 1 or s == 0)


@njit(inline="always")
def _update(h, x, s, beta, th, reset):
    """One step of eq. (9) in npe_step's operation order: (beta h keep + x) - theta s sub."""
    return (beta * h * _keep(s, reset) + x) - th * s * np.float32(reset == 0)


@njit(inline="always")
def _run(xt, bt, tt, h, s, reset, neg, levels, s_out, h_out):
    """Advance a block's state (h, s) by one step with inputs xt, in place; copy it to s_out, h_out."""
    for j in range(h.size):
        hj = _update(h[j], xt[j], s[j], bt[j], tt[j], reset)
        sj = _spike(hj, tt[j], neg, levels)
        h[j], s[j], s_out[j], h_out[j] = hj, sj, sj, hj


@njit(cache=True, parallel=True, error_model="numpy")
def lif_forward(x, beta, th, h0, s0, reset, neg, levels, block, s_out, h_out):
    """x [T, M]; beta, th, h0, s0 [M] -> s_out [T, M], h_out [Th, M] (the last Th states, Th = 1 or T)."""
    T, M = x.shape
    t_keep = T - h_out.shape[0]
    for b in prange((M + block - 1) // block):
        lo, hi = b * block, min(M, (b + 1) * block)
        h, s, bt, tt = h0[lo:hi].copy(), s0[lo:hi].copy(), beta[lo:hi], th[lo:hi]
        for t in range(T):
            # with Th = 1 the row h_out[0] is rewritten at every step (it stays in L1)
            _run(x[t, lo:hi], bt, tt, h, s, reset, neg, levels, s_out[t, lo:hi],
                 h_out[max(t - t_keep, 0), lo:hi])


@njit(cache=True, parallel=True, error_model="numpy")
def lif_backward(x, beta, th, h0, s0, gs, gh, reset, neg, levels, kind, width, block,
                 dx, dbeta, dth, dh0, ds0):
    """Adjoint of :func:`lif_forward` given dL/ds gs [T, M] and dL/dh of the last Tg >= 1 states gh [Tg, M].

    g_t = dL/dh_t and q_t = dL/ds_t run backwards: q_t = gs_t - theta g_{t+1} (subtract),
    g_t = gh_t + q_t ds/dh + beta m_{t+1} g_{t+1} with m = [s_t = 0] (zero reset) or 1.
    Writes dx = g, per-neuron dbeta, dth [M] (summed over time) and dh0, ds0 [M].
    """
    T, M = x.shape
    t_grad = T - gh.shape[0]
    sub = np.float32(reset == 0)
    for b in prange((M + block - 1) // block):
        lo, hi = b * block, min(M, (b + 1) * block)
        n = hi - lo
        bt, tt = beta[lo:hi], th[lo:hi]
        hs, ss = np.empty((2, T + 1, n), dtype=np.float32)  # hs[t + 1] = h_t, ss[t + 1] = s_t
        hs[0], ss[0] = h0[lo:hi], s0[lo:hi]
        h, s = hs[0].copy(), ss[0].copy()
        for t in range(T):
            _run(x[t, lo:hi], bt, tt, h, s, reset, neg, levels, ss[t + 1], hs[t + 1])
        dsdh, dsdth, arg, sg, g, db, dt = np.zeros((7, n), dtype=np.float32)  # g = g_{t+1}
        for t in range(T - 1, -1, -1):
            h_t, h_p, s_t, s_p, gs_t, dx_t = hs[t + 1], hs[t], ss[t + 1], ss[t], gs[t, lo:hi], dx[t, lo:hi]
            gh_t, extra = gh[max(t - t_grad, 0), lo:hi], np.float32(t >= t_grad)
            _spike_grads(h_t, tt, neg, levels, kind, width, arg, sg, dsdh, dsdth)
            for j in range(n):
                q = gs_t[j] - tt[j] * g[j] * sub
                g_t = q * dsdh[j] + bt[j] * g[j] * _keep(s_t[j], reset) + extra * gh_t[j]
                dx_t[j] = g_t
                db[j] += g_t * h_p[j] * _keep(s_p[j], reset)
                dt[j] += q * dsdth[j] - g_t * s_p[j] * sub
                g[j] = g_t
        dbeta[lo:hi], dth[lo:hi] = db, dt
        for j in range(n):
            dh0[lo + j] = bt[j] * g[j] * _keep(ss[0, j], reset)
            ds0[lo + j] = -tt[j] * g[j] * sub
