"""The Triton LIF (backend="triton") equals the sequential reference: membranes and gradients
(assert_close), spikes within the mismatch budget; bf16 states with bit spikes keep backward lean."""

from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import neurotoken as nt
from neurotoken.neurons import NPEParams, npe_multistep
from neurotoken.spikes import resolve_spike

pytestmark = pytest.mark.usefixtures("triton_device")
T, N = 7, 300  # N spans a partial second block of 256 neurons
SPIKES = ("binary", "ternary", "multilevel")


def _run(backend, x, beta, threshold, reset, spike, surrogate, state_dtype=torch.float32):
    """Spikes, final state and the gradients in x, beta, threshold of a loss on both."""
    x, beta, threshold = (t.detach().clone().requires_grad_() for t in (x, beta, threshold))
    p = NPEParams(beta, threshold, reset, resolve_spike(spike), surrogate)
    s, h = npe_multistep(x, p, None, backend, all_states=False, state_dtype=state_dtype)
    h = h[-1]
    weights = torch.linspace(-1, 1, s.shape[-1], device=x.device)
    ((s * weights).sum() + h.square().sum()).backward()
    return s.detach(), h.detach(), x.grad, beta.grad, threshold.grad


def _inputs(device, seed=0, n=N):
    g = torch.Generator().manual_seed(seed)
    x = (1.3 * torch.randn(T, 2, n // 2, generator=g)).to(device)
    beta = torch.rand(n // 2, generator=g).mul(0.9).to(device)
    return x, beta, torch.tensor(0.7, device=device)


def _assert_matches(x, beta, threshold, reset, spike, surrogate, state_dtype=torch.float32, grad_tol=1e-4):
    got = _run("triton", x, beta, threshold, reset, spike, surrogate, state_dtype)
    want = _run("sequential", x, beta, threshold, reset, spike, surrogate)
    assert (got[0] != want[0]).float().mean() <= 1e-4
    assert_close(got[1], want[1])
    for g, w in zip(got[2:], want[2:]):
        assert (g - w).norm() <= grad_tol * w.norm() + 1e-5


@pytest.mark.parametrize("reset", nt.neurons.RESETS)
@pytest.mark.parametrize("spike", SPIKES)
def test_triton_lif_matches_sequential(triton_device, reset, spike):
    _assert_matches(*_inputs(triton_device), reset, spike, nt.surrogate.Atan())


@pytest.mark.parametrize("name", nt.surrogate.SURROGATES.names())
def test_triton_lif_reads_each_surrogate_formula(triton_device, name):
    _assert_matches(*_inputs(triton_device, seed=1), "subtract", "ternary", nt.surrogate.SURROGATES.get(name)())


@settings(max_examples=4, deadline=None)
@given(n=st.integers(1, 300), beta=st.floats(0.0, 1.0), threshold=st.floats(0.1, 2.0), seed=st.integers(0, 99))
def test_triton_lif_matches_sequential_on_random_shapes(triton_device, n, beta, threshold, seed):
    x = (torch.randn(T, n, generator=torch.Generator().manual_seed(seed)) * 1.5).to(triton_device)
    _assert_matches(x, torch.tensor(beta, device=triton_device), torch.tensor(threshold, device=triton_device),
                    "subtract", "binary", nt.surrogate.FastSigmoid())


def _saved_bytes_per_step(state_dtype, device, spike="binary"):
    """Bytes of the tensors a LIF layer keeps for backward with a time axis, per neuron-step."""
    x = torch.randn(T, 1000, device=device, requires_grad=True)
    sizes = []

    def pack(t):
        if t.dim() == 2 and t.shape[0] == T:
            sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        nt.LIF(0.8, 0.5, spike=spike, backend="triton", state_dtype=state_dtype)(x)
    return sum(sizes) / x.numel()


def test_triton_lif_saves_at_most_2_2_bytes_per_neuron_step_with_bf16_and_bit_spikes(triton_device):
    assert _saved_bytes_per_step(torch.float32, triton_device) == 4.0
    assert _saved_bytes_per_step(torch.bfloat16, triton_device) <= 2.2


@pytest.mark.parametrize("reset", nt.neurons.RESETS)
@pytest.mark.parametrize("spike", ["binary", "multilevel"])
def test_triton_lif_with_bf16_states_keeps_spikes_and_gradients(triton_device, reset, spike):
    _assert_matches(*_inputs(triton_device, seed=2), reset, spike, nt.surrogate.Atan(), torch.bfloat16,
                    grad_tol=5e-2)


def test_triton_lif_all_states_match_sequential_with_their_gradient(triton_device):
    x, beta, threshold = _inputs(triton_device, seed=3)
    outs = []
    for backend in ("triton", "sequential"):
        xb = x.clone().requires_grad_()
        p = NPEParams(beta, threshold, "zero", resolve_spike("binary"), nt.surrogate.Sigmoid())
        s, h = npe_multistep(xb, p, None, backend)
        (h.sin().sum() + s.sum()).backward()
        outs.append((s, h.detach(), xb.grad))
    assert torch.equal(outs[0][0], outs[1][0])
    assert_close(outs[0][1], outs[1][1])
    assert_close(outs[0][2], outs[1][2])


def test_lif_module_with_triton_backend_equals_sequential_and_steps(triton_device):
    x = torch.randn(T, 3, 40, device=triton_device)
    fast, ref = nt.LIF(0.9, 0.6, spike="ternary", backend="triton"), nt.LIF(0.9, 0.6, spike="ternary")
    s, state = fast(x, return_state=True)
    s_ref, state_ref = ref.to(triton_device)(x, return_state=True)
    assert (s != s_ref).float().mean() <= 1e-4
    assert_close(state.h, state_ref.h)
    stepped, st_ = [], None
    for x_t in x:
        y, st_ = fast.step(x_t, st_)
        stepped.append(y)
    assert torch.equal(torch.stack(stepped), s)


@dataclass(frozen=True)
class _Erf(nt.surrogate.Surrogate):
    width: float = 1.0

    @staticmethod
    def formula(x, w):
        return torch.special.erf(x) * w  # a torch call Triton cannot compile


def test_triton_lif_falls_back_with_a_warning_when_the_formula_does_not_compile(triton_device):
    x = torch.randn(T, 20, device=triton_device)
    lif = nt.LIF(surrogate=_Erf(), backend="triton")
    with pytest.warns(RuntimeWarning, match="does not compile for Triton"):
        s = lif(x)
    assert torch.equal(s, nt.LIF(surrogate=_Erf(), backend="sequential")(x))


def test_auto_takes_triton_on_cuda_only(triton_device):
    lif, x = nt.LIF(), torch.randn(T, 4, device=triton_device)
    cpu = "fused" if nt.kernels.lif.available() else "sequential"
    assert lif._backend(x, lif.params()) == ("triton" if triton_device.type == "cuda" else cpu)


def test_state_dtype_is_checked_and_saved_in_config():
    assert nt.neurons.build_neuron(nt.LIF(state_dtype="bfloat16").config()).state_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="state_dtype"):
        nt.LIF(state_dtype=torch.float16)
