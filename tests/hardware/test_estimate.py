"""Estimates against hand computation: energy = counts x figures, routing, latency, conversions,
on-chip learning, attention events versus L, per inference or per token."""

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import neurotoken as nt
from neurotoken import hardware as hw
from neurotoken.hardware.analog import AnalogConfig, analog
from neurotoken.hardware.estimate import conversions
from neurotoken.hardware.mapping import Layer

PJ = 1e-12


T = 3


class Steps(nn.Module):
    """x [B, D] presented for T steps to a stack of Linear + LIF layers ([T, B, D] inside)."""

    def __init__(self, sizes):
        super().__init__()
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            linear = nn.Linear(a, b, bias=False)
            nn.init.uniform_(linear.weight, 0.2, 0.8)  # positive: the neurons fire
            layers += [linear, nt.LIF()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.expand(T, *x.shape))


def _snn(sizes):
    torch.manual_seed(0)
    return Steps(sizes)


def _spikes(*shape, seed=1):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def _run(model, x):
    """Spikes of the first LIF layer."""
    with torch.no_grad():
        return model.net[:2](x.expand(T, *x.shape))


def test_energy_is_counts_times_figures(tiny):
    chip, model, x = tiny(), _snn([4, 8]), _spikes(2, 4)
    e = hw.estimate(model, chip, x)
    s = _run(model, x)
    batch = 2
    acs, updates, spikes = T * int(x.count_nonzero()) * 8, s.numel(), int(s.count_nonzero())
    assert e.per == "inference"
    assert e.counts["synops"] == acs / batch and e.counts["neuron_updates"] == updates / batch
    assert e.counts["spikes"] == spikes / batch and e.counts["spike_hops"] == 0
    b = e.energy_breakdown_j
    assert b["op:acs"] == pytest.approx(acs * 10 * PJ / batch)
    assert b["op:neuron_updates"] == pytest.approx(updates * 20 * PJ / batch)
    assert b["op:spikes"] == pytest.approx(spikes * 1 * PJ / batch)
    assert e.energy_j_per_inference == pytest.approx(sum(b.values())) == pytest.approx(e.energy_j)


def test_spikes_between_cores_pay_their_hops(tiny):
    # cores: Linear 4x8 (32 B) -> 0, LIF 8 -> 1, Linear 8x2 (16 B) and LIF 2 -> 2; core 1 is (1, 0), core 2 (0, 1)
    chip, model, x = tiny(), _snn([4, 8, 2]), _spikes(2, 4)
    e = hw.estimate(model, chip, x)
    assert [p.cores for p in e.mapping.layers.values()] == [(0,), (1,), (2,), (2,)]
    spikes = int(_run(model, x).count_nonzero())
    assert e.counts["spike_hops"] == pytest.approx(2 * spikes / 2)  # one east-west + one north-south hop each
    assert e.energy_breakdown_j["routing"] == pytest.approx(spikes * (3.0 + 4.0) * PJ / 2)


def test_latency_is_slowest_core_plus_routing_per_step(tiny):
    chip, model, x = tiny(), _snn([4, 8]), _spikes(2, 4)
    e = hw.estimate(model, chip, x)
    acs, updates = T * int(x.count_nonzero()) * 8, T * 2 * 8
    slowest = max(acs * 1.0, updates * 2.0) / 2  # core 0 runs the ACs, core 1 the neuron updates
    assert e.latency_s == pytest.approx((slowest + T * 0.5) * 1e-9)  # + T steps x spike latency
    assert hw.estimate(model, "digital_accelerator", x).untimed  # no published timings: said, not invented


def _analog(tiny, **analog):
    return tiny(kind="analog", analog={"tile_rows": 4, "tile_cols": 4, "dac_bits": 8, "adc_bits": 8,
                                       "source": "test", **analog}, cores={"count": 16}, mesh={"x": 4, "y": 4})


@pytest.mark.parametrize(("x", "dac", "bits"), [
    (torch.ones(6, 10), 0, 0),  # binary spikes drive rows without a DAC
    (torch.rand(6, 10), 6 * 10 * 2, 6 * 10 * 2 * 8),  # real inputs: every row of both column tiles, dac_bits each
    (torch.randint(-1, 2, (6, 10)).float(), 6 * 10 * 2, 6 * 10 * 2 * 2),  # ternary spikes: 3 levels, 2 bits
])
def test_adc_and_dac_conversions_of_a_tiled_layer(tiny, x, dac, bits):
    chip, linear = _analog(tiny), nn.Linear(10, 6)
    layer = Layer("l", linear, "synaptic", rows=10, cols=6, calls=[((x,), linear(x))])
    # 6 input vectors x ceil(10 / 4) = 3 row tiles x 6 columns
    assert conversions(layer, chip) == {"adc_conversions": 6 * 3 * 6, "dac_conversions": dac, "dac_bits": bits}


def test_analog_estimate_prices_conversions_and_whole_crossbars(tiny):
    chip = _analog(tiny, adc_pj=2.0, dac_pj=1.0)
    linear = nn.Linear(10, 6)
    e = hw.estimate(linear, chip, torch.rand(6, 10))
    assert e.counts["adc_conversions"] == 3 * 6 and e.counts["dac_conversions"] == 10 * 2  # per inference
    assert e.energy_breakdown_j["adc"] == pytest.approx(18 * 2.0 * PJ)
    assert e.energy_breakdown_j["dac"] == pytest.approx(20 * 1.0 * PJ)
    spikes = hw.estimate(linear, chip, torch.ones(6, 10))
    assert spikes.counts["dac_conversions"] == 0
    assert spikes.energy_breakdown_j["op:macs"] == pytest.approx(60 * 50 * PJ)  # the crossbar computes all 60


def test_an_analog_copy_brings_its_own_conversion_counts(tiny):
    chip = _analog(tiny)
    model = analog(nn.Sequential(nn.Linear(10, 6)), AnalogConfig.from_chip(chip))
    e = hw.estimate(model, chip, torch.rand(6, 10))
    assert e.counts["adc_conversions"] == 3 * 6 and e.counts["dac_conversions"] == 10 * 2


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 11), cols=st.integers(1, 11), vectors=st.integers(1, 5), binary=st.booleans())
def test_a_digital_layer_and_its_analog_copy_count_the_same_conversions(tiny, rows, cols, vectors, binary):
    chip = tiny(kind="analog", analog={"tile_rows": 4, "tile_cols": 3, "dac_bits": 8, "adc_bits": 8, "source": "test"},
                cores={"count": 64}, mesh={"x": 8, "y": 8})
    torch.manual_seed(rows * 100 + cols)
    linear = nn.Linear(rows, cols)
    x = (torch.rand(vectors, rows) > 0.5).float() if binary else torch.rand(vectors, rows) + 0.1
    digital = hw.estimate(linear, chip, x).counts
    copy = hw.estimate(analog(nn.Sequential(linear), AnalogConfig.from_chip(chip)), chip, x).counts
    keys = ("adc_conversions", "dac_conversions", "dac_bits")
    assert {k: digital[k] for k in keys} == {k: copy[k] for k in keys}
    # per inference: rows x column tiles DAC conversions (none for binary spikes), row tiles x columns ADC
    assert digital["dac_conversions"] == (0 if binary else rows * -(-cols // 3))
    assert digital["adc_conversions"] == -(-rows // 4) * cols


def test_stdp_and_three_factor_updates_are_priced(tiny):
    chip, model, x = tiny(), _snn([4, 8]), _spikes(2, 4)
    s = _run(model, x)
    stdp = hw.estimate(model, chip, x, learning="stdp")
    # a post spike potentiates its row of 4 weights, a pre spike depresses its column of 8
    updates = int(s.count_nonzero()) * 4 + T * int(x.count_nonzero()) * 8
    assert stdp.counts["weight_updates"] == updates / 2
    assert stdp.energy_breakdown_j["weight_updates"] == pytest.approx(updates * 100 * PJ / 2)
    three = hw.estimate(model, chip, x, learning="three_factor")
    assert three.counts["weight_updates"] == s.numel() * 4 / 2  # every synapse of every neuron, each step
    assert hw.estimate(model, chip, x).counts["weight_updates"] == 0


@pytest.mark.parametrize("chip", ["analog_pcm", "digital_accelerator"])
def test_learning_refused_on_chips_that_do_not_learn(chip):
    with pytest.raises(ValueError, match="does not learn on chip"):
        hw.estimate(_snn([4, 8]), chip, _spikes(2, 4), learning="stdp")


def test_learning_rule_names_are_checked():
    with pytest.raises(ValueError, match="learning must be one of"):
        hw.estimate(_snn([4, 8]), "loihi", _spikes(2, 4), learning="hebb")


def _attention(mask, L):
    torch.manual_seed(0)
    model = nt.models.SpikingTransformer(5, 8, 2, 1, 3, T=2, mask=mask)
    return hw.estimate(model, "loihi", torch.randn(2, L, 5))


def test_attended_pairs_are_routed_events_dense_quadratic_local_linear():
    dense8, dense16 = _attention("full", 8), _attention("full", 16)
    local8, local16 = (_attention(nt.mixers.sparse.local(L, 3), L) for L in (8, 16))
    assert dense8.counts["active_pairs"] == 2 * 8 * 8 and dense16.counts["active_pairs"] == 2 * 16 * 16
    assert local8.counts["active_pairs"] == 2 * (1 + 2 + 3 * 6)  # causal window 3: 1, 2, then 3 keys
    assert local16.counts["active_pairs"] == 2 * (1 + 2 + 3 * 14)
    ops = nt.hardware.load_chip("loihi").profile.ops_pj
    for e in (dense8, dense16, local8, local16):  # a spike message and a synaptic op per attended pair
        assert e.energy_breakdown_j["attention_events"] == pytest.approx(
            e.counts["active_pairs"] * (ops["spikes"] + ops["acs"]) * PJ)
        assert e.kv_cache == "core" and e.kv_cache_bytes > 0


def test_kv_cache_that_does_not_fit_lives_in_dram(tiny):
    chip = tiny(cores={"count": 1, "neurons": 10_000, "synapse_bytes": 100_000}, mesh={"x": 1, "y": 1})
    model = nt.models.SpikingTransformer(5, 8, 2, 1, 3, T=2)
    assert hw.estimate(model, chip, torch.randn(1, 4, 5)).kv_cache == "core"
    small = tiny(cores={"count": 1, "neurons": 10_000, "synapse_bytes": 1500}, mesh={"x": 1, "y": 1})
    e = hw.estimate(model, small, torch.randn(1, 64, 5))
    assert e.kv_cache == "dram" and not e.mapping.fits
    assert "dram_bytes" in e.unpriced and e.counts["dram_bytes"] > 0


def test_language_models_are_estimated_per_token():
    torch.manual_seed(0)
    e = hw.estimate(nt.models.SpikingLM(16, 8, 1), "loihi", torch.randint(0, 16, (2, 5)))
    assert e.per == "token"
    assert e.energy_j == pytest.approx(e.energy_j_per_token) == pytest.approx(e.energy_j_per_inference / 5)
    clf = hw.estimate(nt.models.SpikingSSMClassifier(3, 8, 4, 1, 3), "loihi", torch.randn(2, 5, 3))
    assert clf.per == "inference" and clf.energy_j == pytest.approx(clf.energy_j_per_inference)


def test_digital_accelerator_agrees_with_the_cmos45_accounting():
    model, x = nt.models.SNNClassifier(12, (16,), 3, T=2), torch.rand(4, 12)
    e = hw.estimate(model, "digital_accelerator", x)
    with nt.accounting.count(model, "cmos45") as c:
        model(x)
    priced = sum(v for k, v in e.energy_breakdown_j.items() if k.startswith(("op:", "memory:")))
    assert priced == pytest.approx(c.energy_j_per_inference)
    assert e.counts["dram_bytes"] == c.totals["bytes_dram"] / 4


MODELS = [
    (lambda: nt.models.SNNClassifier(12, (16,), 3, T=2), lambda: torch.rand(2, 12)),
    (lambda: nt.models.SpikingSSMClassifier(3, 8, 4, 1, 3), lambda: torch.randn(2, 5, 3)),
    (lambda: nt.models.SpikingTransformer(5, 8, 2, 1, 3, T=2), lambda: torch.randn(2, 5, 5)),
    (lambda: nt.models.SpikingLM(16, 8, 1), lambda: torch.randint(0, 16, (2, 5))),
    (lambda: nt.models.SpikingLM(16, 8, 1, backbone="pspikessm"), lambda: torch.randint(0, 16, (2, 5))),
]


@pytest.mark.parametrize("chip", ["loihi", "analog_pcm", "digital_accelerator"])
@pytest.mark.parametrize(("build", "sample"), MODELS)
def test_every_model_maps_and_is_estimated_on_every_chip(build, sample, chip):
    torch.manual_seed(0)
    model, x = build(), sample()
    m = hw.map(model, chip, x)
    assert m.fits and m.cores >= 1 and m.spill_bytes == 0
    weights = {name for name, mod in model.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))}
    assert weights <= set(m.layers)  # every synaptic layer that ran is placed
    assert sum(p.synapses for p in m.layers.values() if p.kind == "synaptic") == sum(
        mod.weight.numel() for mod in model.modules() if isinstance(mod, (nn.Linear, nn.Conv2d)))
    e = hw.estimate(model, chip, x)
    assert e.mapping.cores == m.cores and e.energy_j > 0 and all(v >= 0 for v in e.energy_breakdown_j.values())
    for key in ("synops", "neuron_updates", "spikes", "spike_hops", "dram_bytes", "sram_bytes",
                "adc_conversions", "dac_conversions", "weight_updates"):
        assert e.counts[key] >= 0
    assert (e.counts["adc_conversions"] > 0) == (chip == "analog_pcm")
    summary = json.loads(json.dumps(e.to_dict()))
    assert summary["energy_j"] == pytest.approx(e.energy_j) and summary["fits"] and summary["chip"] == chip
