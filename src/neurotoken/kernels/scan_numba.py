"""numba kernels for the linear scan, eq. (24) (imported lazily by :mod:`neurotoken.kernels.scan`).

Arrays are [N, L, C] (scan along axis 1, C contiguous channels); gains a are [Na, La, C] with
Na in {1, N} and La in {1, L} (shared over the batch / constant in time). Each worker takes whole
batch rows n (prange): sequential in time, one vectorised loop over the C channels per step, the
state in its own array. Real and complex dtypes compile separately (cache=True).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def scan_forward(a, b, h0, h):
    """h[n, t] = a[n, t] h[n, t - 1] + b[n, t] with h[n, -1] = h0[n]."""
    N, L, C = b.shape
    for n in prange(N):
        an, state = a[n * (a.shape[0] > 1)], h0[n].copy()
        for t in range(L):
            at, bt, ht = an[t * (an.shape[0] > 1)], b[n, t], h[n, t]
            for c in range(C):
                state[c] = at[c] * state[c] + bt[c]
                ht[c] = state[c]


@njit(cache=True, parallel=True)
def scan_backward(a, h, h0, gh, gb, ga, gh0):
    """Adjoint of :func:`scan_forward` (PyTorch's conjugate convention for complex values): given
    gh = dL/dh, g_t = dL/db_t = gh_t + conj(a_{t+1}) g_{t+1} runs backwards; writes gb = g,
    ga[n, t] = g_t conj(h_{t-1}) ([n, 0] summed over time when La = 1) and gh0 = conj(a_0) g_0."""
    N, L, C = h.shape
    for n in prange(N):
        an, gan = a[n * (a.shape[0] > 1)], ga[n]
        gan[:] = 0
        g = np.zeros(C, dtype=gb.dtype)  # conj(a_{t+1}) g_{t+1}
        for t in range(L - 1, -1, -1):
            at, ght, gbt, gat = an[t * (an.shape[0] > 1)], gh[n, t], gb[n, t], gan[t * (gan.shape[0] > 1)]
            hp = h[n, t - 1] if t > 0 else h0[n]
            for c in range(C):
                gt = ght[c] + g[c]
                gbt[c] = gt
                gat[c] += gt * np.conj(hp[c])
                g[c] = np.conj(at[c]) * gt
        gh0[n] = g
