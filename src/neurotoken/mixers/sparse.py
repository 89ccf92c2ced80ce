"""Sparse attention patterns (Child et al., 2019) and their event-driven evaluation.

A pattern is a boolean mask M [L, S] (M[i, j]: query i attends key j), causal by default
(j <= i), or its compressed form :class:`CSR` (row pointers + column indices of the attended
pairs). The event-driven functions gather the attended pairs, score them and scatter the results
back, so their cost is proportional to the number of (active) pairs, not L^2; the block-sparse
path (:func:`block_sparse_attention`, re-exported from :mod:`.blocksparse`) evaluates the pattern's
non-zero tiles with batched matmuls instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .. import _checks
from .base import check_mask, check_qkv
from .blocksparse import BlockPlan, block_sparse_attention, check_pattern, plan


def _grid(L: int, causal: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions i, offsets d[i, j] = i - j, and the allowed region (j <= i when causal)."""
    i = torch.arange(_checks.positive_int("L", L))
    d = i[:, None] - i[None, :]
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    return i, d, (d >= 0) if causal else torch.ones(L, L, dtype=torch.bool)


def local(L: int, window: int, causal: bool = True) -> torch.Tensor:
    """Local window: M[i, j] = |i - j| < window (and j <= i when causal)."""
    window = _checks.positive_int("window", window)
    _, d, allowed = _grid(L, causal)
    return allowed & (d.abs() < window)


def strided(L: int, stride: int, causal: bool = True) -> torch.Tensor:
    """Strided (Child et al.): M[i, j] = |i - j| < stride or (i - j) mod stride = 0 (j <= i when causal)."""
    stride = _checks.positive_int("stride", stride)
    _, d, allowed = _grid(L, causal)
    return allowed & ((d.abs() < stride) | (d % stride == 0))


def block(L: int, block: int, causal: bool = True) -> torch.Tensor:
    """Block-diagonal: M[i, j] = floor(i / block) = floor(j / block) (j <= i when causal)."""
    block = _checks.positive_int("block", block)
    i, _, allowed = _grid(L, causal)
    return allowed & ((i // block)[:, None] == (i // block)[None, :])


def fixed(L: int, block: int, summary: int = 1, causal: bool = True) -> torch.Tensor:
    """Fixed (Child et al.): same block, or j mod block >= block - summary (the block's last
    ``summary`` "summary" keys, attended from everywhere); j <= i when causal."""
    block_ = _checks.positive_int("block", block)
    summary = _checks.positive_int("summary", summary)
    if summary > block_:
        raise ValueError(f"summary must be <= block ({block_}), got {summary}")
    i, _, allowed = _grid(L, causal)
    same = (i // block_)[:, None] == (i // block_)[None, :]
    return allowed & (same | (i % block_ >= block_ - summary)[None, :])


def union(*masks: torch.Tensor) -> torch.Tensor:
    """Union of patterns of one shape: M = M_1 or M_2 or ..."""
    if not masks:
        raise ValueError("union needs at least one mask")
    out = check_mask(masks[0], name="masks[0]")
    for n, m in enumerate(masks[1:], 1):
        out = out | check_mask(m, *out.shape[-2:], name=f"masks[{n}]")
    return out


class CSR(NamedTuple):
    """Compressed rows of an [L, S] pattern: row i attends keys indices[indptr[i]:indptr[i + 1]]."""

    indptr: torch.Tensor   # [L + 1] int64, non-decreasing, indptr[0] = 0
    indices: torch.Tensor  # [nnz] int64, ascending within each row
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return self.indices.numel()

    def rows(self) -> torch.Tensor:
        """The query row of every pair, [nnz] (the COO row index)."""
        counts = self.indptr.diff()
        return torch.repeat_interleave(torch.arange(self.shape[0], device=counts.device), counts)

    def to_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.shape, dtype=torch.bool, device=self.indices.device)
        mask[self.rows(), self.indices] = True
        return mask


def to_csr(mask: torch.Tensor) -> CSR:
    """The compressed index list of a boolean [L, S] pattern."""
    check_mask(mask)
    if mask.dim() != 2:
        raise ValueError(f"mask must be a single [L, S] pattern, got shape {tuple(mask.shape)}")
    rows, cols = mask.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=mask.shape[0])
    indptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return CSR(indptr, cols, tuple(mask.shape))


def _as_csr(pattern) -> CSR:
    if isinstance(pattern, CSR):
        return pattern
    if isinstance(pattern, torch.Tensor):
        return to_csr(pattern)
    raise TypeError(f"pattern must be a boolean mask tensor or a CSR, got {type(pattern).__name__}")


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern,
                     scale: float | None = None) -> torch.Tensor:
    """Eq. (21)-(23) over the attended pairs only: gather (q_l, k_l') per pair, softmax per row by
    scatter (segment max and sum), scatter-add alpha_{l,l'} v_l'. q [..., L, d] -> [..., L, dv]."""
    pattern = _as_csr(pattern)
    check_qkv(q, k, v)
    check_pattern(pattern, q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else _checks.number("scale", scale)
    rows, cols = pattern.rows().to(q.device), pattern.indices.to(q.device)
    s = (q.index_select(-2, rows) * k.index_select(-2, cols)).sum(-1) * scale     # [..., nnz]
    row_of = rows.expand_as(s)
    peak = s.new_full((*s.shape[:-1], q.shape[-2]), -math.inf)
    peak = peak.scatter_reduce(-1, row_of, s.detach(), "amax")  # softmax is shift invariant
    e = torch.exp(s - peak.gather(-1, row_of))
    z = e.new_zeros(peak.shape).index_add(-1, rows, e)
    alpha = e / z.gather(-1, row_of)
    out = v.new_zeros((*v.shape[:-2], q.shape[-2], v.shape[-1]))
    return out.index_add(-2, rows, alpha.unsqueeze(-1) * v.index_select(-2, cols))


def events(pattern, qs: torch.Tensor, ks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The active pairs of spike trains qs [T, ..., L, d], ks [T, ..., S, d]: attended pairs whose
    query and key tokens both spiked. Returns (flat batch index, row, column), one entry per event."""
    pattern = _as_csr(pattern)
    q_on = (qs != 0).any(0).any(-1).reshape(-1, qs.shape[-2])  # [N, L] (N = 1 without batch axes)
    k_on = (ks != 0).any(0).any(-1).reshape(-1, ks.shape[-2])  # [N, S]
    rows, cols = pattern.rows().to(qs.device), pattern.indices.to(qs.device)
    n, p = (q_on[:, rows] & k_on[:, cols]).nonzero(as_tuple=True)
    return n, rows[p], cols[p]


def active_pairs(pattern, qs: torch.Tensor, ks: torch.Tensor) -> int:
    """Number of events: attended (query, key) pairs over the batch where both tokens spiked."""
    return events(pattern, qs, ks)[0].numel()


def sparse_spike_attention(qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, pattern,
                           scale: float = 1.0) -> torch.Tensor:
    """Event-driven AND attention: y_t[l] = scale sum_{l' in row l} C[l, l'] vs_t[l'], with
    C[l, l'] = sum_{t, d} qs_t[l, d] ks_t[l', d], evaluated on active pairs only (a silent token's
    pairs have C = 0). Spikes [T, ..., L, d] -> [T, ..., L, dv]; equals the dense masked form in
    value and in the gradient to vs; spikes of silent tokens get no gradient (never evaluated)."""
    pattern = _as_csr(pattern)
    check_qkv(qs, ks, vs, lead=1)
    check_pattern(pattern, qs, ks)
    scale = _checks.number("scale", scale)
    n, r, c = events(pattern, qs, ks)
    q, k, v = (t.reshape(t.shape[0], -1, *t.shape[-2:]) for t in (qs, ks, vs))  # [T, N, L, d]
    counts = (q[:, n, r] * k[:, n, c]).sum((0, -1))      # [E]
    contrib = (scale * counts)[None, :, None] * v[:, n, c]
    L = qs.shape[-2]
    out = vs.new_zeros((vs.shape[0], q.shape[1] * L, vs.shape[-1])).index_add(1, n * L + r, contrib)
    return out.view(*vs.shape[:-2], L, vs.shape[-1])


__all__ = ["check_mask", "check_qkv", "local", "strided", "block", "fixed", "union", "CSR", "to_csr",
           "sparse_attention", "events", "active_pairs", "sparse_spike_attention", "BlockPlan", "plan",
           "block_sparse_attention"]
