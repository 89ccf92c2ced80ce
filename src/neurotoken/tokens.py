"""Token ids as model inputs: a fixed one-hot embedding whose pad id is the zero vector."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks


class OneHot(nn.Module):
    """Token ids [B, L] -> one-hot floats [B, L, vocab - 1] with the pad id 0 as the zero vector."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = _checks.positive_int("vocab", vocab, low=2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot(ids, self.vocab)[..., 1:].float()


__all__ = ["OneHot"]
