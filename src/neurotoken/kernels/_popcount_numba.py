"""numba kernel for bit-packed scores (imported lazily by :mod:`neurotoken.kernels.bitpack`).

Words are uint64; ``_popcount`` lowers to LLVM ``ctpop``. Keys come word-major ([N, W, S]) so
the innermost loop runs over contiguous keys and vectorises (AVX-512 VPOPCNTDQ where present).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@njit(cache=True, parallel=False)
def popcount_scores(a, bt, xnor, n_bits, out):
    """out[n, i, j] = sum_w popcount(a[n, i, w] & bt[n, w, j]) (AND: coincident ones), or with
    xnor, n_bits - sum_w popcount(a[n, i, w] ^ bt[n, w, j]) (equal bits; padding bits are 0 in
    both). a [N, L, W], bt [N, W, S] uint64; out [N, L, S] float32 (exact below 2^24)."""
    acc = np.empty(bt.shape[2], dtype=np.uint64)
    for n in range(a.shape[0]):
        for i in range(a.shape[1]):
            acc[:] = 0
            for w in range(a.shape[2]):
                word = a[n, i, w]
                if xnor:
                    for j in range(bt.shape[2]):
                        acc[j] += _popcount(word ^ bt[n, w, j])
                else:
                    for j in range(bt.shape[2]):
                        acc[j] += _popcount(word & bt[n, w, j])
            for j in range(bt.shape[2]):
                out[n, i, j] = n_bits - acc[j] if xnor else acc[j]
