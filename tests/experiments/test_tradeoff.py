import math

from neurotoken.experiments.tradeoff import TradeoffSweep, run_tradeoff
from neurotoken.learning.bptt import FitConfig


def test_short_tradeoff_run_prices_every_model_precision_and_batch():
    config = TradeoffSweep(Ts=(2,), encodings=("rate",), hidden=(16,), batch_sizes=(1, 8),
                           fit=FitConfig(epochs=1, lr=5e-3))
    results = run_tradeoff(config)
    rows, batching = results.tables["tradeoff"], results.tables["batching"]
    keys = [(r["model"], r["precision"], r["profile"], r["dataflow"]) for r in rows]
    assert keys[:6] == [("twin", p, *pricing) for pricing in config.pricings for p in ("fp32", "int8")]
    assert len(keys) == 12 and keys[6] == ("SNN", "fp32", "cmos45", "dense_state")
    twin_loihi = [r for r in rows if r["model"] == "twin" and r["profile"] == "loihi"]
    assert [r["unpriced"] for r in twin_loihi] == ["macs", "macs_int8"] and not any(r["pareto"] for r in twin_loihi)
    snn8 = [r for r in rows if r["model"] == "SNN" and r["precision"] == "int8"]
    assert all(0 < r["test_accuracy"] <= 1 and r["acs"] > 0 and 0 < r["event_rate"] < 1 for r in snn8)
    cmos = [r for r in snn8 if r["profile"] == "cmos45"]
    assert all(math.isfinite(r["break_even_rate"]) and r["event_energy_j"] > 0 for r in cmos)
    assert "break_even_rate" not in next(r for r in snn8 if r["profile"] == "loihi")  # the twin is unpriced there
    dense, event = cmos  # per-event weight reads and membrane updates cost more than the ACs alone
    assert event["event_energy_j"] > dense["event_energy_j"]
    assert any(r["pareto"] for r in rows if r["profile"] == "cmos45" and r["dataflow"] == "dense_state")
    per_model = {}
    for r in batching:
        per_model.setdefault(r["model"], []).append(r["energy_j"])
    assert all(e[1] < e[0] for e in per_model.values())  # a batch of 8 shares the weight reads
