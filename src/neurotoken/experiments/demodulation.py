"""In-context symbol demodulation (review Table II, after Xpikeformer): symbol error rate of the
spiking transformer (per T) and its conventional twin vs SNR, against the least-squares detector.

Training: one model per (kind, T) on sequences drawn in equal parts at each of ``train_snrs``
(one SNR-agnostic model, like the LS detector, which never sees the SNR); each test set is one
SNR, shared by all models and the LS detector (paired comparison).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import _checks
from ..data.qam import constellation, demodulation, ls_detect, ml_detect
from ..learning.bptt import FitConfig, fit_classifier
from ..metrics import predict, symbol_error_rate
from ..models import SpikingTransformer


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

    def __post_init__(self):
        constellation(self.scheme)  # fail early on unknown schemes
        _checks.positive_int("pilots", self.pilots)
        _checks.positive_int("n_train", self.n_train, low=len(self.train_snrs_db))
        _checks.positive_int("n_test", self.n_test)
        for name in ("snrs_db", "train_snrs_db"):
            _checks.increasing(name, getattr(self, name))
        for i, T in enumerate(self.Ts):
            _checks.positive_int(f"Ts[{i}]", T)


def train_set(n_train: int, pilots: int, snrs_db, scheme: str = "qpsk") -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, labels) of ``n_train`` sequences drawn in equal parts at each SNR of ``snrs_db``."""
    per = n_train // len(snrs_db)
    parts = [demodulation(per, pilots, snr, scheme, seed=1 + i) for i, snr in enumerate(snrs_db)]
    return torch.cat([p.tokens for p in parts]), torch.cat([p.labels for p in parts])


def run_demodulation(config: DemodulationSweep = DemodulationSweep(),
                     on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Rows {"model", "T", "snr_db", "ser", "train_seconds"}: the LS detector (pilots known) and
    the ML detector given the true channel as references, then the twin and one spiking model per T."""
    tests = [demodulation(config.n_test, config.pilots, snr, config.scheme, seed=1000 + i)
             for i, snr in enumerate(config.snrs_db)]
    rows = []

    def emit(model: str, T, predictions, seconds: float | None = None) -> None:
        for snr, test, pred in zip(config.snrs_db, tests, predictions):
            row = {"model": model, "T": T, "snr_db": snr, "ser": symbol_error_rate(pred, test.labels),
                   "train_seconds": seconds}
            rows.append(row)
            if on_result is not None:
                on_result(row)

    emit("LS detector", None, [ls_detect(t) for t in tests])
    emit("ML, known channel", None, [ml_detect(t.received[:, -1], t.gain, t.scheme) for t in tests])
    x, y = train_set(config.n_train, config.pilots, config.train_snrs_db, config.scheme)
    classes = len(constellation(config.scheme))
    for T, spiking in [(None, False)] + [(T, True) for T in config.Ts]:
        torch.manual_seed(config.fit.seed)  # same init whatever ran before
        model = SpikingTransformer(x.shape[-1], config.d_model, config.heads, config.layers, classes,
                                   config.mlp_ratio, T=T or 1, score=config.score, spiking=spiking)
        start = time.perf_counter()
        fit_classifier(model, x, y, config.fit)
        emit("spiking transformer" if spiking else "softmax twin", T,
             [predict(model, t.tokens, 1000) for t in tests], time.perf_counter() - start)
    return rows
