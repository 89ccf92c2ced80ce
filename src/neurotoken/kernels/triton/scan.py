"""Triton chunked linear scan, eq. (24), real gains, forward and reverse-scan backward (imported
lazily by :mod:`neurotoken.kernels.scan`). Reference twin: ``linear_scan(method="sequential")``.

Arrays are [N, L, C] (time in the middle, channels contiguous). Time is cut into chunks; one
program scans one chunk of one row for ``BLOCK`` channels with the state in registers. Pass 1 runs
every chunk from a zero state and keeps only its end state and its gain product; the chunk carries
then follow from a short scan over chunks; pass 2 rescans each chunk from its carry and writes h.
The backward of h_t = a_t h_{t-1} + b_t is the same kernel reversed in time,
g_t = dL/dh_t + a_{t+1} g_{t+1}, with dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 128
PROGRAMS = 1024  # chunks are cut until a scan launches about this many programs


@triton.jit
def _scan_chunks(a, b, carry, h, last, prod, L, C, a_rows, a_len, CHUNK: tl.constexpr, REVERSE: tl.constexpr,
                 WRITE: tl.constexpr, BLOCK: tl.constexpr):
    """Chunk k of row n, channels of block j: from state carry[n, k] run h_t = a_{t+R} h + b_t (a of
    a_rows rows and a_len = L or 1 steps, broadcast) over
    the chunk (forward in time, or backward with R = 1 when REVERSE; gains past the end are 0);
    write h (WRITE) or the chunk's end state last[n, k] and gain product prod[n, k]."""
    n, j, k = tl.program_id(0).to(tl.int64), tl.program_id(1), tl.program_id(2).to(tl.int64)
    K = tl.num_programs(2)
    c = j * BLOCK + tl.arange(0, BLOCK)
    cmask = c < C
    at = a + (n % a_rows) * a_len * C + c
    a_step = C if a_len > 1 else 0
    bt = b + n * L * C + c
    state = tl.load(carry + (n * K + k) * C + c, cmask, other=0.0)
    p = tl.full((BLOCK,), 1.0, state.dtype)
    for i in range(CHUNK):
        if REVERSE:
            t = k * CHUNK + CHUNK - 1 - i
            gain = tl.load(at + (t + 1) * a_step, cmask & (c * 0 + t + 1 < L), other=0.0)
        else:
            t = k * CHUNK + i
            gain = tl.load(at + t * a_step, cmask & (c * 0 + t < L), other=1.0)
        inside = cmask & (c * 0 + t < L)  # a vector mask (the interpreter refuses a scalar one)
        state = gain * state + tl.load(bt + t * C, inside, other=0.0)
        p = p * gain
        if WRITE:
            tl.store(h + n * L * C + t * C + c, state, inside)
    if not WRITE:
        tl.store(last + (n * K + k) * C + c, state, cmask)
        tl.store(prod + (n * K + k) * C + c, p, cmask)


def _chunk(N: int, L: int, C: int) -> int:
    """Steps per chunk: all of L when the rows and channel blocks alone fill ``PROGRAMS`` programs."""
    parallel = N * triton.cdiv(C, BLOCK)
    return L if parallel >= PROGRAMS else max(16, triton.cdiv(L, triton.cdiv(PROGRAMS, parallel)))


def scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, reverse: bool = False,
         chunk: int | None = None) -> torch.Tensor:
    """All states of eq. (24) over dim 1 of b [N, L, C] with gains a [1 or N, L or 1, C] and start h0 [N, C];
    reversed, g_t = a_{t+1} g_{t+1} + b_t with a_L = 0 (h0 then has no effect). Contiguous tensors of
    one real dtype."""
    N, L, C = b.shape
    chunk = _chunk(N, L, C) if chunk is None else chunk
    K = triton.cdiv(L, chunk)
    grid = (N, triton.cdiv(C, BLOCK), K)
    h = torch.empty_like(b)
    carry = h0.unsqueeze(1)
    if K > 1:
        last, prod = b.new_empty((N, K, C)), b.new_empty((N, K, C))
        _scan_chunks[grid](a, b, torch.zeros_like(last), h, last, prod, L, C, *a.shape[:2], CHUNK=chunk,
                           REVERSE=reverse, WRITE=False, BLOCK=BLOCK)
        ends, state = [], h0
        for k in (range(K - 1, -1, -1) if reverse else range(K)):  # the carries: a scan over K chunks
            ends.append(state)
            state = prod[:, k] * state + last[:, k]
        carry = torch.stack(ends[::-1] if reverse else ends, 1)
    _scan_chunks[grid](a, b, carry.contiguous(), h, h, h, L, C, *a.shape[:2], CHUNK=chunk, REVERSE=reverse,
                       WRITE=True, BLOCK=BLOCK)
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
        ga = (g * torch.cat([h0.unsqueeze(1), h[:, :-1]], 1)).sum_to_size(a.shape)
        return ga, g, a[:, 0] * g[:, 0], None
