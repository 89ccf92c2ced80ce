import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import legendre
from torch.testing import assert_close

import neurotoken as nt
from mixer_checks import step_outputs
from neurotoken.accounting import count
from neurotoken.mixers import HiPPOSSM
from neurotoken.mixers.hippo import DISCRETIZATIONS, discretize, hippo_ssm, krylov, legs

F64 = torch.float64


def test_legs_entries_follow_the_formula():
    A, B = legs(5)
    for n in range(5):
        assert B[n].item() == pytest.approx(math.sqrt(2 * n + 1))
        for k in range(5):
            want = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1) if n > k else -(n + 1) if n == k else 0.0
            assert A[n, k].item() == pytest.approx(want)


@pytest.mark.parametrize("dt", [0.1, 0.7])
def test_discretisations_of_one_state_match_hand_computation(dt):
    A, B = legs(1)  # A = -1, B = 1
    A_bar, B_bar = discretize(A, B, dt, "bilinear")
    assert_close(A_bar, torch.tensor([[(1 - dt / 2) / (1 + dt / 2)]], dtype=F64))
    assert_close(B_bar, torch.tensor([dt / (1 + dt / 2)], dtype=F64))
    A_bar, B_bar = discretize(A, B, dt, "zoh")
    assert_close(A_bar, torch.tensor([[math.exp(-dt)]], dtype=F64))
    assert_close(B_bar, torch.tensor([1 - math.exp(-dt)], dtype=F64))


def test_discretisations_of_two_states_match_hand_computation():
    dt, r3 = 0.3, math.sqrt(3)
    A, B = legs(2)  # [[-1, 0], [-r3, -2]], [1, r3]
    # bilinear: left = I - dt/2 A = [[p, 0], [q, s]] (lower triangular), inverse [[1/p, 0], [-q/(p s), 1/s]]
    p, q, s = 1 + dt / 2, r3 * dt / 2, 1 + dt
    inv = torch.tensor([[1 / p, 0], [-q / (p * s), 1 / s]], dtype=F64)
    right = torch.tensor([[1 - dt / 2, 0], [-r3 * dt / 2, 1 - dt]], dtype=F64)
    A_bar, B_bar = discretize(A, B, dt, "bilinear")
    assert_close(A_bar, inv @ right)
    assert_close(B_bar, inv @ torch.tensor([dt, r3 * dt], dtype=F64))
    # zoh: eigenvalues -1, -2; exp(dt A) = [[e1, 0], [-r3 (e1 - e2), e2]]; A^-1 = [[-1, 0], [r3 / 2, -1/2]]
    e1, e2 = math.exp(-dt), math.exp(-2 * dt)
    expA = torch.tensor([[e1, 0], [-r3 * (e1 - e2), e2]], dtype=F64)
    A_inv = torch.tensor([[-1, 0], [r3 / 2, -0.5]], dtype=F64)
    A_bar, B_bar = discretize(A, B, dt, "zoh")
    assert_close(A_bar, expA)
    assert_close(B_bar, A_inv @ (expA - torch.eye(2, dtype=F64)) @ B)


def test_discretize_accepts_one_step_per_channel():
    A, B = legs(3)
    dts = torch.tensor([0.01, 0.1, 1.0], dtype=F64)
    for method in DISCRETIZATIONS:
        A_bar, B_bar = discretize(A, B, dts, method)
        assert A_bar.shape == (3, 3, 3) and B_bar.shape == (3, 3)
        assert_close(A_bar[1], discretize(A, B, 0.1, method)[0])


def test_krylov_stacks_matrix_powers():
    torch.manual_seed(0)
    M, x = torch.randn(2, 4, 4, dtype=F64), torch.randn(2, 4, dtype=F64)
    out = krylov(M, x, 11)
    for j in range(11):
        assert_close(out[:, j], (torch.linalg.matrix_power(M, j) @ x.unsqueeze(-1)).squeeze(-1))


def test_legs_state_reconstructs_a_smooth_input():
    # HiPPO-LegS (time-varying step 1/k): after K samples of f on [0, 1] the state holds f's
    # Legendre coefficients, c_n = integral f(x) (2n+1)^{1/2} P_n(2x - 1) dx
    N, K = 12, 400
    A, B = legs(N)
    f = lambda x: np.sin(3 * x) + x ** 2  # noqa: E731
    xs = (np.arange(K) + 0.5) / K
    c = torch.zeros(N, dtype=F64)
    for k in range(1, K + 1):
        A_bar, B_bar = discretize(A, B, 1.0 / k, "bilinear")
        c = A_bar @ c + B_bar * f(xs[k - 1])
    basis = np.stack([np.sqrt(2 * n + 1) * legendre.legval(2 * xs - 1, np.eye(N)[n]) for n in range(N)])
    assert np.abs(c.numpy() - (basis * f(xs)).mean(1)).max() < 2e-3
    assert np.abs(c.numpy() @ basis - f(xs)).max() < 5e-3


@st.composite
def problems(draw):
    B, D, N = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    L = draw(st.sampled_from([1, 2, 5, 17, 63, 64, 65]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    A, Bc = legs(N)
    dt = torch.exp(torch.empty(D, dtype=F64).uniform_(math.log(1e-3), math.log(0.5), generator=g))
    A_bar, B_bar = discretize(A, Bc, dt, draw(st.sampled_from(DISCRETIZATIONS)))
    leaves = [A_bar.requires_grad_(), B_bar.requires_grad_(),
              torch.randn(D, N, generator=g, dtype=F64, requires_grad=True),
              torch.randn(B, L, D, generator=g, dtype=F64, requires_grad=True)]
    state = torch.randn(B, D, N, generator=g, dtype=F64, requires_grad=True) if draw(st.booleans()) else None
    return leaves, state


@settings(deadline=None, max_examples=30)
@given(problems())
def test_fft_convolution_matches_recurrence_with_gradients(problem):
    (A_bar, B_bar, C, u), state = problem
    inputs = [t for t in (A_bar, B_bar, C, u, state) if t is not None]
    ref = hippo_ssm(u, A_bar, B_bar, C, state, "sequential")
    out = hippo_ssm(u, A_bar, B_bar, C, state, "fft")
    for a, b in zip(out, ref):
        assert_close(a, b)
    g = torch.Generator().manual_seed(1)
    cotangents = [torch.randn(o.shape, generator=g, dtype=F64) for o in ref]
    grads = (torch.autograd.grad(o, inputs, cotangents, allow_unused=True, materialize_grads=True) for o in (out, ref))
    for a, b in zip(*grads):
        assert_close(a, b)


@pytest.mark.parametrize("discretization", DISCRETIZATIONS)
@pytest.mark.parametrize("shared_dt", [False, True])
def test_module_step_loop_equals_forward_and_methods_agree(discretization, shared_dt):
    torch.manual_seed(0)
    m = HiPPOSSM(5, 8, discretization, shared_dt=shared_dt).double()
    x = torch.randn(2, 17, 5, dtype=F64)
    y, S = m(x, return_state=True)
    ys, state = step_outputs(m, x)
    assert_close(ys, y)
    assert_close(state, S)
    m.method = "sequential"
    assert_close(m(x), y)
    y2, _ = m(x[:, 9:], m(x[:, :9], return_state=True)[1], return_state=True)  # a split sequence continues
    assert_close(y2, y[:, 9:])


def test_module_trains_its_steps_and_readout():
    torch.manual_seed(0)
    m = HiPPOSSM(3, 4)
    m(torch.randn(2, 9, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (m.log_dt, m.C, m.skip))


def test_spiking_readout_is_the_twin_readout_spiked_and_its_projection_accumulates():
    torch.manual_seed(0)
    twin = HiPPOSSM(4, 6).double()
    spiking = HiPPOSSM(4, 6, neuron=nt.LIF(0.0, 0.1, "none", "ternary")).double()
    spiking.load_state_dict(twin.state_dict())
    x = torch.randn(2, 11, 4, dtype=F64)
    seen = []
    twin.out.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    spiking.out.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    twin(x), spiking(x)
    assert not twin.spiking and spiking.spiking
    assert torch.equal(seen[1], nt.spikes.ternary(seen[0], (-0.1, 0.1)))
    with count(spiking) as c:
        spiking(x)
    assert c.layers["out"]["macs"] == 0 and c.layers["out"]["acs"] > 0
    assert c.layers["fire"]["neuron_updates"] == 2 * 11 * 4
    y, S = spiking(x, return_state=True)
    assert_close(step_outputs(spiking, x)[0], y)
    spiking.method = "sequential"
    assert (spiking(x) != y).any(-1).double().mean() <= 0.05  # tokens where fft and recurrence differ by a spike


def test_spiking_readout_passes_surrogate_gradients_to_every_parameter():
    torch.manual_seed(0)
    m = HiPPOSSM(3, 4, neuron=nt.LIF(0.0, 0.2, "none", "binary"))
    m(torch.randn(2, 9, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_spiking_readout_refuses_a_stateful_neuron():
    with pytest.raises(TypeError, match="memoryless"):
        HiPPOSSM(3, 4, neuron=nt.LIF(0.9))


@pytest.mark.parametrize("method", ["fft", "sequential"])
def test_accounting_reports_own_work(method):
    B, L, D, N = 2, 16, 3, 4
    m = HiPPOSSM(D, N, method=method)
    with count(m) as c:
        m(torch.randn(B, L, D))
    seq = D * N ** 3 + B * L * D * (N * N + 2 * N + 1)
    fft = D * N ** 3 + D * (N ** 3 * 4 + L * N * N + L * N) + (D + 2 * B * D) * 2 * L * 5 + B * D * (5 * L + 4)
    out = B * L * D * D  # the output projection, an nn.Linear child
    assert c.totals["macs"] == (seq if method == "sequential" else fft) + out
    assert c.totals["state_updates"] == B * L * D * N


def test_bad_inputs_raise_clear_errors():
    A, B = legs(3)
    with pytest.raises(ValueError, match="A must be square"):
        discretize(A[:2], B, 0.1)
    with pytest.raises(ValueError, match="B must have shape"):
        discretize(A, B[:2], 0.1)
    with pytest.raises(ValueError, match="dt must be > 0"):
        discretize(A, B, 0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        discretize(A, B, 0.1, "euler")
    m = HiPPOSSM(4, 3)
    with pytest.raises(ValueError, match="x must have between 3 and 3 dimensions"):
        m(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="at least one token"):
        m(torch.zeros(2, 0, 4))
    with pytest.raises(ValueError, match="4 channels"):
        m(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"state must have shape \(2, 4, 3\)"):
        m(torch.zeros(2, 5, 4), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match=r"C must have shape \(4, 3\)"):
        hippo_ssm(torch.zeros(1, 5, 4), *m.gains(), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="discretization must be one of"):
        HiPPOSSM(4, discretization="euler")
    with pytest.raises(ValueError, match="dt_range"):
        HiPPOSSM(4, dt_range=(0.0, 0.1))
