import math

import pytest
import torch

from neurotoken import accounting
from neurotoken.accounting import MemoryLevel, Profile, break_even_rate, energy_j, quantise_int8
from neurotoken.models import SNNClassifier

PJ = 1e-12
TOY = Profile("toy", {"acs_int8": 1.0, "macs_int8": 3.0}, (MemoryLevel("mem", math.inf, 0.1),), "mem")


def test_quantise_int8_moves_one_byte_per_value_and_renames_ops():
    counts = {"macs": 10, "acs": 4, "neuron_updates": 2, "weight_params": 8, "weight_bytes": 32,
              "act_values": 5, "act_bytes": 20, "state_bytes": 16, "spike_bytes": 3, "bytes": 71}
    q = quantise_int8(counts, TOY, weight_footprint_params=8)
    assert (q["macs_int8"], q["acs_int8"], q["neuron_updates_int8"]) == (10, 4, 2) and "macs" not in q
    assert (q["weight_bytes"], q["act_bytes"], q["state_bytes"], q["spike_bytes"]) == (8, 5, 16, 3)
    assert q["bytes"] == q["bytes_mem"] == 32
    assert energy_j(q, TOY) == pytest.approx((10 * 3.0 + 4 * 1.0 + 32 * 0.1) * PJ)


def test_break_even_rate_by_hand():
    # E_snn(r) = 20 B x 0.1 pJ (fixed) + r x 100 x 1 pJ; twin 5 pJ  ->  r* = (5 - 2) / 100
    snn = {"acs_int8": 10, "ac_capacity": 100, "state_bytes": 20, "bytes_mem": 20}
    events = {"acs_int8": 10}
    assert break_even_rate(snn, events, 5 * PJ, TOY) == pytest.approx(0.03)
    assert break_even_rate(snn, events, 1 * PJ, TOY) < 0  # fixed costs alone exceed the twin


def test_break_even_rate_with_event_driven_memory_by_hand():
    # 10 events each read-modify-write 8 B: 10 x (1 pJ + 8 B x 0.1 pJ) = 18 pJ scale with r; 2 pJ fixed.
    # E_snn(r) = 2 pJ + r x 100 x 1.8 pJ = 5 pJ  ->  r* = 3 / 180
    snn = {"acs_int8": 10, "ac_capacity": 100, "state_bytes": 100, "bytes_mem": 100}
    events = {"acs_int8": 10, "state_bytes": 80, "bytes_mem": 80}
    assert break_even_rate(snn, events, 5 * PJ, TOY) == pytest.approx(3 / 180)


def test_break_even_rate_needs_ac_capacity_events_and_a_priced_ac():
    with pytest.raises(ValueError, match="AC capacity"):
        break_even_rate({"acs_int8": 0}, {}, 1.0, TOY)
    with pytest.raises(ValueError, match="no synaptic event"):
        break_even_rate({"acs_int8": 0, "ac_capacity": 4}, {"acs_int8": 0}, 1.0, TOY)
    with pytest.raises(ValueError, match="does not price 'acs'"):
        break_even_rate({"acs": 1, "ac_capacity": 2}, {"acs": 1}, 1.0, Profile("p", {}, TOY.levels, "mem"))


@pytest.mark.parametrize("dataflow", accounting.DATAFLOWS)
def test_compare_snn_with_int8_twin_is_consistent(dataflow):
    torch.manual_seed(0)
    x = torch.rand(8, 16)
    snn, twin = SNNClassifier(16, (12,), 3, T=4, encoding="rate"), SNNClassifier(16, (12,), 3, spiking=False)
    with accounting.count(snn, dataflow=dataflow) as cs:
        snn(x)
    with accounting.count(twin, dataflow=dataflow) as ct:
        twin(x)
    r = accounting.compare(cs, ct)
    assert r["twin_int8_j"] < r["twin_j"] and r["snn_int8_j"] < r["snn_j"]
    assert r["event_rate"] == pytest.approx(cs.totals["acs"] / cs.totals["ac_capacity"])
    p, n = cs.profile, cs.inferences
    s8 = quantise_int8(cs.per_inference, p, cs.weight_footprint_params)
    ev8 = quantise_int8({k: v / n for k, v in cs.event_totals.items()}, p, cs.weight_footprint_params)
    # at r = r* the linear SNN energy model meets the twin
    per_rate = energy_j(ev8, p) / r["event_rate"]
    at_rate = energy_j(s8, p) + (r["break_even_rate"] - r["event_rate"]) * per_rate
    assert at_rate == pytest.approx(r["twin_int8_j"])


def test_event_driven_events_cost_more_than_their_acs():
    snn = SNNClassifier(16, (12,), 3, T=4, encoding="rate")
    with accounting.count(snn, dataflow="event_driven") as c:
        snn(torch.rand(8, 16))
    ev = c.event_totals
    assert ev["weight_params"] == ev["acs"] and ev["state_bytes"] == 2 * 4 * ev["acs"]
    assert energy_j(ev, c.profile) > ev["acs"] * c.profile.ops_pj["acs"] * PJ


def test_compare_rejects_mixed_dataflows():
    net = SNNClassifier(4, (3,), 2, T=2, encoding="rate")
    counters = [accounting.count(net, dataflow=d) for d in accounting.DATAFLOWS]
    for c in counters:
        with c:
            net(torch.rand(2, 4))
    with pytest.raises(ValueError, match="one dataflow"):
        accounting.compare(*counters)
