import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import neurotoken as nt
from mixer_checks import random_grads, step_outputs
from neurotoken.accounting import count
from neurotoken.mixers.mamba import MambaBlock, MambaState, SpikingMamba, multilevel_neuron
from neurotoken.mixers.ssm import selective_scan

F64 = torch.float64


def reference(block: MambaBlock, x: torch.Tensor) -> torch.Tensor:
    """The Mamba block written out token by token: conv taps summed by hand, the scan sequential."""
    B, L, _ = x.shape
    spikes = (lambda t: t) if block.fire_in is None else block.fire_in
    u, z = block.in_proj(spikes(x)).chunk(2, -1)
    k = block.d_conv
    padded = torch.cat([u.new_zeros(B, k - 1, block.d_inner), u], 1)
    c = torch.stack([sum(block.conv_weight[:, j] * padded[:, t + j] for j in range(k)) + block.conv_bias
                     for t in range(L)], 1)
    c = F.silu(c)
    y, _ = selective_scan(c, F.softplus(block.delta(c)), block.log_A.exp(), block.key(c), block.query(c),
                          method="sequential")
    g = (y + block.skip * c) * F.silu(z)
    return block.out(g if block.fire_out is None else block.fire_out(g))


@settings(deadline=None, max_examples=12)
@given(st.integers(1, 2), st.sampled_from([1, 5, 17]), st.integers(1, 3), st.integers(1, 4), st.booleans(),
       st.integers(0, 100))
def test_forward_equals_the_token_by_token_reference(B, L, expand, d_conv, spiking, seed):
    torch.manual_seed(seed)
    block = (SpikingMamba if spiking else MambaBlock)(3, d_state=2, expand=expand, d_conv=d_conv).double()
    x = torch.randn(B, L, 3, dtype=F64)
    assert_close(block(x), reference(block, x))


def test_step_loop_equals_forward_and_the_conv_window_is_the_last_inputs():
    torch.manual_seed(0)
    block = SpikingMamba(6, d_state=3, d_conv=4).double()
    x = torch.randn(2, 13, 6, dtype=F64)
    steps, state = step_outputs(block, x)
    assert_close(steps, block(x))
    assert isinstance(state, MambaState) and state.conv.shape == (2, 3, 12) and state.ssm.shape == (2, 12, 3)
    u, _ = block.in_proj(block.fire_in(x)).chunk(2, -1)
    assert_close(state.conv, u[:, -3:])


def test_a_lif_neuron_runs_along_the_tokens_and_its_state_continues_the_sequence():
    torch.manual_seed(0)
    block = SpikingMamba(6, d_state=3, neuron=nt.LIF(0.7, 0.3, "subtract", "binary")).double()
    x = torch.randn(2, 9, 6, dtype=F64)
    y, state = block(x, return_state=True)
    assert state.fire_in.h.shape == (2, 6) and state.fire_out.s.shape == (2, 12)
    assert_close(step_outputs(block, x)[0], y)
    assert_close(reference(block, x), y)
    more = torch.randn(2, 4, 6, dtype=F64)
    assert_close(block(more, state), block(torch.cat([x, more], 1))[:, -4:])
    initial = block.initial_state(2)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in (*initial.fire_in, *initial.fire_out))


def test_the_twin_is_the_same_block_without_spikes():
    torch.manual_seed(0)
    conventional = MambaBlock(8, d_state=4)
    torch.manual_seed(0)
    twin = SpikingMamba(8, d_state=4, neuron=None)
    torch.manual_seed(0)
    spiking = SpikingMamba(8, d_state=4)
    x = torch.randn(2, 7, 8)
    assert not twin.spiking and spiking.spiking
    assert_close(twin(x), conventional(x))
    assert twin.state_dict().keys() == spiking.state_dict().keys() - {k for k in spiking.state_dict() if "fire" in k}
    spiking.load_state_dict(twin.state_dict(), strict=False)
    assert not torch.allclose(spiking(x), twin(x))


def _projection_inputs(block: MambaBlock, x: torch.Tensor) -> list[torch.Tensor]:
    seen = {}
    for name in ("in_proj", "out"):
        getattr(block, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, i[0]))
    block(x)
    return list(seen.values())


def test_projections_read_signed_ternary_spikes_with_learned_thresholds_by_default():
    torch.manual_seed(0)
    block = SpikingMamba(8, d_state=4)
    into_in, into_out = _projection_inputs(block, torch.randn(2, 9, 8))
    assert set(into_in.unique().tolist()) == {-1.0, 0.0, 1.0} and set(into_out.unique().tolist()) <= {-1.0, 0.0, 1.0}
    thresholds = [block.fire_in.neuron.threshold, block.fire_out.neuron.threshold]
    assert all(isinstance(t, torch.nn.Parameter) for t in thresholds)
    assert [t.item() for t in thresholds] == pytest.approx([0.3, 0.3]) and thresholds[0] is not thresholds[1]
    lif = SpikingMamba(8, d_state=4, neuron=nt.LIF(0.5, 0.2, "subtract", "binary"))
    assert lif.fire_in.neuron is not lif.fire_out.neuron and lif.fire_out.neuron.threshold == 0.2
    torch.manual_seed(0)
    multilevel = SpikingMamba(8, d_state=4, neuron=multilevel_neuron())
    for s in _projection_inputs(multilevel, torch.randn(2, 9, 8)):
        assert set(s.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0} and s.max() >= 2


def test_spiking_projections_count_accumulates_and_the_twin_multiplies():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 8)
    with count(SpikingMamba(8, d_state=4)) as c:
        SpikingMamba(8, d_state=4)(x)  # not the counted model: nothing observed
    assert c.totals["acs"] == 0
    spiking, twin = SpikingMamba(8, d_state=4), MambaBlock(8, d_state=4)
    with count(spiking) as s:
        spiking(x)
    with count(twin) as t:
        twin(x)
    for name in ("in_proj", "out"):
        assert s.layers[name]["macs"] == 0 and s.layers[name]["acs"] > 0
        assert t.layers[name]["acs"] == 0 and t.layers[name]["macs"] > 0
    assert t.layers["in_proj"]["macs"] == 2 * 9 * 8 * 32
    assert s.layers["fire_in"]["neuron_updates"] == 2 * 9 * 8
    B, L, E, N, k = 2, 9, 16, 4, 4
    assert t.layers["MambaBlock"]["macs"] == 4 * B * L * E * N + 2 * B * L * E + B * L * E * (k + 1)
    assert t.layers["MambaBlock"]["state_bytes"] == (B * E * N + B * (k - 1) * E) * 4


def test_every_parameter_gets_a_gradient_through_the_spikes():
    torch.manual_seed(0)
    block = SpikingMamba(8, d_state=4).double()
    x = torch.randn(2, 9, 8, dtype=F64, requires_grad=True)
    params = [p for _, p in block.named_parameters()]
    grads = random_grads([block(x)], [x, *params])
    for name, g in zip(["x", *dict(block.named_parameters())], grads):
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_a_tiny_training_run_lowers_the_loss():
    torch.manual_seed(0)
    block = SpikingMamba(8, d_state=4)
    x = torch.randn(4, 12, 8)
    target = torch.roll(x, 1, 1).cumsum(1) / 4  # depends on the past
    opt = torch.optim.Adam(block.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.mse_loss(block(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"expand": 0}, ValueError, "expand"),
    ({"d_conv": 0}, ValueError, "d_conv"),
    ({"d_model": 2.5}, TypeError, "d_model"),
    ({"neuron": "binary"}, TypeError, "neuron must be"),
])
def test_bad_arguments_are_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        SpikingMamba(**{"d_model": 4, **kwargs})


def test_a_bad_state_is_refused_naming_it():
    block = MambaBlock(4, d_state=2)
    x = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="state must be a MambaState"):
        block(x, torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="state.conv must have shape"):
        block(x, MambaState(torch.zeros(2, 2, 8), torch.zeros(2, 8, 2)))
    lif = SpikingMamba(4, d_state=2, neuron=nt.LIF(0.5, 0.3, "subtract", "binary"))
    state = lif.initial_state(2)
    with pytest.raises(ValueError, match="state.fire_out.h must have shape"):
        lif(x, state._replace(fire_out=state.fire_in))
