import math

from neurotoken.experiments.tradeoff import TradeoffSweep, pareto_front, run_tradeoff
from neurotoken.learning.bptt import FitConfig


def test_pareto_front_keeps_points_nobody_beats():
    energy = [1.0, 2.0, 3.0, 2.0, 0.5]
    acc = [0.5, 0.9, 0.8, 0.7, 0.4]
    assert pareto_front(energy, acc) == [True, True, False, False, True]


def test_short_tradeoff_run_prices_every_model_and_batch():
    config = TradeoffSweep(Ts=(2,), encodings=("rate",), hidden=(16,), batch_sizes=(1, 8),
                           fit=FitConfig(epochs=1, lr=5e-3))
    rows, batching = run_tradeoff(config)
    assert [(r["model"], r["profile"]) for r in rows] == [
        ("twin", "cmos45"), ("twin", "loihi"), ("SNN", "cmos45"), ("SNN", "loihi")]
    twin_loihi = rows[1]
    assert twin_loihi["unpriced"] == "macs" and not twin_loihi["pareto"]  # Loihi has no MACs
    snn = rows[2]
    assert snn["acs"] > 0 and 0 < snn["sparsity"] < 1 and math.isfinite(snn["break_even_rate"])
    per_model = {}
    for r in batching:
        per_model.setdefault(r["model"], []).append(r["energy_j"])
    assert all(e[1] < e[0] for e in per_model.values())  # a batch of 8 shares the weight reads
