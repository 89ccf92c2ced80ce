"""scikit-learn's digits (1797 8x8 images, shipped with the package): a fixed train/test split."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _checks


class Split(NamedTuple):
    x_train: torch.Tensor  # [N, 64] float32 in [0, 1]
    y_train: torch.Tensor  # [N] int64
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Split:
    """Pixels scaled to [0, 1]; a stratified hold-out of ``test_fraction`` drawn with ``seed``."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    _checks.number("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    x, y = _load(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=test_fraction, random_state=seed, stratify=y)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    i = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return Split(f(xtr), i(ytr), f(xte), i(yte))
