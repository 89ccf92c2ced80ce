"""Accuracy vs energy on digits (the review's Figure 4 / Table I) and energy vs batch size.

Each model (the ReLU twin, and the SNN per encoding and T) is trained as in
:mod:`neurotoken.experiments.digits`, then counted on the whole test set under every profile:
accuracy, energy per inference, ACs, MACs, sparsity and bytes moved, with the bit-matched int8
prices and break-even rate of :func:`neurotoken.accounting.compare`. A second sweep counts one
trained SNN and its twin at several batch sizes: weight traffic is read once per batch, so energy
per inference falls with the batch while the wall-clock latency of a batch grows ("More than MACs").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import _checks
from ..accounting import compare, count
from ..data import load_digits
from ..learning.bptt import FitConfig, accuracy, fit_classifier
from ..models import SNNClassifier


@dataclass(frozen=True)
class TradeoffSweep:
    """SNN [64 -> hidden -> 10] per (encoding, T) and its twin, priced under ``profiles``."""

    Ts: tuple[int, ...] = (1, 2, 4, 8, 16)
    encodings: tuple[str, ...] = ("direct", "rate")
    hidden: tuple[int, ...] = (256,)
    profiles: tuple[str, ...] = ("cmos45", "loihi")
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256)
    beta: float = 0.9
    threshold: float = 1.0
    fit: FitConfig = FitConfig(epochs=30, batch_size=64, lr=5e-3)
    split_seed: int = 0

    def __post_init__(self):
        for name in ("Ts", "batch_sizes"):
            for i, n in enumerate(getattr(self, name)):
                _checks.positive_int(f"{name}[{i}]", n)


def pareto_front(energy: Sequence[float], acc: Sequence[float]) -> list[bool]:
    """Points no other point beats on both axes (lower energy and higher accuracy, one strictly)."""
    pts = list(zip(energy, acc))
    return [not any(e2 <= e and a2 >= a and (e2, a2) != (e, a) for e2, a2 in pts) for e, a in pts]


def _counted(model, x, profile, batch_size):
    model.eval()
    with torch.no_grad(), count(model, profile) as c:
        for xb in x.split(batch_size):
            model(xb)
    return c


def _model(config: TradeoffSweep, encoding: str, T: int, spiking: bool) -> SNNClassifier:
    return SNNClassifier(64, config.hidden, 10, T=T, encoding=encoding, spiking=spiking,
                         beta=config.beta, threshold=config.threshold)


def run_tradeoff(config: TradeoffSweep = TradeoffSweep(),
                 on_result: Callable[[dict], None] | None = None) -> tuple[list[dict], list[dict]]:
    """(trade-off rows, batching rows). One trade-off row per (model, profile), the test set counted
    in batches of ``fit.batch_size``; ``pareto`` marks the front per profile. The batching sweep
    uses the twin and the SNN of the last encoding at the median T."""
    data = load_digits(seed=config.split_seed)
    bs = config.fit.batch_size
    twin = _model(config, "direct", 1, spiking=False)
    fit_classifier(twin, data.x_train, data.y_train, config.fit)
    twin_acc = accuracy(twin, data.x_test, data.y_test)
    twins = {p: _counted(twin, data.x_test, p, bs) for p in config.profiles}
    rows, snns = [], {}
    for enc, T in [("-", None)] + [(e, T) for e in config.encodings for T in config.Ts]:
        if T is None:
            model, acc, counters = twin, twin_acc, twins
        else:
            model = _model(config, enc, T, spiking=True)
            fit_classifier(model, data.x_train, data.y_train, config.fit)
            acc = accuracy(model, data.x_test, data.y_test)
            counters = {p: _counted(model, data.x_test, p, bs) for p in config.profiles}
            snns[(enc, T)] = model
        for p, c in counters.items():
            per = c.per_inference
            row = {"model": "twin" if T is None else "SNN", "encoding": enc, "T": T, "profile": p,
                   "test_accuracy": acc, "energy_j": c.energy_j / c.inferences,
                   "macs": per["macs"], "acs": per["acs"], "sparsity": c.sparsity, "bytes": per["bytes"],
                   "unpriced": " ".join(c.unpriced)}
            if T is not None and p == "cmos45":
                row.update({k: v for k, v in compare(c, twins[p]).items() if k not in ("snn_j", "twin_j")})
            rows.append(row)
            if on_result is not None:
                on_result(row)
    for p in config.profiles:  # rows with unpriced ops (a twin on Loihi) have no honest energy
        for r in rows:
            r.setdefault("pareto", False)
        mine = [r for r in rows if r["profile"] == p and not r["unpriced"]]
        for r, front in zip(mine, pareto_front([r["energy_j"] for r in mine], [r["test_accuracy"] for r in mine])):
            r["pareto"] = front
    enc, T = config.encodings[-1], sorted(config.Ts)[len(config.Ts) // 2]
    return rows, run_batching({"twin": twin, f"SNN {enc} T={T}": snns[(enc, T)]}, data.x_test, config.batch_sizes)


def run_batching(models: dict, x: torch.Tensor, batch_sizes: Sequence[int], profile: str = "cmos45") -> list[dict]:
    """Energy per inference and wall-clock latency per batch for each model and batch size."""
    rows = []
    for name, model in models.items():
        for b in batch_sizes:
            c = _counted(model, x[:b], profile, b)
            with torch.no_grad():
                model(x[:b])  # warm-up
                start = time.perf_counter()
                model(x[:b])
                latency = time.perf_counter() - start
            rows.append({"model": name, "batch_size": b, "profile": profile,
                         "energy_j": c.energy_j / c.inferences,
                         "weight_bytes": c.per_inference["weight_bytes"], "latency_s": latency})
    return rows
