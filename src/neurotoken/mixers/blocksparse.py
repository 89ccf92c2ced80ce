"""Block-sparse softmax attention, eq. (21)-(23), evaluated on the non-zero tiles of a pattern (48): eq. (82).

A plan covers a boolean [L, S] pattern with block x block tiles, in one or more layouts: a layout
orders the queries and keys (the identity, or by residue modulo a period, which makes the strided
and fixed patterns of Child et al. (2019) dense in tiles), and every attended pair belongs to exactly
one layout's tiles. The plan is built once from the mask (host-side index work); the forward pass
gathers each query block's key blocks, runs batched matmuls over the tiles, masks within them and
normalises each query row across all its tiles (and layouts) with a stable log-sum-exp. The
``triton`` backend (:mod:`neurotoken.kernels.triton.blocksparse`; ``auto`` on CUDA) runs each
layout's tiles in one kernel with an online softmax and joins the layouts by their log-sum-exp.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .. import _checks
from ..kernels import triton as triton_kernels
from .base import check_mask, check_qkv

BACKENDS = ("auto", "torch", "triton")
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Tiles(NamedTuple):
    """One layout's tiles: queries (keys) taken in ``q_order`` (``k_order``; empty = identity),
    query block r attends key blocks ``kblocks[r]`` ([nq, K], padded with block 0) and ``blocked``
    [nq, block, K block] is True where a tile holds no pair; ``q_restore`` undoes ``q_order``."""

    q_order: torch.Tensor
    k_order: torch.Tensor
    q_restore: torch.Tensor
    kblocks: torch.Tensor
    blocked: torch.Tensor


class BlockPlan(NamedTuple):
    """A pattern's tiles in each layout, the tile size, the pattern's [L, S] and number of pairs."""

    parts: tuple[Tiles, ...]
    block: int
    shape: tuple[int, int]
    nnz: int

    @property
    def tiles(self) -> int:
        """Number of block x block tiles evaluated (padding tiles of short rows included)."""
        return sum(p.kblocks.numel() for p in self.parts)

    def flat(self) -> list[torch.Tensor]:
        """Every index tensor of the plan, in order (for a module to hold them as buffers)."""
        return [t for p in self.parts for t in p]

    def rebuild(self, tensors) -> BlockPlan:
        """The same plan over ``tensors`` (the :meth:`flat` list, moved or copied)."""
        n = len(Tiles._fields)
        return self._replace(parts=tuple(Tiles(*tensors[i * n:(i + 1) * n]) for i in range(len(self.parts))))

    def to(self, device) -> BlockPlan:
        """The plan with its index tensors on ``device``."""
        return self.rebuild([t.to(device) for t in self.flat()])

    def to_mask(self) -> torch.Tensor:
        """The boolean [L, S] pattern the plan covers (no host sync: blocked pairs write a spare slot)."""
        L, S = self.shape
        b = self.block
        flat = torch.zeros(L * S + 1, dtype=torch.bool, device=self.parts[0].kblocks.device)
        for p in self.parts:
            nq, K = p.kblocks.shape
            rows = torch.arange(nq * b, device=flat.device)[:, None].expand(-1, K * b)
            cols = (p.kblocks[:, None, :, None] * b + torch.arange(b, device=flat.device)).reshape(nq, 1, K * b)
            cols = cols.expand(-1, b, -1).reshape(nq * b, K * b)
            hit = ~p.blocked.reshape(nq * b, K * b) & (rows < L) & (cols < S)
            pair = _order(p.q_order, rows.clamp(max=L - 1)) * S + _order(p.k_order, cols.clamp(max=S - 1))
            flat[torch.where(hit, pair, L * S)] = True
        return flat[:-1].view(L, S)


def _order(order: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    return order[i] if order.numel() else i


def residue_order(n: int, period: int, device=None) -> torch.Tensor:
    """Positions sorted by (i mod period, i): the permuted layout of Child et al. (2019)."""
    i = torch.arange(n, device=device)
    return torch.sort(i % period * n + i).indices


def _tiles(mask: torch.Tensor, b: int, q_order, k_order, pad_rows: bool) -> Tiles:
    """The non-zero tiles of ``mask`` (already in the layout); ``pad_rows`` gives every row of the
    padded blocks one entry (their softmax then stays finite; their outputs are dropped)."""
    L, S = mask.shape
    nq, nk = -(-L // b), -(-S // b)
    padded = F.pad(mask, (0, nk * b - S, 0, nq * b - L))
    t = padded.view(nq, b, nk, b).transpose(1, 2)        # [nq, nk, b, b]
    used = t.any(-1).any(-1)                             # [nq, nk]
    K = max(int(used.sum(1).max()), 1)
    # used blocks first (ascending), then block 0 as padding with an empty tile
    rank = torch.where(used, torch.arange(nk), nk + torch.arange(nk)).argsort(1)[:, :K]
    kblocks = torch.where(used.gather(1, rank), rank, 0)
    tiles = t.gather(1, rank[:, :, None, None].expand(-1, -1, b, b)) & used.gather(1, rank)[:, :, None, None]
    allowed = tiles.transpose(1, 2).reshape(nq, b, K * b)
    if pad_rows:
        allowed = allowed.clone()
        allowed.view(nq * b, K * b)[L:, 0] = True
    restore = torch.argsort(q_order) if q_order.numel() else q_order
    return Tiles(q_order, k_order, restore, kblocks, ~allowed)


def plan(mask: torch.Tensor, block: int = 32, period: int | None = None) -> BlockPlan:
    """Cover the boolean [L, S] ``mask`` with block x block tiles. ``period``: also use the layout
    sorted by residue modulo ``period`` (the stride of a strided pattern, the block of a fixed one);
    a tile stays in the identity layout when it holds more pairs than ceil(block / period) per row
    (more than the periodic part alone puts there), the rest of the pairs go to the permuted one."""
    check_mask(mask)
    if mask.dim() != 2:
        raise ValueError(f"mask must be a single [L, S] pattern, got shape {tuple(mask.shape)}")
    b = _checks.positive_int("block", block)
    mask = mask.cpu()
    L, S = mask.shape
    none = torch.empty(0, dtype=torch.long)
    if period is None:
        return BlockPlan((_tiles(mask, b, none, none, True),), b, (L, S), int(mask.sum()))
    period = _checks.positive_int("period", period)
    nq, nk = -(-L // b), -(-S // b)
    fill = F.pad(mask, (0, nk * b - S, 0, nq * b - L)).view(nq, b, nk, b).sum((1, 3))
    dense = (fill > b * -(-b // period)).repeat_interleave(b, 0).repeat_interleave(b, 1)[:L, :S]
    q_order, k_order = residue_order(L, period), residue_order(S, period)
    rest = (mask & ~dense)[q_order][:, k_order]
    parts = (_tiles(mask & dense, b, none, none, False), _tiles(rest, b, q_order, k_order, False))
    return BlockPlan(parts, b, (L, S), int(mask.sum()))


def _gather(x: torch.Tensor, order: torch.Tensor, n: int) -> torch.Tensor:
    """x [..., L, d] in the layout ``order``, padded to n rows."""
    x = x.index_select(-2, order) if order.numel() else x
    return F.pad(x, (0, 0, 0, n - x.shape[-2])) if n > x.shape[-2] else x


def _scores(q, k, v, p: Tiles, b: int, scale: float):
    """Tile scores [..., nq, b, K b] (blocked pairs at -inf) and the gathered values [..., nq, K b, dv]."""
    nq, K = p.kblocks.shape
    nk = -(-k.shape[-2] // b)
    qb = (_gather(q, p.q_order, nq * b) * scale).unflatten(-2, (nq, b))
    idx = p.kblocks.flatten()
    kg, vg = (_gather(t, p.k_order, nk * b).unflatten(-2, (nk, b)).index_select(-3, idx).unflatten(-3, (nq, K))
              .flatten(-3, -2) for t in (k, v))
    s = (qb @ kg.transpose(-1, -2)).masked_fill(p.blocked, -math.inf)
    return s, vg


def _rows(x: torch.Tensor, p: Tiles, L: int) -> torch.Tensor:
    """Per-tile-row results [..., nq, b, c] back to the original query order [..., L, c]."""
    x = x.flatten(-3, -2)[..., :L, :]
    return x.index_select(-2, p.q_restore) if p.q_restore.numel() else x


def _triton(q, k, v, plan_: BlockPlan, scale: float) -> torch.Tensor:
    """Eq. (21)-(23) per layout in the Triton kernel (normalised outputs and log-sum-exps), the layouts
    joined by their log-sum-exp."""
    from ..kernels.triton.blocksparse import TileAttention

    L, b, lead = q.shape[-2], plan_.block, q.shape[:-2]
    outs, lses = [], []
    for p in plan_.parts:
        nq, nk = p.kblocks.shape[0], -(-k.shape[-2] // b)
        qg = (_gather(q, p.q_order, nq * b) * scale).reshape(-1, nq * b, q.shape[-1]).contiguous()
        kg, vg = (_gather(t, p.k_order, nk * b).reshape(-1, nk * b, t.shape[-1]).contiguous() for t in (k, v))
        o, lse = TileAttention.apply(qg, kg, vg, p.kblocks, p.blocked, b)
        outs.append(_rows(o.view(*lead, nq, b, -1), p, L))
        lses.append(_rows(lse.view(*lead, nq, b, 1), p, L))
    if len(outs) == 1:
        return outs[0]
    total = torch.logsumexp(torch.stack(lses), 0)
    return sum(o * torch.exp(lse - total) for o, lse in zip(outs, lses)).to(q.dtype)  # lse: float32 for halves


def _block_sparse(q, k, v, plan_: BlockPlan, scale: float, backend: str = "auto") -> torch.Tensor:
    """Eq. (21)-(23) over the plan's tiles, on trusted inputs; ``backend`` as in :func:`block_sparse_attention`."""
    if backend == "triton" or (backend == "auto" and q.device.type == "cuda"):
        why = triton_kernels.unsupported_real(q, k, v, dtypes=TRITON_DTYPES)
        if why is None:
            return _triton(q, k, v, plan_, scale)
        if backend == "triton":
            warnings.warn(f"block-sparse backend 'triton' cannot run: {why}; using 'torch'", RuntimeWarning,
                          stacklevel=3)
    L, b = q.shape[-2], plan_.block
    if len(plan_.parts) == 1:
        s, vg = _scores(q, k, v, plan_.parts[0], b, scale)
        return _rows(torch.softmax(s, -1) @ vg, plan_.parts[0], L)
    peaks, sums, outs = [], [], []
    for p in plan_.parts:
        s, vg = _scores(q, k, v, p, b, scale)
        m = s.detach().amax(-1, keepdim=True)               # softmax is shift invariant
        e = torch.exp(s - m.masked_fill(m == -math.inf, 0))  # a row with no pair here: all zero
        peaks.append(_rows(m, p, L))
        sums.append(_rows(e.sum(-1, keepdim=True), p, L))
        outs.append(_rows(e @ vg, p, L))
    peak = torch.stack(peaks).amax(0)
    w = [torch.exp(m - peak) for m in peaks]
    return sum(o * wi for o, wi in zip(outs, w)) / sum(z * wi for z, wi in zip(sums, w))


def check_pattern(pattern, q: torch.Tensor, k: torch.Tensor) -> None:
    """Require a pattern (mask, CSR or plan) of shape [L, S] for q [..., L, d], k [..., S, d]."""
    if tuple(pattern.shape) != (q.shape[-2], k.shape[-2]):
        raise ValueError(f"pattern has shape {tuple(pattern.shape)} but q, k give "
                         f"[L, S] = [{q.shape[-2]}, {k.shape[-2]}]")


def block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern, block: int = 32,
                           scale: float | None = None, backend: str = "auto") -> torch.Tensor:
    """Eq. (21)-(23) on the non-zero tiles of ``pattern`` (a boolean [L, S] mask, tiled here with
    ``block``, or a :func:`plan`); equals dense masked softmax attention in value and gradient.
    q [..., L, d], k [..., S, d], v [..., S, dv] -> [..., L, dv]. ``backend``: "torch" (batched
    matmuls over gathered tiles), "triton" (a fused kernel; CUDA, or the CPU under
    ``TRITON_INTERPRET=1``; where it cannot run, "torch" with a warning) or "auto" (triton on CUDA)."""
    check_qkv(q, k, v)
    _checks.choice("backend", backend, BACKENDS)
    if isinstance(pattern, torch.Tensor):
        pattern = plan(pattern, block)
    elif not isinstance(pattern, BlockPlan):
        raise TypeError(f"pattern must be a boolean mask tensor or a BlockPlan, got {type(pattern).__name__}")
    check_pattern(pattern, q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else _checks.number("scale", scale)
    return _block_sparse(q, k, v, pattern.to(q.device), scale, backend)


__all__ = ["BACKENDS", "Tiles", "BlockPlan", "plan", "residue_order", "block_sparse_attention", "check_pattern"]
