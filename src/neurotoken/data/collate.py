"""Collate functions that put a batch into the library's layout (virtual time first, channels last)."""

from __future__ import annotations

import torch


def time_first(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate ``(x [T_i, ..., C], label)`` samples into ``x [T, B, ..., C]`` and labels ``[B]`` (int64).

    Samples with fewer bins than the longest are zero-padded at the end (no spikes)."""
    xs, ys = zip(*batch)
    steps = max(x.shape[0] for x in xs)
    out = xs[0].new_zeros((steps, len(xs), *xs[0].shape[1:]))
    for i, x in enumerate(xs):
        out[: x.shape[0], i] = x
    return out, torch.as_tensor(ys, dtype=torch.long)
