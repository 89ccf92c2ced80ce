"""Triton selective scan, eq. (33) (eq. (16)-(17) with a_t = exp(-Delta_t A), b_t = Delta_t), forward and
reverse-scan backward (imported lazily by :func:`neurotoken.mixers.ssm.selective_scan`). Reference twin:
``selective_scan(method="sequential")``.

One program owns ``BLOCK_D`` channels of one batch row and loops over the L tokens with their state
S [BLOCK_D, N] in registers: S_t = exp(-Delta_t A) S_{t-1} + Delta_t x_t k_t, y_t = S_t q_t. With
gradients, forward saves only the state at the start of every ``CHUNK`` tokens. Backward walks the
chunks from the last: it rescans a chunk from its saved state into a per-program scratch of
CHUNK states, then runs the adjoint G_t = gy_t q_t + exp(-Delta_{t+1} A) G_{t+1} back through it,
with dx_t = Delta_t G_t k_t, dDelta_t = x_t G_t k_t - sum_n A G_t exp(-Delta_t A) S_{t-1},
dA = -sum_t Delta_t G_t exp(-Delta_t A) S_{t-1}, dk_t = sum_c Delta_t x_t G_t, dq_t = sum_c gy_t S_t
and dS_{-1} = exp(-Delta_0 A) G_0 (sums over channels and batch rows finish in torch).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import promoted

BLOCK_D = 32
CHUNK = 16


@triton.jit
def _token(x, delta, k, q, b, t, L, D, N, d, n, dmask, nmask):
    """x_t, Delta_t [BLOCK_D] and k_t, q_t [BLOCK_N] of row b (0 past the end, so a padded step
    keeps the state: exp(0) = 1 and no input)."""
    din = dmask & (d * 0 + t < L)  # a vector mask (the interpreter refuses a scalar one)
    nin = nmask & (n * 0 + t < L)
    row = b * L + t
    return (tl.load(x + row * D + d, din, other=0.0), tl.load(delta + row * D + d, din, other=0.0),
            tl.load(k + row * N + n, nin, other=0.0), tl.load(q + row * N + n, nin, other=0.0), din, nin)


@triton.jit
def _selective_forward(x, delta, A, k, q, h0, y, final, checkpoints, L, D, N, CHUNK: tl.constexpr,
                       SAVE: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """Row b, channels of block j: y [B, L, D], the last state final [B, D, N] and (SAVE) the state
    before every chunk, checkpoints [B, K, D, N]."""
    b, j = tl.program_id(0).to(tl.int64), tl.program_id(1)
    K = tl.cdiv(L, CHUNK)
    d, n = j * BLOCK_D + tl.arange(0, BLOCK_D), tl.arange(0, BLOCK_N)
    dmask, nmask = d < D, n < N
    tile, tmask = d[:, None] * N + n[None, :], dmask[:, None] & nmask[None, :]
    rate = tl.load(A + tile, tmask, other=0.0)
    h = tl.load(h0 + b * D * N + tile, tmask, other=0.0)
    for c in range(K):
        if SAVE:
            tl.store(checkpoints + (b * K + c) * D * N + tile, h, tmask)
        for i in range(CHUNK):
            t = c * CHUNK + i
            xt, dt, kt, qt, din, nin = _token(x, delta, k, q, b, t, L, D, N, d, n, dmask, nmask)
            h = tl.exp(-dt[:, None] * rate) * h + (dt * xt)[:, None] * kt[None, :]
            tl.store(y + (b * L + t) * D + d, tl.sum(h * qt[None, :], 1), din)
    tl.store(final + b * D * N + tile, h, tmask)


@triton.jit
def _selective_backward(x, delta, A, k, q, checkpoints, gy, gfinal, scratch, dx, ddelta, dA, dk, dq, dh0,
                        L, D, N, CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """Row b, channels of block j: dx, dDelta [B, L, D]; per row dA [B, D, N] and dS_{-1} [B, D, N]; per
    channel block dk, dq [B, J, L, N]. scratch [B, J, CHUNK, BLOCK_D, BLOCK_N] holds a chunk's S_{t-1}."""
    b, j = tl.program_id(0).to(tl.int64), tl.program_id(1)
    J, K = tl.num_programs(1), tl.cdiv(L, CHUNK)
    d, n = j * BLOCK_D + tl.arange(0, BLOCK_D), tl.arange(0, BLOCK_N)
    dmask, nmask = d < D, n < N
    tile, tmask = d[:, None] * N + n[None, :], dmask[:, None] & nmask[None, :]
    own = scratch + (b * J + j) * CHUNK * BLOCK_D * BLOCK_N + tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + n[None, :]
    rate = tl.load(A + tile, tmask, other=0.0)
    g = tl.load(gfinal + b * D * N + tile, tmask, other=0.0)  # dL/dS_t without its own read-out term
    grate = rate * 0.0
    for r in range(K):
        c = K - 1 - r
        h = tl.load(checkpoints + (b * K + c) * D * N + tile, tmask, other=0.0)
        for i in range(CHUNK):
            tl.store(own + i * BLOCK_D * BLOCK_N, h)
            xt, dt, kt, qt, din, nin = _token(x, delta, k, q, b, c * CHUNK + i, L, D, N, d, n, dmask, nmask)
            h = tl.exp(-dt[:, None] * rate) * h + (dt * xt)[:, None] * kt[None, :]
        tl.debug_barrier()  # the scratch written above is read back by other threads
        for ri in range(CHUNK):
            i = CHUNK - 1 - ri
            t = c * CHUNK + i
            xt, dt, kt, qt, din, nin = _token(x, delta, k, q, b, t, L, D, N, d, n, dmask, nmask)
            gyt = tl.load(gy + (b * L + t) * D + d, din, other=0.0)
            hp = tl.load(own + i * BLOCK_D * BLOCK_N)
            decay = tl.exp(-dt[:, None] * rate)
            g += gyt[:, None] * qt[None, :]
            gk = tl.sum(g * kt[None, :], 1)
            gdecay = g * decay * hp
            tl.store(dx + (b * L + t) * D + d, dt * gk, din)
            tl.store(ddelta + (b * L + t) * D + d, xt * gk - tl.sum(gdecay * rate, 1), din)
            part = ((b * J + j) * L + t) * N + n
            tl.store(dk + part, tl.sum(g * (dt * xt)[:, None], 0), nin)
            tl.store(dq + part, tl.sum((decay * hp + (dt * xt)[:, None] * kt[None, :]) * gyt[:, None], 0), nin)
            grate -= gdecay * dt[:, None]
            g = decay * g
        tl.debug_barrier()  # every thread has read the scratch before the next chunk overwrites it
    tl.store(dA + b * D * N + tile, grate, tmask)
    tl.store(dh0 + b * D * N + tile, g, tmask)


def _grid(x: torch.Tensor, A: torch.Tensor) -> tuple[tuple[int, int], dict]:
    B, L, D = x.shape
    return (B, triton.cdiv(D, BLOCK_D)), dict(CHUNK=CHUNK, BLOCK_D=BLOCK_D,
                                                BLOCK_N=triton.next_power_of_2(A.shape[1]))


class SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, delta, A, k, q, h0, save):
        (B, L, D), N = x.shape, A.shape[1]
        grid, sizes = _grid(x, A)
        y, final = torch.empty_like(x), x.new_empty((B, D, N))
        checkpoints = x.new_empty((B, triton.cdiv(L, CHUNK), D, N) if save else (1,))
        _selective_forward[grid](x, delta, A, k, q, h0, y, final, checkpoints, L, D, N, SAVE=save, **sizes)
        ctx.save_for_backward(x, delta, A, k, q, checkpoints)
        return y, final

    @staticmethod
    def backward(ctx, gy, gfinal):
        x, delta, A, k, q, checkpoints = ctx.saved_tensors
        (B, L, D), N = x.shape, A.shape[1]
        grid, sizes = _grid(x, A)
        scratch = x.new_empty((B, grid[1], CHUNK, BLOCK_D, sizes["BLOCK_N"]))
        dx, ddelta = torch.empty_like(x), torch.empty_like(x)
        dA, dh0 = x.new_empty((B, D, N)), x.new_empty((B, D, N))
        dk, dq = x.new_empty((B, grid[1], L, N)), x.new_empty((B, grid[1], L, N))
        _selective_backward[grid](x, delta, A, k, q, checkpoints, gy.contiguous(), gfinal.contiguous(), scratch,
                                  dx, ddelta, dA, dk, dq, dh0, L, D, N, **sizes)
        return dx, ddelta, dA.sum(0), dk.sum(1), dq.sum(1), dh0, None


def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, k: torch.Tensor, q: torch.Tensor,
                   state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (33) as :func:`neurotoken.mixers.ssm.selective_scan` (validated there): x, delta [B, L, D],
    A [D, N], k, q [B, L, N], state [B, D, N] or None -> (y [B, L, D], last state [B, D, N]), in the
    promoted dtype (float32 or float64)."""
    tensors = (x, delta, A, k, q) + (() if state is None else (state,))
    dtype = promoted(*tensors)
    x, delta, A, k, q = (t.to(dtype).contiguous() for t in (x, delta, A, k, q))
    h0 = x.new_zeros((x.shape[0], *A.shape)) if state is None else state.to(dtype).contiguous()
    save = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return SelectiveScan.apply(x, delta, A, k, q, h0, save)
