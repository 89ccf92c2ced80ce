import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixer_checks import step_outputs
from neurotoken import LIF
from neurotoken.accounting import count
from neurotoken.mixers import sparse
from neurotoken.mixers.attention import (KVCache, SoftmaxAttention, SpikingAttention, and_scores, causal_mask,
                                         softmax_attention, stochastic_attention, xnor_scores)


def test_masked_softmax_attention_matches_hand_computation():
    q = torch.tensor([[1.0], [2.0]])
    k = torch.tensor([[1.0], [0.0]])
    v = torch.tensor([[1.0], [3.0]])
    y = softmax_attention(q, k, v, causal_mask(2))
    e = math.exp(2.0)  # row 1: scores q1 k0 = 2, q1 k1 = 0 (d_k = 1)
    torch.testing.assert_close(y, torch.tensor([[1.0], [(e * 1 + 1 * 3) / (e + 1)]]))


@settings(max_examples=15, deadline=None)
@given(L=st.sampled_from([1, 4, 63]), S=st.sampled_from([1, 6]), d=st.integers(1, 5),
       heads=st.integers(1, 3), seed=st.integers(0, 99))
def test_softmax_attention_equals_eq23_with_random_boolean_masks(L, S, d, heads, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, heads, L, d, generator=g, dtype=torch.float64)
    k, v = (torch.randn(2, heads, S, d, generator=g, dtype=torch.float64) for _ in range(2))
    mask = torch.rand(L, S, generator=g) < 0.5
    mask[:, 0] = True
    w = mask * torch.exp(q @ k.transpose(-1, -2) / math.sqrt(d))  # eq. (23)
    torch.testing.assert_close(softmax_attention(q, k, v, mask), (w / w.sum(-1, keepdim=True)) @ v)


def _generate(model, x, chunks):
    """Run x [.., B, L, D] through the KV cache in chunks of the given sizes."""
    ys, state, start = [], None, 0
    for size in chunks:
        y, state = model(x[..., start:start + size, :], state, return_state=True)
        ys.append(y)
        start += size
    return torch.cat(ys, -2), state


@pytest.mark.parametrize("make", [
    lambda: SoftmaxAttention(8, heads=2),
    lambda: SpikingAttention(8, heads=2, T=3, score="and", mask="causal", neuron=LIF(threshold=0.3)),
    lambda: SpikingAttention(8, heads=2, T=3, score="xnor", mask="causal", neuron=LIF(threshold=0.3)),
], ids=["softmax", "and", "xnor"])
def test_kv_cache_generation_equals_full_causal_pass(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(2, 7, 8)
    full = model(x)
    steps, state = step_outputs(model, x)
    torch.testing.assert_close(steps, full)
    torch.testing.assert_close(_generate(model, x, [3, 1, 3])[0], full)  # chunked prefill
    assert isinstance(state, KVCache) and state.k.shape[-2] == 7


def test_spiking_step_accepts_spike_tokens_with_leading_time():
    torch.manual_seed(1)
    model = SpikingAttention(4, heads=1, T=2, mask="causal", neuron=LIF(threshold=0.2))
    x = (torch.rand(2, 3, 5, 4) < 0.5).float()  # [T, B, L, D] spikes
    full = model(x)
    assert full.shape == (2, 3, 5, 4)
    steps, state = [], None
    for t in range(5):
        y_t, state = model.step(x[:, :, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, -2), full)


def test_bad_masks_and_states_raise_clear_errors():
    with pytest.raises(ValueError, match=r"mask row \(2,\) attends no key"):
        SoftmaxAttention(4, mask=torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have shape \[\.\.\., 3, 4\]"):
        q, kv = torch.randn(3, 2), torch.randn(4, 2)
        softmax_attention(q, kv, kv, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        softmax_attention(torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="mask must be one of 'causal', 'full'"):
        SoftmaxAttention(4, mask="diagonal")
    with pytest.raises(ValueError, match="mask was built for L = 5 tokens but the input has L = 6"):
        SoftmaxAttention(4, mask=sparse.local(5, 2))(torch.randn(1, 6, 4))
    with pytest.raises(ValueError, match="KV cache .* needs mask='causal'"):
        SoftmaxAttention(4, mask="full").step(torch.randn(1, 4))
    with pytest.raises(ValueError, match="d_model \\(6\\) must be divisible by heads \\(4\\)"):
        SoftmaxAttention(6, heads=4)
    with pytest.raises(ValueError, match=r"x must have 4 channels last"):
        SoftmaxAttention(4)(torch.randn(1, 3, 5))


def _loop_scores(qs, ks, agree):
    T, L, d = qs.shape[0], qs.shape[-2], qs.shape[-1]
    return torch.tensor([[sum(agree(qs[t, i, c].item(), ks[t, j, c].item()) for t in range(T) for c in range(d))
                          for j in range(ks.shape[-2])] for i in range(L)])


def test_and_and_xnor_scores_count_coincidences_and_agreements():
    g = torch.Generator().manual_seed(0)
    qs = (torch.rand(3, 5, 7, generator=g) < 0.4).float()  # [T, L, d]
    ks = (torch.rand(3, 4, 7, generator=g) < 0.4).float()
    assert torch.equal(and_scores(qs, ks), _loop_scores(qs, ks, lambda a, b: a == b == 1).float())
    assert torch.equal(xnor_scores(qs, ks), _loop_scores(qs, ks, lambda a, b: a == b).float())
    with pytest.raises(ValueError, match="qs must hold binary spikes"):
        and_scores(qs * 2, ks)


def test_stochastic_attention_is_unbiased_and_error_falls_like_inverse_sqrt_T():
    g = torch.Generator().manual_seed(0)
    L, d = 4, 3
    q, k, v = (torch.rand(L, d, generator=g) for _ in range(3))
    mask = causal_mask(L)
    exact = ((q @ k.T) * mask) @ v

    def estimate(T, runs=1):
        qs, ks, vs = ((torch.rand(T, runs, L, d, generator=g) < p).float() for p in (q, k, v))
        return stochastic_attention(qs, ks, vs, mask)

    steps = estimate(20000)[:, 0]  # per-step estimates, iid over tau
    mean, sem = steps.mean(0), steps.std(0) / math.sqrt(steps.shape[0])
    assert bool(((mean - exact).abs() <= 4 * sem).all())
    rms = {T: ((estimate(T, 32).mean(0) - exact) ** 2).mean().sqrt().item() for T in (16, 256, 4096)}
    for small, big in ((16, 256), (256, 4096)):  # ideal ratio sqrt(16) = 4
        assert 3.0 < rms[small] / rms[big] < 5.5


def _hand_model():
    """D = 2, one head, T = 2, causal, identity q/k/v weights, no bias, LIF threshold 0.5."""
    model = SpikingAttention(2, heads=1, T=2, score="and", mask="causal", bias=False, neuron=LIF(threshold=0.5))
    with torch.no_grad():
        model.qkv.weight.copy_(torch.eye(2).repeat(3, 1))
    return model


def test_spiking_and_attention_by_hand():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).expand(2, 1, 2, 2)  # [T, B, L, D]: token 0 = 10, token 1 = 11
    model = _hand_model()
    q = model.neuron(model.qkv(x))
    assert torch.equal(q, x.repeat(1, 1, 1, 3))  # input 1 fires at every step, 0 never
    # C = [[2, .], [2, 4]], scale 1/4: currents token 0 = (0.5, 0), token 1 = (1.5, 1) at both steps;
    # LIF(0.5): 0.5 fires at t0 only (0.45 at t1), 1.5 and 1 fire at both steps.
    spikes = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]]]).unsqueeze(1)
    assert torch.equal(model(x), model.out(spikes))


def test_accounting_counts_by_hand_on_a_tiny_case():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4)
    soft = SoftmaxAttention(4, heads=2)
    # the mixer's own work: causal pairs 6 per head, 2 heads, 2 d_head MACs each (scores, values)
    assert soft.accounting((x,), soft(x)) == {"macs": 12 * 2 * 2, "active_pairs": 12,
                                              "state_bytes": 2 * 3 * 4 * 4}
    # through the counter the projections (Linear children: 4 D^2 per token = 3 * 64) join once
    with count(soft) as c:
        soft(x)
    assert c.totals["macs"] == 192 + 48
    model = _hand_model()
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).expand(2, 1, 2, 2)
    # value ACs: pairs (0,0), (1,0), (1,1) meet 2 + 2 + 4 value spikes = 8. Bit ops: 3 pairs x T d_head = 12.
    # K and V: 2 x 8 float32. The LIF spikes are the neurons' to count.
    with count(model) as c:
        model(x)
    mix = {k: c.layers["mix"][k] for k in ("acs", "bit_ops", "active_pairs", "state_bytes")}
    assert mix == {"acs": 8, "bit_ops": 12, "active_pairs": 3, "state_bytes": 64}
    # input ACs: 6 spikes x 3 D = 36; output ACs: 5 spikes x D = 10; plus the 8 value ACs.
    # Spikes: q, k, v 6 each + 5 output spikes, each counted once.
    assert (c.totals["acs"], c.totals["spikes"], c.totals["macs"]) == (54, 23, 0)


def mix_counts(model, x):
    """The counter's row of the spiking attention's score-and-value stage on one forward of x."""
    with count(model) as c:
        model(x)
    return c.layers["mix"]


def test_accounting_of_event_driven_pattern_counts_only_active_pairs():
    model = _hand_model()
    model_csr = SpikingAttention(2, heads=1, T=2, score="and", mask=sparse.to_csr(causal_mask(3)),
                                 bias=False, neuron=LIF(threshold=0.5))
    model_csr.load_state_dict(model.state_dict())
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]).expand(2, 1, 3, 2)  # token 1 is silent
    torch.testing.assert_close(model_csr(x), model(x))
    dense, event = (mix_counts(m, x) for m in (model, model_csr))
    assert dense["active_pairs"] == 6 and event["active_pairs"] == 3  # pairs touching token 1 skipped
    assert event["acs"] == dense["acs"] - 2  # the silent query's pair (1, 0) met key 0's 2 value spikes
    assert event["bit_ops"] == 3 * 2 * 2


@pytest.mark.parametrize("score", ["and", "xnor", "stochastic"])
def test_spiking_attention_trains_through_surrogates(score):
    torch.manual_seed(0)
    model = SpikingAttention(8, heads=2, T=4, score=score, mask="causal", neuron=LIF(threshold=0.3))
    x = torch.randn(2, 6, 8)
    y = model(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert model.qkv.weight.grad.abs().sum() > 0


def test_spiking_attention_propagates_nan_and_refuses_non_binary_neurons():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8)
    x[0, 1, 3] = float("nan")
    y = SpikingAttention(8, heads=2, T=2)(x)
    assert torch.isnan(y[0]).any() and torch.isfinite(y[1]).all()  # no value check in the forward
    with pytest.raises(TypeError, match="binary spikes"):
        SpikingAttention(8, T=2, score="xnor", neuron=LIF(spike="ternary"))
