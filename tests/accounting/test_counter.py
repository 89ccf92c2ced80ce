import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurotoken as nt
from neurotoken import accounting
from neurotoken.layers import SpikingLinear
from neurotoken.models import SNNClassifier
from neurotoken.neurons import LIF, ResonateFire


def counted(model, *args, profile="cmos45", dataflow="dense_state"):
    with accounting.count(model, profile, dataflow) as c:
        model(*args)
    return c


def all_hooks(model):
    return [h for m in model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]


def test_linear_real_input_counts_dense_macs():
    lin = nn.Linear(3, 2)
    row = counted(lin, torch.full((4, 3), 0.5)).layers["Linear"]
    assert (row["macs"], row["acs"], row["dense_ops"]) == (24, 0, 24)  # 4 rows x 3 in x 2 out
    assert (row["weight_params"], row["weight_bytes"]) == (8, 32)  # W 3x2 + b 2, fp32
    assert (row["act_values"], row["act_bytes"], row["spike_bytes"]) == (12 + 8, 80, 0)


@pytest.mark.parametrize("x, acs, payload, spike_bytes", [
    ([[1., 0., 1.], [0., 0., 0.], [0., 1., 0.]], 3 * 2, 3 * 2, 2),  # binary: 9 values x 1 bit -> 2 bytes
    ([[1., -1., 0.]], 2 * 2, 2 * 2, 1),  # ternary: 2 bits per value
    ([[3., 0., 1.]], 2 * 2, 4 * 2, 1),  # multi-level: a payload k is one AC (k ACs in ac_payload)
])
def test_linear_discrete_input_counts_acs_as_nonzeros_times_fan_out(x, acs, payload, spike_bytes):
    x = torch.tensor(x)
    row = counted(nn.Linear(3, 2), x).layers["Linear"]
    assert (row["acs"], row["ac_payload"], row["macs"]) == (acs, payload, 0)
    assert row["ac_capacity"] == row["dense_ops"] == x.numel() * 2
    assert row["spike_bytes"] == spike_bytes


def test_wide_integers_are_real_activations():
    row = counted(nn.Linear(3, 2), torch.tensor([[16., 0., 1.]])).layers["Linear"]
    assert (row["macs"], row["acs"]) == (6, 0)


def test_conv2d_fan_out_at_borders():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = 1.0  # a corner feeds 4 outputs, the centre 9 (per out channel)
    row = counted(conv, x).layers["Conv2d"]
    assert row["acs"] == (4 + 9) * 2
    assert row["ac_capacity"] == (4 * 4 + 4 * 6 + 9) * 2  # corners 4, edges 6, centre 9
    assert row["dense_ops"] == 2 * 3 * 3 * 9  # output elements x taps, padding included


def test_conv2d_stride_leaves_trailing_row_without_fan_out():
    conv = nn.Conv2d(1, 1, 2, stride=2)  # 3x3 input -> 1x1 output; row 2 and column 2 unused
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 2, :] = 1.0
    x[0, 0, 0, 0] = 1.0
    assert counted(conv, x).layers["Conv2d"]["acs"] == 1


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 1), (2, 2, 2, 2), (3, 1, 1, 2)])
def test_conv2d_acs_equal_event_count_of_unit_conv(stride, padding, dilation, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride, padding, dilation, groups)
    x = (torch.rand(2, 4, 11, 7) < 0.3).float()
    ones = torch.ones_like(conv.weight)
    expected = F.conv2d(x, ones, None, stride, padding, dilation, groups).sum()  # taps that saw a spike
    assert counted(conv, x).layers["Conv2d"]["acs"] == int(expected)


def test_lif_binary_counts_spikes_updates_and_state():
    lif = LIF(beta=0.5, threshold=1.0)
    x = torch.tensor([[[1.0, 0.0]]]).expand(3, 1, 2)  # neuron 0 fires at t=0 and t=2 (h = 1, 0.5, 1.25)
    c = counted(lif, x)
    row = c.layers["LIF"]
    assert (row["spikes"], row["neuron_updates"]) == (2, 6)
    assert c.sparsity == pytest.approx(4 / 6)
    assert row["state_bytes"] == 2 * 6 * 4  # read + write an fp32 state per neuron per step
    assert (row["spike_bytes"], row["act_bytes"]) == (1, 6 * 4)


def test_lif_ternary_counts_negative_spikes_at_two_bits():
    lif = LIF(beta=0.5, threshold=1.0, spike="ternary")
    x = torch.tensor([[[1.0, -1.0]], [[0.0, 0.0]], [[0.0, 0.0]]])  # s = (+1, -1) at t=0, then silent
    row = counted(lif, x).layers["LIF"]
    assert (row["spikes"], row["spike_bytes"]) == (2, 2)  # 6 values x 2 bits


def test_lif_multilevel_counts_a_payload_spike_once():
    lif = LIF(beta=0.5, threshold=1.0, spike="multilevel")  # 4 levels, 2 bits
    x = torch.tensor([[[2.5]], [[0.0]], [[0.0]]])  # s = 2, then h = 1.25 - 2 < 0
    c = counted(lif, x)
    row = c.layers["LIF"]
    assert (row["spikes"], row["neuron_updates"], row["spike_bytes"]) == (1, 3, 1)


def test_resonate_fire_state_is_complex():
    row = counted(ResonateFire(), torch.zeros(4, 1, 3)).layers["ResonateFire"]
    assert row["state_bytes"] == 2 * 12 * 8  # complex64


class Mixer(nn.Module):
    """A toy mixer following the protocol: its own ops, a child Linear counted on its own."""

    def __init__(self, value=7):
        super().__init__()
        self.proj = nn.Linear(2, 2, bias=False)
        self.value = value

    def forward(self, x):
        return self.proj(x).cumsum(1)

    def accounting(self, inputs, output):
        B, L, D = inputs[0].shape
        return {"state_updates": B * L * D, "bit_ops": self.value, "state_bytes": 2 * B * L * D * 4}


def test_mixer_protocol_merges_counts_into_its_row():
    c = counted(Mixer(), torch.full((2, 5, 2), 0.5))
    assert c.layers["Mixer"]["state_updates"] == 20 and c.layers["Mixer"]["bit_ops"] == 7
    assert c.layers["Mixer"]["bytes"] == 160
    assert c.layers["proj"]["macs"] == 2 * 5 * 2 * 2
    assert c.totals["state_updates"] == 20 and c.totals["macs"] == 40
    assert c.unpriced == ["bit_ops"]  # cmos45 prices state updates, not bit operations
    assert (c.inferences, c.tokens) == (2, 10)  # [B, L, D] input: B*L tokens


def test_mixer_protocol_rejects_non_int_counts():
    with pytest.raises(TypeError, match="'bit_ops'"):
        counted(Mixer(value=1.5), torch.ones(1, 2, 2))


def test_hooks_removed_after_block_and_after_exception():
    model = SNNClassifier(4, (3,), 2, T=2)
    with accounting.count(model):
        assert all_hooks(model)
        model(torch.rand(2, 4))
    assert all_hooks(model) == []
    with pytest.raises(RuntimeError, match="boom"):
        with accounting.count(model):
            raise RuntimeError("boom")
    assert all_hooks(model) == []


def test_unused_counter_adds_nothing():
    model = SNNClassifier(4, (3,), 2, T=2)
    x = torch.rand(3, 4)
    before = model(x)
    c = accounting.count(model)
    assert all_hooks(model) == []
    assert torch.equal(model(x), before) and c.totals["acs"] == 0 and c.inferences == 0


def test_per_inference_amortises_weights_over_the_batch():
    model = SNNClassifier(4, (3,), 2, T=2, encoding="rate")
    c = counted(model, torch.rand(5, 4))
    assert (c.inferences, c.tokens) == (5, 5)
    assert c.totals["weight_bytes"] == c.weight_footprint_bytes == (4 * 3 + 3 + 3 * 2 + 2) * 4
    assert c.per_inference["weight_bytes"] == pytest.approx(c.weight_footprint_bytes / 5)
    assert c.totals["acs"] == sum(r["acs"] for r in c.layers.values())


def test_weights_placed_by_footprint_state_in_local_level():
    small = counted(nn.Linear(3, 2), torch.rand(1, 3)).totals
    assert small["bytes_sram_8k"] == small["weight_bytes"] and small["bytes_dram"] == 0
    big = counted(nn.Linear(600, 600), torch.rand(1, 600)).totals  # 1.4 MB of weights
    assert big["bytes_dram"] == big["weight_bytes"]
    assert big["bytes_sram_32k"] == big["act_bytes"]


def test_to_dict_is_json_and_report_renders(capsys):
    c = counted(SNNClassifier(4, (3,), 2, T=2, encoding="rate"), torch.rand(2, 4))
    d = json.loads(json.dumps(c.to_dict()))
    assert d["totals"]["acs"] == c.totals["acs"] and set(d["layers"]) == set(c.layers)
    assert d["energy_j_per_inference"] == pytest.approx(c.energy_j / 2)
    text = c.report()
    assert capsys.readouterr().out == ""  # returned, not printed
    assert isinstance(text, str) and "total" in text


def test_energy_is_the_batch_total_with_per_inference_and_per_token_views():
    model = nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1)
    c = counted(model, torch.randn(3, 5, 2))
    assert (c.inferences, c.tokens) == (3, 15)
    assert c.energy_j_per_inference == pytest.approx(c.energy_j / 3)
    assert c.energy_j_per_token == pytest.approx(c.energy_j / 15)
    with pytest.raises(ValueError, match="no inferences observed"):
        accounting.count(model).energy_j_per_inference


def test_report_shows_every_figure_whole_with_its_unit():
    model = nn.Linear(600, 600)
    c = counted(model, torch.rand(7, 600))
    text = c.report()
    macs = f"{c.totals['macs'] / 7:,.0f}"  # 360,000 per inference: wider than a narrow column
    energy = f"{c.energy_j / 7 * 1e9:,.3f}"
    assert macs in text and energy in text and "…" not in text
    for unit in ("MACs", "ACs", "spikes", "bytes", "energy (nJ)", "/ inference", "fraction"):
        assert unit in text
    assert f"{c.energy_j:.4g} J" in text  # the batch total, with its unit
    assert "\x1b" not in text  # plain text: print() and rich.print show it as is


def test_counter_rejects_non_module_and_reentry():
    with pytest.raises(TypeError, match="model"):
        accounting.count("not a model")
    c = accounting.count(nn.Linear(1, 1))
    with c, pytest.raises(RuntimeError, match="already active"):
        c.__enter__()


def test_event_driven_real_input_reads_a_weight_and_an_input_per_mac():
    row = counted(nn.Linear(3, 2), torch.full((4, 3), 0.5), dataflow="event_driven").layers["Linear"]
    assert row["macs"] == 24
    assert (row["weight_params"], row["weight_bytes"]) == (24 + 8, 32 * 4)  # per MAC + a bias per output
    assert (row["act_values"], row["act_bytes"]) == (24 + 8, 32 * 4)  # an input per MAC + outputs written once
    assert row["state_bytes"] == 0


def test_event_driven_spikes_read_a_weight_and_update_an_accumulator_per_event():
    x = torch.tensor([[1., 0., 1.], [0., 0., 0.], [0., 1., 0.]])
    c = counted(nn.Linear(3, 2), x, dataflow="event_driven")
    row = c.layers["Linear"]
    assert row["acs"] == 6
    assert (row["weight_params"], row["weight_bytes"]) == (6 + 6, 12 * 4)  # per event + a bias per output
    assert row["state_bytes"] == 2 * 6 * 4  # read-modify-write of the target per event
    assert (row["spike_bytes"], row["act_bytes"]) == (2, 0)  # input map read once, output never written
    assert {k: v for k, v in c.event_totals.items() if v and not k.startswith("bytes")} == {
        "acs": 6, "weight_params": 6, "weight_bytes": 24, "state_bytes": 48}


def test_event_driven_lif_finds_its_input_in_the_membrane():
    layer = SpikingLinear(2, 3, beta=0.5)
    x = torch.tensor([[[1., 0.]], [[0., 0.]]])  # [T=2, B=1, 2]: one event of fan-out 3
    c = counted(layer, x, dataflow="event_driven")
    lif = c.layers["neuron"]
    assert lif["act_bytes"] == 0 and lif["state_bytes"] == 2 * 6 * 4  # leak pass, no read of the current
    assert c.layers["linear"]["state_bytes"] == 2 * 3 * 4
    dense = counted(layer, torch.rand(2, 1, 2), dataflow="event_driven").layers["neuron"]  # real input current
    assert dense["act_bytes"] == 6 * 4


def test_dense_state_events_are_only_the_acs():
    x = torch.tensor([[1., 0., 1.]])
    c = counted(nn.Linear(3, 2), x)
    assert c.event_totals["acs"] == 4 and c.event_totals["bytes"] == 0
    assert c.to_dict()["dataflow"] == "dense_state"


def test_unknown_dataflow_lists_options():
    with pytest.raises(ValueError, match="dataflow must be one of 'dense_state', 'event_driven'"):
        accounting.count(nn.Linear(1, 1), dataflow="weight_stationary")


def test_report_console_keyword_still_prints_with_a_deprecation_warning():
    from rich.console import Console

    c = counted(nn.Linear(3, 2), torch.rand(2, 3))
    console = Console(record=True, width=40)
    with pytest.warns(DeprecationWarning, match="report"):
        text = c.report(console)
    assert "MACs" in console.export_text() and "MACs" in text
