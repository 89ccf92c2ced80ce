"""Triton chunked linear scan, eq. (24), real or complex gains, forward and reverse-scan backward (imported
lazily by :mod:`neurotoken.kernels.scan`). Reference twin: ``linear_scan(method="sequential")``.

Arrays are [N, L, C] (time in the middle, channels contiguous). Time is cut into chunks; one
program scans one chunk of one row for ``BLOCK`` channels with the state in registers. Pass 1 runs
every chunk from a zero state and keeps only its end state and its gain product; the chunk carries
then follow from a short scan over chunks; pass 2 rescans each chunk from its carry and writes h.
The backward of h_t = a_t h_{t-1} + b_t is the same kernel reversed in time,
g_t = dL/dh_t + a_{t+1} g_{t+1}, with dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0
(conjugated a and h for complex values, which the kernel runs as interleaved real and imaginary parts).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 128
PROGRAMS = 1024  # chunks are cut until a scan launches about this many programs
MAX_CHUNKS = 64


@triton.jit
def _load(ptr, index, mask, other, COMPLEX: tl.constexpr):
    """(real, imaginary) parts of elements `index` (interleaved pairs when COMPLEX; else imaginary 0)."""
    if COMPLEX:
        return tl.load(ptr + 2 * index, mask, other=other), tl.load(ptr + 2 * index + 1, mask, other=0.0)
    re = tl.load(ptr + index, mask, other=other)
    return re, tl.full(re.shape, 0.0, re.dtype)


@triton.jit
def _store(ptr, index, re, im, mask, COMPLEX: tl.constexpr):
    if COMPLEX:
        tl.store(ptr + 2 * index, re, mask)
        tl.store(ptr + 2 * index + 1, im, mask)
    else:
        tl.store(ptr + index, re, mask)


@triton.jit
def _scan_chunks(a, b, carry, h, last, prod, L, C, a_rows, a_len, CHUNK: tl.constexpr, REVERSE: tl.constexpr,
                 WRITE: tl.constexpr, COMPLEX: tl.constexpr, BLOCK: tl.constexpr):
    """Chunk k of row n, channels of block j: from state carry[n, k] run h_t = a_{t+R} h + b_t (a of
    a_rows rows and a_len = L or 1 steps, broadcast) over the chunk, forward in time, or backward
    with R = 1 and conjugated gains when REVERSE (gains past the end are 0); write h (WRITE) or the
    chunk's end state last[n, k] and gain product prod[n, k]. COMPLEX: interleaved (re, im) pairs."""
    n, j, k = tl.program_id(0).to(tl.int64), tl.program_id(1), tl.program_id(2).to(tl.int64)
    K = tl.num_programs(2)
    c = j * BLOCK + tl.arange(0, BLOCK)
    cmask = c < C
    a_row = (n % a_rows) * a_len * C + c
    a_step = C if a_len > 1 else 0
    sr, si = _load(carry, (n * K + k) * C + c, cmask, 0.0, COMPLEX)
    pr, pi = tl.full((BLOCK,), 1.0, sr.dtype), tl.full((BLOCK,), 0.0, sr.dtype)
    for i in range(CHUNK):
        if REVERSE:
            t = k * CHUNK + CHUNK - 1 - i
            gr, gi = _load(a, a_row + (t + 1) * a_step, cmask & (c * 0 + t + 1 < L), 0.0, COMPLEX)
            gi = -gi
        else:
            t = k * CHUNK + i
            gr, gi = _load(a, a_row + t * a_step, cmask & (c * 0 + t < L), 1.0, COMPLEX)
        inside = cmask & (c * 0 + t < L)  # a vector mask (the interpreter refuses a scalar one)
        br, bi = _load(b, n * L * C + t * C + c, inside, 0.0, COMPLEX)
        if COMPLEX:
            sr, si = gr * sr - gi * si + br, gr * si + gi * sr + bi
            pr, pi = gr * pr - gi * pi, gr * pi + gi * pr
        else:
            sr = gr * sr + br
            pr = pr * gr
        if WRITE:
            _store(h, n * L * C + t * C + c, sr, si, inside, COMPLEX)
    if not WRITE:
        _store(last, (n * K + k) * C + c, sr, si, cmask, COMPLEX)
        _store(prod, (n * K + k) * C + c, pr, pi, cmask, COMPLEX)


def _chunk(N: int, L: int, C: int) -> int:
    """Steps per chunk: all of L when the rows and channel blocks alone fill ``PROGRAMS`` programs,
    else at least 16 and at most ``MAX_CHUNKS`` chunks (their carries are a loop in torch)."""
    parallel = N * triton.cdiv(C, BLOCK)
    chunks = min(MAX_CHUNKS, triton.cdiv(PROGRAMS, parallel))
    return L if chunks == 1 else max(16, triton.cdiv(L, chunks))


def scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, reverse: bool = False,
         chunk: int | None = None) -> torch.Tensor:
    """All states of eq. (24) over dim 1 of b [N, L, C] with gains a [1 or N, L or 1, C] and start h0 [N, C];
    reversed, g_t = conj(a_{t+1}) g_{t+1} + b_t with a_L = 0 (h0 then has no effect). Contiguous
    tensors of one dtype, real or complex."""
    N, L, C = b.shape
    chunk = _chunk(N, L, C) if chunk is None else chunk
    real = torch.view_as_real if b.is_complex() else lambda t: t
    K = triton.cdiv(L, chunk)
    grid = (N, triton.cdiv(C, BLOCK), K)
    h = torch.empty_like(b)
    carry = h0.unsqueeze(1)
    if K > 1:
        last, prod = b.new_empty((N, K, C)), b.new_empty((N, K, C))
        _scan_chunks[grid](real(a), real(b), real(torch.zeros_like(last)), real(h), real(last), real(prod), L, C,
                           *a.shape[:2], CHUNK=chunk, REVERSE=reverse, WRITE=False, COMPLEX=b.is_complex(),
                           BLOCK=BLOCK)
        ends, state = [], h0
        for k in (range(K - 1, -1, -1) if reverse else range(K)):  # the carries: a scan over K chunks
            ends.append(state)
            state = (prod[:, k].conj() if reverse else prod[:, k]) * state + last[:, k]
        carry = torch.stack(ends[::-1] if reverse else ends, 1)
    _scan_chunks[grid](real(a), real(b), real(carry.contiguous()), real(h), real(h), real(h), L, C, *a.shape[:2],
                       CHUNK=chunk, REVERSE=reverse, WRITE=True, COMPLEX=b.is_complex(), BLOCK=BLOCK)
    return h


class TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, chunk):
        h = scan(a, b, h0, chunk=chunk)
        ctx.save_for_backward(a, h, h0)
        ctx.chunk = chunk
        return h

    @staticmethod
    def backward(ctx, gh):
        a, h, h0 = ctx.saved_tensors
        g = scan(a, gh.contiguous(), torch.zeros_like(h0), reverse=True, chunk=ctx.chunk)
        ga = (g * torch.cat([h0.unsqueeze(1), h[:, :-1]], 1).conj()).sum_to_size(a.shape)
        return ga, g, a[:, 0].conj() * g[:, 0], None
