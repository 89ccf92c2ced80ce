import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mixer_checks import random_grads, step_outputs
from neurotoken.accounting import count
from neurotoken.mixers.base import memoryless
from neurotoken.mixers.rwkv import (RWKVBlock, RWKVChannelMix, RWKVTimeMix, SpikeGPTBlock, SpikingOutput,
                                    TimeMixState, WKVState, wkv_parallel, wkv_sequential)
from neurotoken.neurons import LIF

F64 = torch.float64


def ternary(threshold):
    """SpikeGPTBlock's time-mix neuron at another threshold (learned, as its default)."""
    return memoryless(threshold, "ternary", learn_threshold=True)


def test_wkv_matches_hand_computation():
    w, u = torch.tensor([0.5]), torch.tensor([0.2])
    k, v = torch.tensor([1.0, -1.0, 2.0]).view(1, 3, 1), torch.tensor([3.0, 1.0, -2.0]).view(1, 3, 1)
    e = math.exp
    want = [3.0,  # only the bonus term: e^{u+k_0} v_0 / e^{u+k_0}
            (e(1) * 3 + e(0.2 - 1) * 1) / (e(1) + e(0.2 - 1)),
            (e(-0.5 + 1) * 3 + e(-1) * 1 + e(2.2) * -2) / (e(-0.5 + 1) + e(-1) + e(2.2))]
    for f in (wkv_sequential, wkv_parallel):
        y, (num, den, m) = f(w, u, k, v)
        assert_close(y.flatten(), torch.tensor(want))
        # state holds sum_i e^{k_i - (2-i) w} (v_i, 1) scaled by e^{-max}
        true_den = e(1 - 1.0) + e(-1 - 0.5) + e(2)
        assert_close((den * m.exp()).flatten(), torch.tensor([true_den]))
        assert_close((num * m.exp()).flatten(), torch.tensor([e(0) * 3 + e(-1.5) * 1 + e(2) * -2]))


@st.composite
def wkv_problem(draw):
    B, D = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    L = draw(st.sampled_from([1, 2, 5, 17, 63, 64, 65]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=F64)  # noqa: E731
    w = rand(D).exp().requires_grad_()
    u, k, v = rand(D).requires_grad_(), (3 * rand(B, L, D)).requires_grad_(), rand(B, L, D).requires_grad_()
    state = None
    if draw(st.booleans()):
        state = WKVState(rand(B, D).requires_grad_(), rand(B, D).exp().requires_grad_(), rand(B, D).requires_grad_())
    return w, u, k, v, state


@settings(deadline=None, max_examples=25)
@given(wkv_problem(), st.sampled_from(["parallel", "chunked", "sequential"]))
def test_wkv_parallel_equals_sequential_with_gradients(problem, method):
    w, u, k, v, state = problem
    inputs = [w, u, k, v, *(state or ())]
    ref = wkv_sequential(w, u, k, v, state)
    out = wkv_parallel(w, u, k, v, state, method)
    # the state is (num, den) e^max: compare the represented sums, not the offset
    for y_ref, y in ((ref[0], out[0]), (ref[1].num * ref[1].max.exp(), out[1].num * out[1].max.exp()),
                     (ref[1].den * ref[1].max.exp(), out[1].den * out[1].max.exp())):
        assert_close(y, y_ref)
    flat = lambda r: (r[0], r[1].num * r[1].max.exp(), r[1].den * r[1].max.exp())  # noqa: E731
    for a, b in zip(random_grads(flat(out), inputs), random_grads(flat(ref), inputs)):
        assert_close(a, b)


@pytest.mark.parametrize("f", [wkv_sequential, wkv_parallel])
def test_wkv_is_stable_where_naive_exp_overflows(f):
    torch.manual_seed(0)
    w, u = torch.rand(4) + 0.1, torch.randn(4)
    k, v = torch.randn(2, 63, 4), torch.randn(2, 63, 4)
    big = (k + 1000.0).requires_grad_()  # e^k is inf in float32 (and float64)
    assert torch.isinf(big.exp()).all()
    y, state = f(w, u, big, v)
    assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in state)
    assert_close(y, f(w, u, k, v)[0], rtol=1e-4, atol=1e-4)  # wkv is invariant to k + c
    y.sum().backward()
    assert torch.isfinite(big.grad).all()


def _modules():
    return {"timemix": lambda m: RWKVTimeMix(6, 1, 3, method=m), "channelmix": lambda m: RWKVChannelMix(6, 2, 1, 3),
            "block": lambda m: RWKVBlock(6, 0, 2, 2, method=m),
            "spikegpt": lambda m: SpikeGPTBlock(6, 1, 2, 2, method=m, neuron=ternary(0.3)),  # spikes fire
            "spikingoutput": lambda m: SpikingOutput(RWKVTimeMix(6, method=m), LIF(0.5, 0.3, reset="zero"))}


@pytest.mark.parametrize("name", list(_modules()))
def test_module_forward_equals_step_loop_and_split_sequence(name):
    torch.manual_seed(0)
    module = _modules()[name]("parallel").double()
    x = 2 * torch.randn(2, 63, 6, dtype=F64)
    y, state = module(x, return_state=True)
    assert_close(step_outputs(module, x)[0], y)
    first, mid = module(x[:, :20], return_state=True)
    assert_close(torch.cat([first, module(x[:, 20:], mid)], 1), y)


@pytest.mark.parametrize("name", ["timemix", "block", "spikegpt"])
def test_module_recurrent_method_equals_parallel_with_gradients(name):
    torch.manual_seed(1)
    make = _modules()[name]
    par, rec = make("parallel").double(), make("recurrent").double()
    rec.load_state_dict(par.state_dict())
    x = torch.randn(3, 63, 6, dtype=F64, requires_grad=True)
    outs = [m(x) for m in (par, rec)]
    assert_close(outs[0], outs[1])
    grads = [random_grads([o], [x, *m.parameters()]) for o, m in zip(outs, (par, rec))]
    for a, b in zip(*grads):
        assert_close(a, b)


def test_spikegpt_block_feeds_spikes_to_its_output_projections():
    torch.manual_seed(0)
    block = SpikeGPTBlock(8, neuron=ternary(0.2))
    tm, cm = block.sublayers
    seen = {}
    for name, layer in (("timemix", tm.output), ("channelmix", cm.value)):
        layer.register_forward_pre_hook(lambda m, inputs, name=name: seen.__setitem__(name, inputs[0]))
    with count(block) as c:
        block(torch.randn(2, 17, 8))
    assert set(seen["timemix"].unique().tolist()) == {-1.0, 0.0, 1.0}  # ternary
    assert set(seen["channelmix"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}  # 4 levels
    assert seen["channelmix"].max() > 0
    B, L, D, H = 2, 17, 8, 32
    assert c.totals["spikes"] > 0 and c.totals["neuron_updates"] == B * L * (D + H)
    # thresholds are learned by default, and the twin is the same block without the spikes
    assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in RWKVBlock(8).parameters()) + 2


def test_accounting_reports_own_work():
    block = RWKVBlock(4, hidden_ratio=2)
    with count(block) as c:
        block(torch.randn(2, 5, 4))
    B, L, D, H = 2, 5, 4, 8
    assert c.layers["sublayers.0"]["macs"] == 13 * B * L * D
    assert c.layers["sublayers.1"]["macs"] == 5 * B * L * D + B * L * H
    assert c.layers["sublayers.0.key"]["macs"] == B * L * D * D


@pytest.mark.parametrize("call, match", [
    (lambda: RWKVTimeMix(4)(torch.randn(2, 4)), "dimensions"),
    (lambda: RWKVTimeMix(4)(torch.randn(2, 0, 4)), "at least one token"),
    (lambda: RWKVTimeMix(4)(torch.randn(2, 3, 5)), "4 channels"),
    (lambda: RWKVTimeMix(4)(torch.randn(2, 3, 4), torch.zeros(2, 4)), "TimeMixState"),
    (lambda: RWKVTimeMix(4)(torch.randn(2, 3, 4), TimeMixState(torch.zeros(3, 4), None)), r"state.shift"),
    (lambda: RWKVChannelMix(4)(torch.randn(2, 3, 4), torch.zeros(2, 5)), "state must have shape"),
    (lambda: RWKVTimeMix(4, method="fast"), "method"),
    (lambda: RWKVTimeMix(4, neuron=LIF(beta=0.5)), "memoryless"),
    (lambda: RWKVChannelMix(4, neuron=torch.nn.ReLU()), "neuron must"),
    (lambda: RWKVBlock(4, layer=2, layers=2), "layer must be < layers"),
    (lambda: RWKVBlock(4)(torch.randn(1, 3, 4), (None,)), "tuple of 2"),
    (lambda: wkv_parallel(torch.ones(3), torch.zeros(2), torch.zeros(1, 3, 2), torch.zeros(1, 3, 2)),
     r"w must have shape \(2,\)"),
    (lambda: wkv_sequential(torch.ones(2), torch.zeros(2), torch.zeros(1, 3, 2), torch.zeros(1, 4, 2)), "v must"),
    (lambda: wkv_sequential(torch.ones(2), torch.zeros(2), torch.zeros(1, 3, 2), torch.zeros(1, 3, 2),
                            WKVState(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(2, 2))), "state.max"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_a_nan_in_one_sequence_reaches_no_other_sequence_of_the_batch():
    torch.manual_seed(0)
    block = SpikeGPTBlock(8, hidden_ratio=2)
    x = torch.randn(3, 5, 8)
    x[0, 2, 1] = float("nan")
    y = block(x)
    assert torch.isnan(y[0]).any()  # propagated in its own sequence, not zeroed
    torch.testing.assert_close(y[1:], block(x[1:]))


def test_wkv_of_any_real_decay_is_the_weighted_mean_with_no_value_check():
    """w <= 0 (weights growing with age) is still a weighted mean of the values: computed, not refused."""
    w, u = -torch.ones(2, dtype=F64), torch.zeros(2, dtype=F64)
    k, v = torch.zeros(1, 3, 2, dtype=F64), torch.arange(6, dtype=F64).reshape(1, 3, 2)
    y, _ = wkv_parallel(w, u, k, v)
    assert_close(y, wkv_sequential(w, u, k, v)[0])
    # token 1: weights e^{-(0) w} on v_0 and e^{u} on v_1 -> (v_0 + v_1) / 2
    assert_close(y[0, 1], (v[0, 0] + v[0, 1]) / 2)
