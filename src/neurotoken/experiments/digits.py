"""Intra-token SNN on scikit-learn digits: test accuracy vs T and input encoding, with the twin."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import load_digits
from ..encoding import ENCODERS
from ..learning.bptt import FitConfig
from ..metrics import accuracy
from ..neurons import RESETS
from .config import each, integer, nested, one_of, real, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class DigitsSweep:
    """An SNN [64 -> hidden -> 10] trained by surrogate-gradient BPTT for each (encoding, T)."""

    Ts: tuple[int, ...] = (1, 2, 4, 8, 16)
    encodings: tuple[str, ...] = ("direct", "rate", "bernoulli", "positional")
    hidden: tuple[int, ...] = (256,)
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    fit: FitConfig = FitConfig(epochs=30, batch_size=64, lr=5e-3)
    split_seed: int = 0
    SINGLES = {"T": "Ts", "encoding": "encodings"}  # deprecated keys of the former main-job config
    CHECKS = {"Ts": each(integer(), unique=True), "encodings": each(one_of(ENCODERS.names), unique=True),
              "hidden": each(integer()), "beta": real(low=0.0, high=1.0), "threshold": real(low=0.0, low_open=True),
              "reset": one_of(RESETS), "fit": nested(FitConfig), "split_seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> DigitsSweep:
        """One rate-coded SNN (T=2, 16 hidden) and its twin, one epoch each."""
        return cls(**{"Ts": (2,), "encodings": ("rate",), "hidden": (16,), "fit": FitConfig(epochs=1, lr=5e-3),
                      **changes})

    def models(self) -> list[tuple[str, int, bool]]:
        """(encoding, T, spiking) of every model: the twin first, then the SNN per (encoding, T)."""
        return [("direct", self.Ts[0], False)] + [(e, T, True) for e in self.encodings for T in self.Ts]


def model_kwargs(config: DigitsSweep, encoding: str, T: int, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SNNClassifier` (or its ReLU twin) of ``config``."""
    neuron = dict(beta=config.beta, threshold=config.threshold, reset=config.reset) if spiking else {}
    return dict(in_features=64, hidden=list(config.hidden), classes=10, T=T,
                encoding=encoding if spiking else "direct", spiking=spiking, **neuron)


@recipe(DigitsSweep)
def run_digits_sweep(config: DigitsSweep, runner: Runner) -> Results:
    """Train the conventional twin once and the SNN per (encoding, T); one row per model."""
    data = load_digits(seed=config.split_seed)
    for enc, T, spiking in config.models():
        trained = runner.train(f"snn {enc} T={T}" if spiking else "twin",
                               ("SNNClassifier", model_kwargs(config, enc, T, spiking)), config.fit,
                               data.x_train, data.y_train, seed=config.fit.seed)
        runner.emit({"model": "SNN" if spiking else "ReLU MLP (twin)", "encoding": enc if spiking else "-",
                     "T": T if spiking else None, "test_accuracy": accuracy(trained.model, data.x_test, data.y_test),
                     "final_loss": trained.losses[-1], "train_seconds": trained.seconds,
                     "samples_per_s": trained.samples_per_s})
    return runner.results()
