"""Short ListOps (LRA grammar): the spiking SSM classifier (multi-level spikes by default) and its
conventional twin against the majority-class baseline. Tokens enter as one-hot vectors (the pad token as zeros),
so the classifier's input Linear is a token embedding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..data.listops import VOCAB, load_listops, majority_accuracy
from ..learning.bptt import FitConfig, fit_classifier
from ..metrics import accuracy
from ..models import SpikingSSMClassifier
from ..spikes import SPIKES


@dataclass(frozen=True)
class ListOpsShort:
    """Spiking SSM classifier and its twin on short ListOps (max, min, median, sum mod 10), vs majority class."""

    n_train: int = 4000
    n_test: int = 1000
    max_depth: int = 4
    max_args: int = 5
    min_length: int = 4
    max_length: int = 128
    d_model: int = 32
    d_state: int = 8
    layers: int = 2
    spike: str = "multilevel"  # the spiking model's spike kind (bernoulli: 0.403 vs the twin's 0.523)
    dt_range: tuple[float, float] = (0.01, 0.5)
    fit: FitConfig = FitConfig(epochs=15, batch_size=64, lr=3e-3)
    data_seed: int = 0

    def __post_init__(self):
        _checks.positive_int("n_train", self.n_train)
        _checks.positive_int("n_test", self.n_test)
        _checks.choice("spike", self.spike, SPIKES.names())


class OneHot(nn.Module):
    """Token ids [B, L] -> one-hot floats [B, L, vocab - 1] with the pad id 0 as the zero vector."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = _checks.positive_int("vocab", vocab, low=2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot(ids, self.vocab)[..., 1:].float()


def run_listops(config: ListOpsShort = ListOpsShort(), on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Rows {"model", "test_accuracy", "final_loss", "train_seconds"}: majority class, spiking, twin."""
    data = load_listops(config.n_train, config.n_test, config.max_depth, config.max_args, config.min_length,
                        config.max_length, config.data_seed)
    rows = [{"model": "majority class", "test_accuracy": majority_accuracy(data.y_train, data.y_test),
             "final_loss": None, "train_seconds": None}]
    if on_result is not None:
        on_result(rows[0])
    for spiking in (True, False):
        torch.manual_seed(config.fit.seed)  # same init whatever ran before
        model = nn.Sequential(OneHot(len(VOCAB)), SpikingSSMClassifier(
            len(VOCAB) - 1, config.d_model, config.d_state, config.layers, classes=10, spiking=spiking,
            spike=config.spike, dt_range=config.dt_range))
        start = time.perf_counter()
        losses = fit_classifier(model, data.x_train, data.y_train, config.fit)
        seconds = time.perf_counter() - start
        row = {"model": "spiking SSM" if spiking else "SSM twin", "final_loss": losses[-1], "train_seconds": seconds,
               "test_accuracy": accuracy(model, data.x_test, data.y_test)}
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
