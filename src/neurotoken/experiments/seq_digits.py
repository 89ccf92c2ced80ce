"""Sequential digits: a spiking SSM (P-SpikeSSM on LRU gains) against its conventional twin."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import load_seq_digits
from ..learning.bptt import FitConfig
from ..metrics import accuracy, spike_rate
from ..neurons import LIF
from ..spikes import SPIKES
from .config import flag, integer, nested, one_of, real, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class SeqDigits:
    """Digits as 64-step pixel sequences: spiking LRU-SSM classifier vs its conventional twin.

    Recipe: 2 pre-norm blocks of d_model 32, 32 complex states (|lambda| in [0.9, 0.999]),
    deterministic 4-level spikes (0..3 at theta, 2 theta, 3 theta; 2 bits) on the SSM readouts and
    the MLP hidden layer ("binary" and "ternary" also run), dropout 0.1, AdamW (weight decay 0.05)
    with 50 warm-up steps and cosine decay, 60 epochs. The twin has GELU where the spikes are.
    ``permuted`` reads the pixels in one fixed random order (``permutation_seed``).
    """

    d_model: int = 32
    d_state: int = 32
    layers: int = 2
    spike: str = "multilevel"
    threshold: float = 1.0
    dropout: float = 0.1
    permuted: bool = False
    permutation_seed: int = 0
    fit: FitConfig = FitConfig(epochs=60, batch_size=32, lr=5e-3, weight_decay=0.05, warmup_steps=50)
    split_seed: int = 0
    CHECKS = {"d_model": integer(), "d_state": integer(), "layers": integer(), "spike": one_of(SPIKES.names),
              "threshold": real(low=0.0, low_open=True), "dropout": real(low=0.0, high=1.0, high_open=True),
              "permuted": flag, "permutation_seed": integer(0), "fit": nested(FitConfig), "split_seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> SeqDigits:
        """One block of d_model 16 with 8 states, one epoch."""
        return cls(**{"d_model": 16, "d_state": 8, "layers": 1, "fit": FitConfig(epochs=1, batch_size=64, lr=3e-3),
                      **changes})


def seq_digits_kwargs(config: SeqDigits, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SpikingSSMClassifier` of ``config`` (spiking or its twin): the
    readouts and the MLP fire a memoryless NPE of ``config.spike`` at ``config.threshold``."""
    neuron = LIF(beta=0.0, threshold=config.threshold, reset="none", spike=config.spike).config()
    return dict(in_features=1, d_model=config.d_model, d_state=config.d_state, layers=config.layers,
                spiking=spiking, neuron=neuron, mixer="lru", dropout=config.dropout)


@recipe(SeqDigits)
def run_seq_digits(config: SeqDigits, runner: Runner) -> Results:
    """Train the spiking classifier and its twin (same init seed) on seq_digits; one row per model."""
    data = load_seq_digits(config.permuted, config.permutation_seed, seed=config.split_seed)
    for spiking in (True, False):
        trained = runner.train("spiking" if spiking else "twin",
                               ("SpikingSSMClassifier", seq_digits_kwargs(config, spiking)), config.fit,
                               data.x_train, data.y_train, seed=config.fit.seed)
        model = trained.model
        runner.emit({"model": "P-SpikeSSM (LRU)" if spiking else "LRU SSM (twin)",
                     "spike": config.spike if spiking else "-", "permuted": config.permuted,
                     "test_accuracy": accuracy(model, data.x_test, data.y_test), "final_loss": trained.losses[-1],
                     "train_seconds": trained.seconds, "spike_rate": spike_rate(model, data.x_test),
                     "samples_per_s": trained.samples_per_s})
    return runner.results()
