import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mixer_checks import random_grads, step_outputs
from neurotoken.accounting import count
from neurotoken.mixers.ssm import (LINEAR_ATTENTION_METHODS, LinearAttention, SelectiveSSM, linear_attention,
                                   selective_scan, ssm_scan)

F64 = torch.float64


@pytest.mark.parametrize("method", LINEAR_ATTENTION_METHODS)
def test_linear_attention_matches_eq_19_20_by_hand(method):
    # one head, N = 2, P = 1. Scores q_t . k_t': t=1: 1; t=2: (2, 0); t=3: (3, 3, 1)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(1, 3, 1, 2)
    k = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]]).view(1, 3, 1, 2)
    v = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    y, S = linear_attention(q, k, v, method=method, chunk_size=2)
    assert_close(y.flatten(), torch.tensor([1.0, 2 * 1 + 0 * 2, 3 * 1 + 3 * 2 + 1 * 3]))
    assert_close(S.flatten(), torch.tensor([1 * 1 + 2 * 3 + 3 * 0, 1 * 2 + 2 * 0 + 3 * 1.0]))  # sum v k^T


@st.composite
def qkv(draw):
    B, H, N, P = (draw(st.integers(1, n)) for n in (2, 3, 4, 4))
    L = draw(st.sampled_from([1, 2, 5, 17, 63, 64, 65]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    q, k = (torch.randn(B, L, H, N, generator=g, dtype=F64, requires_grad=True) for _ in range(2))
    v = torch.randn(B, L, H, P, generator=g, dtype=F64, requires_grad=True)
    state = torch.randn(B, H, P, N, generator=g, dtype=F64, requires_grad=True) if draw(st.booleans()) else None
    return q, k, v, state, draw(st.sampled_from([1, 3, 16, 64]))


@settings(deadline=None, max_examples=25)
@given(qkv())
def test_linear_attention_forms_are_equal_with_gradients(problem):
    q, k, v, state, chunk = problem
    inputs = [t for t in (q, k, v, state) if t is not None]
    ref = linear_attention(q, k, v, state, method="recurrent")
    ref_grads = random_grads(ref, inputs)
    for method in ("quadratic", "chunked", "scan"):
        out = linear_attention(q, k, v, state, method=method, chunk_size=chunk)
        for a, b in zip(out, ref):
            assert_close(a, b)
        for a, b in zip(random_grads(out, inputs), ref_grads):
            assert_close(a, b)


def test_noncausal_linear_attention_reads_the_full_state():
    torch.manual_seed(0)
    q, k = torch.randn(2, 7, 2, 3, dtype=F64), torch.randn(2, 7, 2, 3, dtype=F64)
    v = torch.randn(2, 7, 2, 4, dtype=F64)
    y, S = linear_attention(q, k, v, causal=False)
    assert_close(y, torch.einsum("blhn,bmhn,bmhp->blhp", q, k, v))  # unmasked eq. (19)
    assert_close(S, linear_attention(q, k, v)[1])


def _mamba_loop(x, delta, A, k, q):
    """Selective scan token by token: S = exp(-Delta A) S + Delta x k;  y = S q."""
    S, ys = torch.zeros(x.shape[0], *A.shape, dtype=x.dtype), []
    for t in range(x.shape[1]):
        d = delta[:, t, :, None]
        S = torch.exp(-d * A) * S + d * x[:, t, :, None] * k[:, t, None, :]
        ys.append((S * q[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1), S


@settings(deadline=None, max_examples=20)
@given(st.integers(1, 2), st.sampled_from([1, 2, 17, 63, 64]), st.integers(1, 5), st.integers(1, 4),
       st.sampled_from(["parallel", "chunked", "sequential"]), st.integers(0, 1000))
def test_selective_scan_matches_token_loop_with_gradients(B, L, D, N, method, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, L, D, generator=g, dtype=F64, requires_grad=True)
    delta = torch.nn.functional.softplus(torch.randn(B, L, D, generator=g, dtype=F64)).requires_grad_()
    A = (torch.rand(D, N, generator=g, dtype=F64) + 0.1).requires_grad_()
    k, q = (torch.randn(B, L, N, generator=g, dtype=F64, requires_grad=True) for _ in range(2))
    inputs = [x, delta, A, k, q]
    out, ref = selective_scan(*inputs, method=method), _mamba_loop(*inputs)
    for a, b in zip(out, ref):
        assert_close(a, b)
    for a, b in zip(random_grads(out, inputs), random_grads(ref, inputs)):
        assert_close(a, b)


MIXERS = {
    "linear_attention": lambda: LinearAttention(6, heads=2, d_key=3, chunk_size=16),
    "selective_ssm": lambda: SelectiveSSM(6, d_state=4),
}


@pytest.mark.parametrize("name", MIXERS)
def test_step_from_saved_state_continues_the_sequence(name):
    torch.manual_seed(0)
    mixer = MIXERS[name]().double()
    x = torch.randn(2, 63, 6, dtype=F64)
    full, last = mixer(x, return_state=True)
    head, state = mixer(x[:, :40], return_state=True)
    tail, state = step_outputs(mixer, x[:, 40:], state)
    assert_close(torch.cat([head, tail], 1), full)
    assert_close(state, last)


@pytest.mark.parametrize("name", MIXERS)
def test_loop_of_step_equals_forward(name):
    torch.manual_seed(1)
    mixer = MIXERS[name]().double()
    x = torch.randn(3, 17, 6, dtype=F64)
    assert_close(step_outputs(mixer, x)[0], mixer(x))


def test_linear_attention_module_forms_are_equal():
    torch.manual_seed(2)
    mixer = LinearAttention(8, heads=4).double()
    x = torch.randn(2, 63, 8, dtype=F64)
    outs = []
    for method in LINEAR_ATTENTION_METHODS:
        mixer.method = method
        outs.append(mixer(x))
    for out in outs[1:]:
        assert_close(out, outs[0])


def test_ssm_scan_with_unit_gains_is_linear_attention():
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 9, 2, 3), torch.randn(2, 9, 2, 3), torch.randn(2, 9, 2, 5)
    for a, b in zip(ssm_scan(1.0, 1.0, k, v, q), linear_attention(q, k, v)):
        assert_close(a, b)


def test_accounting_counts_linear_attention_by_hand():
    # B = 1, L = 3, D = 4, H = 2 heads, N = 2, P = 2 (real input: the counter prices MACs)
    x = torch.randn(1, 3, 4)
    projections = 3 * (2 * 4 * 4 + 2 * 4 * 4)  # q, k: 4 -> 2*2; v, out: 4 -> 4; per token (Linear children)
    recurrent = LinearAttention(4, heads=2, d_key=2, method="recurrent")
    counts = recurrent.accounting((x,), recurrent(x))
    assert counts == {"macs": 2 * (2 * 3 * 2 * 2),  # per head: S += v k^T, y = S q
                      "state_updates": 3 * 2 * 2 * 2, "state_bytes": 2 * 2 * 2 * 4}
    chunked = LinearAttention(4, heads=2, d_key=2, method="chunked", chunk_size=2)
    blocks = (2 * 2 * (2 + 2) + 2 * 2 * 2 * 2) + (1 * 1 * (2 + 2) + 2 * 1 * 2 * 2)  # chunks of 2 and 1
    assert chunked.accounting((x,), chunked(x))["macs"] == 2 * blocks
    with count(chunked) as c:  # the counter adds the projections once
        chunked(x)
    assert c.totals["macs"] == projections + 2 * blocks


def test_accounting_counts_selective_ssm_by_hand():
    # B = 2, L = 3, D = 4, N = 2 (real input: the counter prices MACs)
    x = torch.randn(2, 3, 4)
    mixer = SelectiveSSM(4, d_state=2)
    own = 4 * 4 * 2 + 2 * 4  # 4 per state element; Delta x, skip
    assert mixer.accounting((x,), mixer(x)) == {"macs": 2 * 3 * own, "state_updates": 2 * 3 * 4 * 2,
                                               "state_bytes": 2 * 4 * 2 * 4}
    with count(mixer) as c:  # plus the Linear children Delta, out (4 -> 4), k, q (4 -> 2), once each
        mixer(x)
    assert c.totals["macs"] == 2 * 3 * (own + 2 * 4 * 4 + 2 * 4 * 2)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(3, 6), "x must have between 3 and 3 dimensions"),
    (torch.zeros(2, 0, 6), "at least one token"),
    (torch.zeros(2, 5, 7), "6 channels"),
])
@pytest.mark.parametrize("name", MIXERS)
def test_bad_token_sequences_raise(name, bad, match):
    with pytest.raises(ValueError, match=match):
        MIXERS[name]()(bad)


def test_mismatched_states_raise():
    x = torch.zeros(2, 5, 6)
    with pytest.raises(ValueError, match=r"state must have shape \(2, 2, 3, 3\)"):
        LinearAttention(6, heads=2)(x, torch.zeros(2, 2, 3, 4))
    with pytest.raises(ValueError, match=r"state must have shape \(2, 6, 4\)"):
        SelectiveSSM(6, d_state=4)(x, torch.zeros(1, 6, 4))


def test_bad_constructor_and_function_arguments_raise():
    with pytest.raises(ValueError, match=r"d_model \(6\) must be divisible by heads \(4\)"):
        LinearAttention(6, heads=4)
    with pytest.raises(ValueError, match="method must be one of"):
        LinearAttention(6, method="fast")
    with pytest.raises(ValueError, match="method must be one of .sequential"):
        SelectiveSSM(6, method="fast")
    with pytest.raises(ValueError, match="dt_range"):
        SelectiveSSM(6, dt_range=(0.0, 0.1))
    q = torch.zeros(1, 4, 2, 3)
    with pytest.raises(ValueError, match="v must have shape"):
        linear_attention(q, q, torch.zeros(1, 5, 2, 3))
    with pytest.raises(ValueError, match="q and k must have the same shape"):
        linear_attention(q, torch.zeros(1, 4, 2, 2), q)
    with pytest.raises(ValueError, match="step needs causal=True"):
        LinearAttention(6, causal=False).step(torch.zeros(1, 6))
    with pytest.raises(ValueError, match="A must have shape"):
        selective_scan(torch.zeros(1, 4, 3), torch.ones(1, 4, 3), torch.ones(2, 2), torch.zeros(1, 4, 2),
                       torch.zeros(1, 4, 2))
