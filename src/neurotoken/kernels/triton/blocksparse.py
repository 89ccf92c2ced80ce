"""Triton block-sparse softmax attention over one layout's tiles, eq. (82), forward and backward
(imported lazily by :mod:`neurotoken.mixers.blocksparse`, which gathers the layouts and joins them).
Reference twin: dense masked softmax attention, eq. (21)-(23).

One program owns one query block of one batch row: it walks the block's key tiles (``kblocks``),
masks the pairs the tile does not hold (``blocked``) and keeps a running maximum, sum and weighted
value sum in registers (online softmax), writing the normalised output O and the row's log-sum-exp.
Backward recomputes each tile's probabilities P from the saved log-sum-exp:
dS = P (dO V^T - rowsum(dO O) + dlse), dQ = dS K accumulates in registers and every tile's
dK = dS^T Q and dV = P^T dO are written per tile, summed into the key blocks by torch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """a @ b: the tensor-core dot in ``PRECISION`` ("ieee" or "tf32"), or with "fma" (float64, whose
    MMA Triton 3.6 cannot lower) a broadcast product summed over the inner dim."""
    if PRECISION == "fma":
        product = tl.sum(a[:, :, None] * b[None, :, :], 1)
    else:
        product = tl.dot(a, b, input_precision=PRECISION)
    return product


@triton.jit
def _tile(q, k, v, kblocks, blocked, n, r, s, Sp, K, b, d, dv, rows, cols, vcols,
          BLOCK: tl.constexpr, PRECISION: tl.constexpr):
    """Key tile s of query block r: the keys and values [BLOCK, d], [BLOCK, dv] of its key block and
    the scores q k^T [BLOCK, BLOCK] with the pairs the tile does not hold at -inf."""
    kb = tl.load(kblocks + r * K + s)
    inside = rows < b
    key = n * Sp + kb * b + rows
    kt = tl.load(k + key[:, None] * d + cols[None, :], inside[:, None] & (cols[None, :] < d), other=0.0)
    vt = tl.load(v + key[:, None] * dv + vcols[None, :], inside[:, None] & (vcols[None, :] < dv), other=0.0)
    held = tl.load(blocked + (r * b + rows[:, None]) * (K * b) + s * b + rows[None, :],
                   inside[:, None] & inside[None, :], other=1) == 0
    scores = _dot(q, tl.trans(kt), PRECISION)
    return kt, vt, held, tl.where(held, scores, float("-inf"))


@triton.jit
def _rows(q, n, r, Lp, b, d, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """Row offsets of query block r, its row mask, column ranges, the mask of a [BLOCK, d] tile and the
    query tile."""
    rows, cols, vcols = tl.arange(0, BLOCK), tl.arange(0, BLOCK_D), tl.arange(0, BLOCK_DV)
    inside = rows < b
    row = n * Lp + r * b + rows
    qmask = inside[:, None] & (cols[None, :] < d)
    return rows, cols, vcols, inside, row, qmask, tl.load(q + row[:, None] * d + cols[None, :], qmask, other=0.0)


@triton.jit
def _forward(q, k, v, kblocks, blocked, out, lse, Lp, Sp, K, b, d, dv, BLOCK: tl.constexpr,
             BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, PRECISION: tl.constexpr, ACC: tl.constexpr):
    """Batch row n, query block r: out [N, Lp, dv] (0 where a row holds no pair) and lse [N, Lp] (-inf there)."""
    n, r = tl.program_id(0).to(tl.int64), tl.program_id(1)
    rows, cols, vcols, inside, row, qmask, qt = _rows(q, n, r, Lp, b, d, BLOCK, BLOCK_D, BLOCK_DV)
    peak = tl.full((BLOCK,), float("-inf"), ACC)
    total = tl.zeros((BLOCK,), ACC)
    acc = tl.zeros((BLOCK, BLOCK_DV), ACC)
    for s in range(K):
        kt, vt, held, scores = _tile(qt, k, v, kblocks, blocked, n, r, s, Sp, K, b, d, dv, rows, cols, vcols,
                                     BLOCK, PRECISION)
        new = tl.maximum(peak, tl.max(scores, 1))
        shift = tl.where(new == float("-inf"), 0.0, new)  # a row with no pair yet: all weights 0
        p = tl.exp(scores - shift[:, None])
        carry = tl.exp(peak - shift)
        total = total * carry + tl.sum(p, 1)
        acc = acc * carry[:, None] + _dot(p.to(vt.dtype), vt, PRECISION)
        peak = new
    some = total > 0
    total = tl.where(some, total, 1.0)
    tl.store(out + row[:, None] * dv + vcols[None, :], (acc / total[:, None]).to(out.dtype.element_ty),
             inside[:, None] & (vcols[None, :] < dv))
    tl.store(lse + row, tl.where(some, peak + tl.log(total), float("-inf")), inside)


@triton.jit
def _backward(q, k, v, kblocks, blocked, out, lse, gout, glse, dq, dk, dv_, Lp, Sp, K, b, d, dv,
              BLOCK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, PRECISION: tl.constexpr,
              ACC: tl.constexpr):
    """Batch row n, query block r: dq [N, Lp, d]; per tile dk [N, nq, K, b, d] and dv_ [N, nq, K, b, dv]
    (in the accumulator type)."""
    n, r = tl.program_id(0).to(tl.int64), tl.program_id(1)
    nq = tl.num_programs(1)
    rows, cols, vcols, inside, row, qmask, qt = _rows(q, n, r, Lp, b, d, BLOCK, BLOCK_D, BLOCK_DV)
    vmask = inside[:, None] & (vcols[None, :] < dv)
    go = tl.load(gout + row[:, None] * dv + vcols[None, :], vmask, other=0.0)
    o = tl.load(out + row[:, None] * dv + vcols[None, :], vmask, other=0.0)
    m = tl.load(lse + row, inside, other=0.0)
    m = tl.where(m == float("-inf"), 0.0, m)
    delta = tl.sum(go.to(ACC) * o.to(ACC), 1) - tl.load(glse + row, inside, other=0.0)
    gq = tl.zeros((BLOCK, BLOCK_D), ACC)
    for s in range(K):
        kt, vt, held, scores = _tile(qt, k, v, kblocks, blocked, n, r, s, Sp, K, b, d, dv, rows, cols, vcols,
                                     BLOCK, PRECISION)
        p = tl.exp(scores - m[:, None])
        gs = p * (_dot(go, tl.trans(vt), PRECISION) - delta[:, None])
        gq += _dot(gs.to(kt.dtype), kt, PRECISION)
        tile = ((n * nq + r) * K + s) * b + rows
        tl.store(dk + tile[:, None] * d + cols[None, :],
                 _dot(tl.trans(gs.to(qt.dtype)), qt, PRECISION), qmask)
        tl.store(dv_ + tile[:, None] * dv + vcols[None, :],
                 _dot(tl.trans(p.to(go.dtype)), go, PRECISION), vmask)
    tl.store(dq + row[:, None] * d + cols[None, :], gq.to(dq.dtype.element_ty), qmask)


def _accumulator(q: torch.Tensor) -> torch.dtype:
    return torch.float64 if q.dtype == torch.float64 else torch.float32


def _sizes(q: torch.Tensor, v: torch.Tensor, b: int) -> dict:
    """The launch's block sizes (at least 16, a tensor-core tile), the matmul precision torch would use
    (tf32 only where torch allows it; float64 without tensor cores) and the accumulator type (float64
    for float64 inputs, else float32)."""
    wide = q.dtype == torch.float64
    tf32 = q.dtype == torch.float32 and q.is_cuda and torch.backends.cuda.matmul.allow_tf32
    return dict(BLOCK=max(16, triton.next_power_of_2(b)), BLOCK_D=max(16, triton.next_power_of_2(q.shape[-1])),
                BLOCK_DV=max(16, triton.next_power_of_2(v.shape[-1])),
                PRECISION="fma" if wide else "tf32" if tf32 else "ieee", ACC=tl.float64 if wide else tl.float32)


class TileAttention(torch.autograd.Function):
    """(O, lse) of q [N, nq b, d] (scaled) over key blocks of k [N, nk b, d], v [N, nk b, dv]."""

    @staticmethod
    def forward(ctx, q, k, v, kblocks, blocked, b):
        (N, Lp, d), (Sp, dv), K = q.shape, v.shape[1:], kblocks.shape[1]
        out, lse = q.new_empty((N, Lp, dv)), q.new_empty((N, Lp), dtype=_accumulator(q))
        blocked = blocked.view(torch.uint8)
        _forward[(N, kblocks.shape[0])](q, k, v, kblocks, blocked, out, lse, Lp, Sp, K, b, d, dv, **_sizes(q, v, b))
        ctx.save_for_backward(q, k, v, kblocks, blocked, out, lse)
        ctx.b = b
        return out, lse

    @staticmethod
    def backward(ctx, gout, glse):
        q, k, v, kblocks, blocked, out, lse = ctx.saved_tensors
        b = ctx.b
        (N, Lp, d), (Sp, dv), (nq, K) = q.shape, v.shape[1:], kblocks.shape
        dq = torch.empty_like(q)
        dk, dv_ = q.new_empty((N, nq * K, b, d), dtype=lse.dtype), q.new_empty((N, nq * K, b, dv), dtype=lse.dtype)
        _backward[(N, nq)](q, k, v, kblocks, blocked, out, lse, gout.contiguous(), glse.contiguous(), dq, dk, dv_,
                           Lp, Sp, K, b, d, dv, **_sizes(q, v, b))
        index = kblocks.flatten()
        gk = dk.new_zeros((N, Sp // b, b, d)).index_add_(1, index, dk).view(k.shape).to(k.dtype)
        gv = dv_.new_zeros((N, Sp // b, b, dv)).index_add_(1, index, dv_).view(v.shape).to(v.dtype)
        return dq, gk, gv, None, None, None
