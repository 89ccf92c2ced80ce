"""Triton bit-packed AND / XNOR spike scores, eq. (44)-(45) (imported lazily by :mod:`neurotoken.kernels.bitpack`):
the bits are packed into 32-bit words on the spikes' own device and one program scores a
``BLOCK_L`` x ``BLOCK_S`` tile of query and key tokens by a bitwise op + popcount over the words.
Reference twin: the dense float matmul of :func:`neurotoken.mixers.attention.and_scores` /
``xnor_scores`` with ``method="dense"``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_L = BLOCK_S = 32
BLOCK_W = 4


@triton.jit
def _popcount(x, HARDWARE: tl.constexpr):
    """Set bits of each 32-bit word: the GPU's popc instruction, or (under the interpreter) the
    shift-and-add count."""
    if HARDWARE:
        return tl.inline_asm_elementwise("popc.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, is_pure=True, pack=1)
    u = x.to(tl.uint32, bitcast=True)
    u = u - ((u >> 1) & 0x55555555)
    u = (u & 0x33333333) + ((u >> 2) & 0x33333333)
    u = (u + (u >> 4)) & 0x0F0F0F0F
    return ((u * 0x01010101) >> 24).to(tl.int32)


@triton.jit
def _scores(a, b, out, L, S, W, n_bits, XNOR: tl.constexpr, HARDWARE: tl.constexpr, BLOCK_L: tl.constexpr,
            BLOCK_S: tl.constexpr, BLOCK_W: tl.constexpr):
    """out[n, i, j] = sum_w popcount(a[n, i, w] & b[n, j, w]), or with XNOR n_bits - sum_w popcount(a ^ b)
    (padding bits are 0 in both); a [N, L, W], b [N, S, W] int32 words, out [N, L, S]."""
    n, pi, pj = tl.program_id(0).to(tl.int64), tl.program_id(1), tl.program_id(2)
    i, j = pi * BLOCK_L + tl.arange(0, BLOCK_L), pj * BLOCK_S + tl.arange(0, BLOCK_S)
    acc = tl.zeros((BLOCK_L, BLOCK_S), dtype=tl.int32)
    for w0 in range(0, W, BLOCK_W):
        w = w0 + tl.arange(0, BLOCK_W)
        qa = tl.load(a + (n * L + i[:, None]) * W + w[None, :], (i[:, None] < L) & (w[None, :] < W), other=0)
        kb = tl.load(b + (n * S + j[:, None]) * W + w[None, :], (j[:, None] < S) & (w[None, :] < W), other=0)
        pair = qa[:, None, :] ^ kb[None, :, :] if XNOR else qa[:, None, :] & kb[None, :, :]
        acc += tl.sum(_popcount(pair, HARDWARE), 2)
    if XNOR:
        acc = n_bits - acc
    tl.store(out + (n * L + i[:, None]) * S + j[None, :], acc.to(out.dtype.element_ty),
             (i[:, None] < L) & (j[None, :] < S))


def pack_words(bits: torch.Tensor) -> torch.Tensor:
    """Binary [..., L, n] -> int32 words [N, L, ceil(n / 32)] on bits' device (bit b of word w is
    element 32 w + b; the padding bits are 0)."""
    b = bits.detach().reshape(-1, *bits.shape[-2:]) != 0
    b = torch.nn.functional.pad(b, (0, -b.shape[-1] % 32)).unflatten(-1, (-1, 32)).to(torch.int32)
    weights = torch.ones(32, dtype=torch.int32, device=b.device) << torch.arange(32, dtype=torch.int32,
                                                                                 device=b.device)
    return (b * weights).sum(-1, dtype=torch.int32).contiguous()  # distinct bits: the sum is their OR


def packed_scores(qf: torch.Tensor, kf: torch.Tensor, op: str = "and") -> torch.Tensor:
    """As :func:`neurotoken.kernels.bitpack.packed_scores` (binary qf [..., L, n], kf [..., S, n] ->
    [..., L, S] in qf's dtype), on qf's device."""
    a, b = pack_words(qf), pack_words(kf)
    (N, L, W), S = a.shape, b.shape[1]
    out = qf.new_empty((N, L, S))
    grid = (N, triton.cdiv(L, BLOCK_L), triton.cdiv(S, BLOCK_S))
    _scores[grid](a, b, out, L, S, W, qf.shape[-1], XNOR=op == "xnor", HARDWARE=qf.device.type == "cuda",
                  BLOCK_L=BLOCK_L, BLOCK_S=BLOCK_S, BLOCK_W=BLOCK_W)
    return out.view(*qf.shape[:-1], S)
