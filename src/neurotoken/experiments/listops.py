"""Short ListOps (LRA grammar): the spiking SSM classifier (multi-level spikes by default) and its
conventional twin against the majority-class baseline. Tokens enter as one-hot vectors (the pad token as zeros),
so the classifier's input Linear is a token embedding."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..data.listops import VOCAB, load_listops, majority_accuracy
from ..learning.bptt import FitConfig
from ..metrics import accuracy
from ..models import SpikingSSMClassifier
from ..neurons import LIF
from ..spikes import SPIKES
from ..tokens import OneHot
from .config import integer, items, nested, one_of, real, validate
from .runner import Results, Runner, recipe


# an SSM's step range, shared by the sequence-classification recipes
DT_RANGE = (("dt_range", lambda c: c.dt_range[0] < c.dt_range[1], "be (low, high) with low < high, got {c.dt_range}"),)


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
    spike: str = "multilevel"  # the spiking model's spike kind
    dt_range: tuple[float, float] = (0.01, 0.5)
    fit: FitConfig = FitConfig(epochs=15, batch_size=64, lr=3e-3)
    data_seed: int = 0
    CHECKS = {"n_train": integer(), "n_test": integer(), "max_depth": integer(2), "max_args": integer(2),
              "min_length": integer(), "max_length": integer(), "d_model": integer(), "d_state": integer(),
              "layers": integer(), "spike": one_of(SPIKES.names),
              "dt_range": items(real(low=0.0, low_open=True), real(low=0.0, low_open=True)),
              "fit": nested(FitConfig), "data_seed": integer(0)}
    RELATIONS = (("max_length", lambda c: c.max_length >= c.min_length, "be >= min_length ({c.min_length}), "
                  "got {c.max_length}"),) + DT_RANGE

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> ListOpsShort:
        """300 short expressions, one small block, one epoch."""
        return cls(**{"n_train": 300, "n_test": 100, "max_depth": 2, "max_length": 32, "d_model": 16, "layers": 1,
                      "fit": FitConfig(epochs=1, batch_size=64, lr=3e-3), **changes})


@recipe(ListOpsShort)
def run_listops(config: ListOpsShort, runner: Runner) -> Results:
    """Rows {"model", "test_accuracy", "final_loss", "train_seconds"}: majority class, spiking, twin."""
    data = load_listops(config.n_train, config.n_test, config.max_depth, config.max_args, config.min_length,
                        config.max_length, config.data_seed)
    runner.emit({"model": "majority class", "test_accuracy": majority_accuracy(data.y_train, data.y_test),
                 "final_loss": None, "train_seconds": None})
    for spiking in (True, False):
        build = lambda: nn.Sequential(OneHot(len(VOCAB)), SpikingSSMClassifier(  # noqa: E731
            len(VOCAB) - 1, config.d_model, config.d_state, config.layers, classes=10, spiking=spiking,
            neuron=LIF(beta=0.0, reset="none", spike=config.spike), dt_range=config.dt_range))
        trained = runner.train("spiking" if spiking else "twin", build, config.fit, data.x_train, data.y_train,
                               seed=config.fit.seed)
        runner.emit({"model": "spiking SSM" if spiking else "SSM twin", "final_loss": trained.losses[-1],
                     "train_seconds": trained.seconds, "samples_per_s": trained.samples_per_s,
                     "test_accuracy": accuracy(trained.model, data.x_test, data.y_test)})
    return runner.results()
