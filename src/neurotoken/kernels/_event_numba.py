"""numba kernels of the event-driven linear map (imported lazily by :mod:`neurotoken.kernels.event_linear`).

Events are the non-zeros of a matrix in CSR form: ``indptr`` [R + 1] and, per row r, the columns
``cols[indptr[r]:indptr[r + 1]]`` (ascending) and their ``values``. :func:`accumulate` sums rows of a
dense matrix selected by the events, four events per pass over the output row (one load and store
of the accumulator per four source rows); without ``weighted`` every value is 1 and the sum is
adds only. ``error_model="numpy"`` keeps the loops free of Python's zero-division checks.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True, error_model="numpy")
def events(x, indptr):
    """The events of x [R, C] (any non-zero, NaN included): fills indptr [R + 1] and returns
    (cols int32, values of x's dtype, whether every value is 1)."""
    rows, width = x.shape
    counts = np.empty(rows, np.int64)
    for r in prange(rows):
        c = 0
        for k in range(width):
            c += x[r, k] != 0
        counts[r] = c
    indptr[0] = 0
    for r in range(rows):
        indptr[r + 1] = indptr[r] + counts[r]
    cols, values = np.empty(indptr[rows], np.int32), np.empty(indptr[rows], x.dtype)
    unit = np.empty(rows, np.bool_)
    for r in prange(rows):
        j, ones = indptr[r], True
        for k in range(width):
            v = x[r, k]
            if v != 0:
                cols[j], values[j] = k, v
                ones = ones and v == 1
                j += 1
        unit[r] = ones
    return cols, values, unit.all()


@njit(cache=True)
def transpose(indptr, cols, values, width, colptr):
    """The same events by column (CSC): fills colptr [width + 1], returns (rows, values); rows
    ascend within each column, so sums over them run in a fixed order."""
    colptr[:] = 0
    for j in range(cols.size):
        colptr[cols[j] + 1] += 1
    for k in range(width):
        colptr[k + 1] += colptr[k]
    rows, out = np.empty(cols.size, np.int32), np.empty_like(values)
    fill = colptr[:-1].copy()
    for r in range(indptr.size - 1):
        for j in range(indptr[r], indptr[r + 1]):
            p = fill[cols[j]]
            rows[p], out[p] = r, values[j]
            fill[cols[j]] = p + 1
    return rows, out


@njit(cache=True, parallel=True, error_model="numpy")
def transposed(a, out):
    """out = a^T for a [R, C] and out [C, R], through 8 x 8 tiles: every read and write is a run of 8
    contiguous values (an element-wise transpose strides one side by a whole row per value)."""
    rows, width = a.shape
    for block in prange((rows + 7) // 8):
        r0 = block * 8
        tile = np.empty((8, 8), a.dtype)
        for c0 in range(0, width, 8):
            if r0 + 8 <= rows and c0 + 8 <= width:  # constant trip counts: LLVM keeps the tile in registers
                for r in range(8):
                    for c in range(8):
                        tile[c, r] = a[r0 + r, c0 + c]
                for c in range(8):
                    o = out[c0 + c, r0:r0 + 8]
                    for r in range(8):
                        o[r] = tile[c, r]
            else:
                for r in range(r0, min(r0 + 8, rows)):
                    for c in range(c0, min(c0 + 8, width)):
                        out[c, r] = a[r, c]


@functools.cache
def accumulate(weighted: bool):
    """The kernel out[r] = init + sum over the events j of row r of values[j] src[cols[j]]."""

    @njit(cache=True, parallel=True, error_model="numpy")
    def kernel(indptr, cols, values, src, init, out):
        width = src.shape[1]
        for r in prange(indptr.size - 1):
            row = out[r]
            for n in range(width):
                row[n] = init[n]
            j, end = indptr[r], indptr[r + 1]
            while j + 4 <= end:
                a, b, c, d = src[cols[j]], src[cols[j + 1]], src[cols[j + 2]], src[cols[j + 3]]
                if weighted:
                    va, vb, vc, vd = values[j], values[j + 1], values[j + 2], values[j + 3]
                    for n in range(width):
                        row[n] += (va * a[n] + vb * b[n]) + (vc * c[n] + vd * d[n])
                else:
                    for n in range(width):
                        row[n] += (a[n] + b[n]) + (c[n] + d[n])
                j += 4
            for i in range(j, end):
                a = src[cols[i]]
                if weighted:
                    v = values[i]
                    for n in range(width):
                        row[n] += v * a[n]
                else:
                    for n in range(width):
                        row[n] += a[n]
    return kernel


@njit(cache=True, parallel=True, error_model="numpy", fastmath={"reassoc", "contract"})
def masked(mask, gy, wt, out):
    """out[r, k] = gy[r] . wt[k] where mask[r, k], 0 elsewhere (every entry written): per row, the
    mask's columns, then four dot products per pass over gy[r] (one load of gy[r] per four rows of wt)."""
    rows, width = mask.shape
    for r in prange(rows):
        g, row, cols, n = gy[r], out[r], np.empty(width, np.int32), 0
        for k in range(width):
            row[k] = 0
            if mask[r, k]:
                cols[n] = k
                n += 1
        j = 0
        while j + 4 <= n:
            a, b, c, d = wt[cols[j]], wt[cols[j + 1]], wt[cols[j + 2]], wt[cols[j + 3]]
            sa = sb = sc = sd = gy.dtype.type(0)
            for i in range(g.size):
                gi = g[i]
                sa += gi * a[i]
                sb += gi * b[i]
                sc += gi * c[i]
                sd += gi * d[i]
            row[cols[j]], row[cols[j + 1]], row[cols[j + 2]], row[cols[j + 3]] = sa, sb, sc, sd
            j += 4
        for q in range(j, n):
            w, s = wt[cols[q]], gy.dtype.type(0)
            for i in range(g.size):
                s += g[i] * w[i]
            row[cols[q]] = s
