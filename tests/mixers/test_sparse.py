import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken import LIF
from neurotoken.mixers import sparse
from neurotoken.mixers.attention import SoftmaxAttention, SpikingAttention, softmax_attention, spike_attention

DEFINITIONS = {  # pattern -> (kwargs, M[i, j] before the causal cut), after Child et al.
    "local": ({"window": 5}, lambda i, j: abs(i - j) < 5),
    "strided": ({"stride": 4}, lambda i, j: abs(i - j) < 4 or (i - j) % 4 == 0),
    "block": ({"block": 8}, lambda i, j: i // 8 == j // 8),
    "fixed": ({"block": 8, "summary": 2}, lambda i, j: i // 8 == j // 8 or j % 8 >= 6),
}


@pytest.mark.parametrize("name", DEFINITIONS)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("L", [1, 9, 63])
def test_pattern_equals_its_definition_pair_by_pair(name, causal, L):
    kwargs, rule = DEFINITIONS[name]
    mask = getattr(sparse, name)(L, causal=causal, **kwargs)
    expected = [[rule(i, j) and (j <= i or not causal) for j in range(L)] for i in range(L)]
    assert mask.dtype == torch.bool and mask.tolist() == expected


def test_union_is_elementwise_or_and_csr_lists_the_same_pairs():
    L = 63
    mask = sparse.union(sparse.strided(L, 8), sparse.local(L, 3), sparse.fixed(L, 16))
    assert torch.equal(mask, sparse.strided(L, 8) | sparse.local(L, 3) | sparse.fixed(L, 16))
    csr = sparse.to_csr(mask)
    pairs = [(i, j) for i in range(L) for j in range(L) if mask[i, j]]
    assert list(zip(csr.rows().tolist(), csr.indices.tolist())) == pairs
    assert csr.indptr.tolist() == [sum(1 for i, _ in pairs if i < r) for r in range(L + 1)]
    assert csr.nnz == len(pairs) and torch.equal(csr.to_mask(), mask)


def test_bad_patterns_raise_clear_errors():
    with pytest.raises(ValueError, match=r"row \(1,\) attends no key"):
        sparse.to_csr(torch.tensor([[True, False], [False, False]]))
    with pytest.raises(TypeError, match="must be a boolean tensor"):
        sparse.to_csr(torch.ones(3, 3))
    with pytest.raises(ValueError, match="summary must be <= block"):
        sparse.fixed(8, 4, summary=5)
    with pytest.raises(ValueError, match=r"masks\[1\] must have shape \[\.\.\., 4, 4\]"):
        sparse.union(sparse.local(4, 2), sparse.local(5, 2))
    q = torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"pattern has shape \(5, 5\)"):
        sparse.sparse_attention(q, q, q, sparse.local(5, 2))


@settings(max_examples=15, deadline=None)
@given(L=st.sampled_from([1, 5, 63]), d=st.integers(1, 6), heads=st.integers(1, 3),
       name=st.sampled_from(sorted(DEFINITIONS)), causal=st.booleans(), seed=st.integers(0, 99))
def test_event_driven_attention_matches_dense_masked_values_and_gradients(L, d, heads, name, causal, seed):
    g = torch.Generator().manual_seed(seed)
    mask = getattr(sparse, name)(L, causal=causal, **DEFINITIONS[name][0])
    q, k, v = (torch.randn(2, heads, L, d, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    y = sparse.sparse_attention(q, k, v, sparse.to_csr(mask))
    ref = softmax_attention(q, k, v, mask)
    torch.testing.assert_close(y, ref)
    w = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((y * w).sum(), (q, k, v))
    torch.testing.assert_close(grads, torch.autograd.grad((ref * w).sum(), (q, k, v)))


def _spikes(g, *shape, rate=0.3, silent=()):
    s = (torch.rand(shape, generator=g) < rate).double()
    s[..., list(silent), :] = 0  # silent tokens
    return s


def test_spike_events_are_active_pairs_only_and_match_dense_and_attention():
    g = torch.Generator().manual_seed(0)
    T, B, H, L, d = 3, 2, 2, 63, 4
    pattern = sparse.to_csr(sparse.union(sparse.strided(L, 8), sparse.local(L, 3)))
    qs, ks = _spikes(g, T, B, H, L, d, silent=range(0, L, 2)), _spikes(g, T, B, H, L, d, silent=range(0, L, 3))
    vs = _spikes(g, T, B, H, L, d).requires_grad_()
    y = sparse.sparse_spike_attention(qs, ks, vs, pattern, scale=0.5)
    ref = spike_attention(qs, ks, vs, pattern.to_mask(), scale=0.5)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(torch.autograd.grad(y.sum(), vs), torch.autograd.grad(ref.sum(), vs))
    q_on, k_on = qs.ne(0).any(0).any(-1), ks.ne(0).any(0).any(-1)
    expected = sum(bool(q_on[b, h, i] and k_on[b, h, j]) for b in range(B) for h in range(H)
                   for i, j in zip(pattern.rows().tolist(), pattern.indices.tolist()))
    assert sparse.active_pairs(pattern, qs, ks) == expected < B * H * pattern.nnz


def test_active_pairs_grow_with_pattern_pairs_not_length_squared():
    ones = torch.ones(1, 1, 1, 256, 2)
    for window in (1, 4, 16):
        pattern = sparse.to_csr(sparse.local(256, window))
        assert sparse.active_pairs(pattern, ones, ones) == pattern.nnz <= window * 256


def test_softmax_attention_module_with_csr_pattern_equals_boolean_mask():
    torch.manual_seed(0)
    mask = sparse.fixed(63, 8)
    dense = SoftmaxAttention(8, heads=2, mask=mask)
    event = SoftmaxAttention(8, heads=2, mask=sparse.to_csr(mask))
    event.load_state_dict(dense.state_dict())
    x = torch.randn(2, 63, 8)
    torch.testing.assert_close(event(x), dense(x))
    assert event.accounting((x,), None)["active_pairs"] == 2 * 2 * int(mask.sum())


@pytest.mark.parametrize("mask_of", [lambda m: m, sparse.to_csr], ids=["bool", "csr"])
def test_spiking_and_attention_with_a_pattern_equals_dense_masked_scores(mask_of):
    torch.manual_seed(0)
    mask = sparse.union(sparse.strided(63, 8), sparse.local(63, 3))
    model = SpikingAttention(8, heads=2, T=3, mask=mask_of(mask), neuron=LIF(threshold=0.3))
    x = torch.randn(2, 63, 8)
    spikes = model.neuron(model.qkv(x).expand(3, 2, 63, 24))  # [T, B, L, 3 D]
    q, k, v = (t.unflatten(-1, (2, 4)).transpose(-3, -2) for t in spikes.chunk(3, -1))  # heads
    mixed = model.out_neuron(spike_attention(q, k, v, mask, model.scale))
    torch.testing.assert_close(model(x), model.out(mixed.transpose(-3, -2).flatten(-2).mean(0)))
