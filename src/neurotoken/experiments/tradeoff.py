"""Accuracy vs energy on digits (the review's Figure 4 / Table I) and energy vs batch size.

Each model (the ReLU twin, and the SNN per encoding and T) is trained as in
:mod:`neurotoken.experiments.digits` and post-training quantised to int8
(:func:`neurotoken.accounting.quantised_copy`); both versions are evaluated on the test set and
counted on it under every (profile, dataflow) pricing: accuracy, energy per inference, ACs, MACs,
sparsity, firing and event rates, bytes moved. int8 rows are priced bit-matched
(:func:`neurotoken.accounting.quantise_int8`); each int8 SNN row carries its break-even event rate
against the int8 twin under the same pricing (:func:`neurotoken.accounting.compare`) and the energy
of its event-scaled part, so E(r) = energy_j + (r / event_rate - 1) event_energy_j. A second sweep
counts one trained SNN and its twin at several batch sizes: weight traffic is read once per batch
(dense_state), so energy per inference falls with the batch while the wall-clock latency of a
batch grows ("More than MACs").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..accounting import DATAFLOWS, compare, count, get_profile, pareto_front, quantise_int8, quantised_copy
from ..accounting.baselines import rates
from ..accounting.energy import energy_j, unpriced
from ..data import load_digits
from ..learning.bptt import FitConfig
from ..metrics import accuracy
from ..encoding import ENCODERS
from .config import accepted, each, integer, items, nested, one_of, real, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class TradeoffSweep:
    """SNN [64 -> hidden -> 10] per (encoding, T) and its twin, fp32 and int8, priced per (profile, dataflow)."""

    Ts: tuple[int, ...] = (1, 2, 4, 8, 16)
    encodings: tuple[str, ...] = ("direct", "rate")
    hidden: tuple[int, ...] = (256,)
    pricings: tuple[tuple[str, str], ...] = (("cmos45", "dense_state"), ("cmos45", "event_driven"),
                                             ("loihi", "event_driven"))
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256)
    beta: float = 0.9
    threshold: float = 1.0
    fit: FitConfig = FitConfig(epochs=30, batch_size=64, lr=5e-3)
    split_seed: int = 0
    CHECKS = {"Ts": each(integer(), unique=True), "encodings": each(one_of(ENCODERS.names), unique=True),
              "hidden": each(integer()),
              "pricings": each(items(accepted(get_profile), one_of(DATAFLOWS)), unique=True),
              "batch_sizes": each(integer(), unique=True), "beta": real(low=0.0, high=1.0),
              "threshold": real(low=0.0, low_open=True), "fit": nested(FitConfig), "split_seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> TradeoffSweep:
        """The twin and one rate-coded SNN (T=2, 16 hidden), one epoch, two batch sizes."""
        return cls(**{"Ts": (2,), "encodings": ("rate",), "hidden": (16,), "batch_sizes": (1, 16),
                      "fit": FitConfig(epochs=1, lr=5e-3), **changes})


def _counted(model, x, batch_size, profile="cmos45", dataflow="dense_state"):
    model.eval()
    with torch.no_grad(), count(model, profile, dataflow) as c:
        for xb in x.split(batch_size):
            model(xb)
    return c


def _model(config: TradeoffSweep, encoding: str, T: int, spiking: bool) -> tuple[str, dict]:
    """The (zoo class, keyword arguments) of one SNN of ``config`` or its twin."""
    return "SNNClassifier", dict(in_features=64, hidden=list(config.hidden), classes=10, T=T, encoding=encoding,
                                 spiking=spiking, beta=config.beta, threshold=config.threshold)


def _fp32_row(c) -> dict:
    per = c.per_inference
    return {"precision": "fp32", "energy_j": c.energy_j / c.inferences, "macs": per["macs"], "acs": per["acs"],
            "sparsity": c.sparsity, "bytes": per["bytes"], **rates(c.totals), "unpriced": " ".join(c.unpriced)}


def _int8_row(c) -> dict:
    """An int8 row from the counter of a quantised model, priced bit-matched."""
    q = quantise_int8(c.per_inference, c.profile, c.weight_footprint_params)
    ops = [f"{k}_int8" for k in ("macs", "acs", "neuron_updates")]
    return {"precision": "int8", "energy_j": energy_j(q, c.profile), "macs": q["macs_int8"], "acs": q["acs_int8"],
            "sparsity": c.sparsity, "bytes": q["bytes"], **rates(c.totals),
            "unpriced": " ".join(unpriced(q, c.profile, ops))}


@recipe(TradeoffSweep)
def run_tradeoff(config: TradeoffSweep, runner: Runner) -> Results:
    """Tables "tradeoff" and "batching". Per model, precision and pricing one trade-off row, the test
    set counted in batches of ``fit.batch_size``; ``pareto`` marks the front per pricing (over fp32
    and int8, twin and SNN). The batching sweep uses the twin and the SNN of the last encoding at
    the median T."""
    data = load_digits(seed=config.split_seed)
    bs = config.fit.batch_size
    specs = [("twin", "-", None)] + [("SNN", e, T) for e in config.encodings for T in config.Ts]
    rows, twin8, trained = [], {}, {}
    for kind, enc, T in specs:
        model = runner.train("twin" if T is None else f"snn {enc} T={T}",
                             _model(config, "direct" if T is None else enc, T or 1, spiking=T is not None),
                             config.fit, data.x_train, data.y_train, seed=config.fit.seed).model
        trained[(enc, T)] = model
        quantised = quantised_copy(model, data.x_train)
        acc = {"fp32": accuracy(model, data.x_test, data.y_test), "int8": accuracy(quantised, data.x_test, data.y_test)}
        for profile, dataflow in config.pricings:
            c8 = _counted(quantised, data.x_test, bs, profile, dataflow)
            int8 = _int8_row(c8)
            if T is None:
                twin8[(profile, dataflow)] = c8, int8
            elif c8.totals["acs"] and not (int8["unpriced"] or twin8[(profile, dataflow)][1]["unpriced"]):
                r = compare(c8, twin8[(profile, dataflow)][0])
                int8.update(break_even_rate=r["break_even_rate"], event_energy_j=r["snn_int8_event_j"])
            for row in (_fp32_row(_counted(model, data.x_test, bs, profile, dataflow)), int8):
                row = {"model": kind, "encoding": enc, "T": T, "profile": profile, "dataflow": dataflow,
                       "test_accuracy": acc[row["precision"]], **row}
                rows.append(runner.emit(row, table="tradeoff"))
    for profile, dataflow in config.pricings:  # rows with unpriced ops (a twin on Loihi) have no honest energy
        mine = [r for r in rows if (r["profile"], r["dataflow"]) == (profile, dataflow) and not r["unpriced"]]
        for r, front in zip(mine, pareto_front([r["energy_j"] for r in mine], [r["test_accuracy"] for r in mine])):
            r["pareto"] = front
    for r in rows:
        r.setdefault("pareto", False)
    enc, T = config.encodings[-1], sorted(config.Ts)[len(config.Ts) // 2]
    for row in run_batching({"twin": trained[("-", None)], f"SNN {enc} T={T}": trained[(enc, T)]},
                            data.x_test, config.batch_sizes):
        runner.emit(row, table="batching")
    return runner.results()


def run_batching(models: dict, x: torch.Tensor, batch_sizes: Sequence[int], profile: str = "cmos45") -> list[dict]:
    """Energy per inference and wall-clock latency per batch for each model and batch size (dense_state)."""
    rows = []
    for name, model in models.items():
        for b in batch_sizes:
            c = _counted(model, x[:b], b, profile)
            with torch.no_grad():
                model(x[:b])  # warm-up
                start = time.perf_counter()
                model(x[:b])
                latency = time.perf_counter() - start
            rows.append({"model": name, "batch_size": b, "profile": profile,
                         "energy_j": c.energy_j / c.inferences,
                         "weight_bytes": c.per_inference["weight_bytes"], "latency_s": latency})
    return rows
