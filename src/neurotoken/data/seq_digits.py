"""Digits as pixel sequences: each 8x8 image of :func:`load_digits` read row by row as 64 tokens
of one channel, [N, 64, 1]; optionally in one fixed random pixel order (permuted digits)."""

from __future__ import annotations

import torch

from .. import _checks
from .digits import Split, load_digits


def load_seq_digits(permuted: bool = False, permutation_seed: int = 0, test_fraction: float = 0.25,
                    seed: int = 0) -> Split:
    """load_digits(test_fraction, seed) as sequences x [N, 64, 1]; ``permuted`` reorders every
    sequence by the same permutation drawn with ``permutation_seed``."""
    _checks.positive_int("permutation_seed", permutation_seed, low=0)
    split = load_digits(test_fraction, seed)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(permutation_seed)) if permuted else torch.arange(64)
    seq = lambda x: x[:, order].unsqueeze(-1)  # noqa: E731
    return Split(seq(split.x_train), split.y_train, seq(split.x_test), split.y_test)
