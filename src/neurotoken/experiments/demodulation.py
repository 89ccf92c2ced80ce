"""In-context symbol demodulation (review Table II, after Xpikeformer): symbol error rate of the
spiking transformer (per T) and its conventional twin vs SNR, against the least-squares detector.

Training: one model per (kind, T) on sequences drawn in equal parts at each of ``train_snrs``
(one SNR-agnostic model, like the LS detector, which never sees the SNR); each test set is one
SNR, shared by all models and the LS detector (paired comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.qam import CONSTELLATIONS, FEATURES, Demodulation, constellation, demodulation, ls_detect, ml_detect
from ..learning.bptt import FitConfig
from ..metrics import predict, symbol_error_rate
from ..mixers.attention import SCORES
from .config import each, increasing, integer, nested, one_of, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class DemodulationSweep:
    """Spiking transformer (T sweep) and softmax twin demodulate a query symbol from pilots in-context."""

    scheme: str = "qpsk"
    pilots: int = 16
    snrs_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0)
    train_snrs_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    Ts: tuple[int, ...] = (1, 2, 4, 8, 16)
    score: str = "and"
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    mlp_ratio: int = 2
    n_train: int = 12_800  # sequences, split equally over train_snrs_db
    n_test: int = 4_000    # sequences per test SNR
    fit: FitConfig = FitConfig(epochs=4, batch_size=128, lr=3e-3)  # 400 steps
    SINGLES = {"T": "Ts", "test_snr_db": "snrs_db"}  # deprecated keys of the former main-job config
    CHECKS = {"scheme": one_of(CONSTELLATIONS), "pilots": integer(), "snrs_db": increasing,
              "train_snrs_db": increasing, "Ts": each(integer(), unique=True), "score": one_of(SCORES),
              "d_model": integer(), "heads": integer(), "layers": integer(), "mlp_ratio": integer(),
              "n_train": integer(), "n_test": integer(), "fit": nested(FitConfig)}
    RELATIONS = (("heads", lambda c: c.d_model % c.heads == 0, "divide d_model ({c.d_model}), got {c.heads}"),
                 ("n_train", lambda c: c.n_train >= len(c.train_snrs_db),
                  "be >= len(train_snrs_db) ({c.train_snrs_db}), got {c.n_train}"))

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> DemodulationSweep:
        """Two SNRs, the twin and one spiking model (T=2) of one layer, 640 sequences, one epoch."""
        return cls(**{"snrs_db": (0.0, 10.0), "Ts": (2,), "d_model": 16, "layers": 1, "n_train": 640, "n_test": 200,
                      "fit": FitConfig(epochs=1, batch_size=128, lr=3e-3), **changes})

    def models(self) -> list[tuple[int, bool]]:
        """(T, spiking) of every model: the twin first, then one spiking model per T."""
        return [(self.Ts[0], False)] + [(T, True) for T in self.Ts]


def train_set(n_train: int, pilots: int, snrs_db, scheme: str = "qpsk") -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, labels) of ``n_train`` sequences drawn in equal parts at each SNR of ``snrs_db``."""
    per = n_train // len(snrs_db)
    parts = [demodulation(per, pilots, snr, scheme, seed=1 + i) for i, snr in enumerate(snrs_db)]
    return torch.cat([p.tokens for p in parts]), torch.cat([p.labels for p in parts])


def held_out(config: DemodulationSweep) -> list[Demodulation]:
    """One held-out set per SNR of ``config.snrs_db`` (fixed seeds, shared by every model)."""
    return [demodulation(config.n_test, config.pilots, snr, config.scheme, seed=1000 + i)
            for i, snr in enumerate(config.snrs_db)]


def model_kwargs(config: DemodulationSweep, T: int, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SpikingTransformer` (or its softmax twin) of ``config``."""
    return dict(in_features=FEATURES,
                d_model=config.d_model, heads=config.heads, layers=config.layers,
                classes=len(constellation(config.scheme)), mlp_ratio=config.mlp_ratio, T=T, score=config.score,
                spiking=spiking)


@recipe(DemodulationSweep)
def run_demodulation(config: DemodulationSweep, runner: Runner) -> Results:
    """Rows {"model", "T", "snr_db", "ser", "train_seconds"}: the LS detector (pilots known) and
    the ML detector given the true channel as references, then the twin and one spiking model per T."""
    tests = held_out(config)

    def emit(model: str, T, predictions, seconds: float | None = None) -> None:
        for snr, test, pred in zip(config.snrs_db, tests, predictions):
            runner.emit({"model": model, "T": T, "snr_db": snr, "ser": symbol_error_rate(pred, test.labels),
                         "train_seconds": seconds})

    emit("LS detector", None, [ls_detect(t) for t in tests])
    emit("ML, known channel", None, [ml_detect(t.received[:, -1], t.gain, t.scheme) for t in tests])
    x, y = train_set(config.n_train, config.pilots, config.train_snrs_db, config.scheme)
    for T, spiking in config.models():
        trained = runner.train(f"spiking T={T}" if spiking else "twin",
                               ("SpikingTransformer", model_kwargs(config, T, spiking)), config.fit, x, y,
                               seed=config.fit.seed)
        emit("spiking transformer" if spiking else "softmax twin", T if spiking else None,
             [predict(trained.model, t.tokens, 1000) for t in tests], trained.seconds)
    return runner.results()
