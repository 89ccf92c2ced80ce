import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken import LIF, ResonateFire
from neurotoken.kernels import lif as fused_lif
from neurotoken.neurons import NPEParams, NPEState, npe_multistep
from neurotoken.spikes import Bernoulli, MultiLevel
from neurotoken.surrogate import Atan, FastSigmoid, Sigmoid, StraightThrough, Triangle

needs_numba = pytest.mark.skipif(not fused_lif.available(), reason="numba is not installed")
SURROGATES = [Sigmoid(3.0), Atan(2.0), Triangle(0.7), FastSigmoid(5.0), StraightThrough(0.5)]
SPIKES = ["binary", "ternary", MultiLevel(4)]


def run(backend, x, reset, spike, surrogate, beta, threshold, state):
    """Spikes, final state and the gradients of a loss on both w.r.t. x, beta, threshold, h0, s0."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, beta, threshold, *state)]
    x, beta, threshold, h0, s0 = leaves
    p = NPEParams(beta, threshold, reset, LIF(spike=spike).spike, surrogate)
    s, h = npe_multistep(x, p, NPEState(h0, s0), backend)
    weights = torch.linspace(-1.0, 1.0, s.numel()).view_as(s)
    ((s * weights).sum() + 0.3 * (h * h.tanh()).sum()).backward()
    return s.detach(), h.detach(), [t.grad for t in leaves]


def assert_fused_matches_sequential(x, reset, spike, surrogate, beta, threshold, state):
    s_ref, h_ref, g_ref = run("sequential", x, reset, spike, surrogate, beta, threshold, state)
    s, h, g = run("fused", x, reset, spike, surrogate, beta, threshold, state)
    assert (s != s_ref).float().mean() <= 1e-4
    torch.testing.assert_close(h, h_ref)
    for name, a, b in zip(("x", "beta", "threshold", "h0", "s0"), g, g_ref):
        b = torch.zeros_like(a) if b is None else b  # the zero reset does not differentiate s0
        # a scalar beta/theta gradient sums T x N float32 terms in another order: its error grows
        # like sqrt(T N) ulps (seen: 7e-4 relative at T N = 44,000)
        tol = 1e-4 * max(1.0, (x.numel() / a.numel()) ** 0.5 / 10)
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"d/d{name}: {m}")


def inputs(T, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = 1.2 * torch.randn(T, *shape, generator=g)
    beta = 0.05 + 0.9 * torch.rand(shape[-1], generator=g)
    threshold = 0.5 + torch.rand(shape[-1], generator=g)
    h0 = torch.randn(shape, generator=g)
    return x, beta, threshold, (h0, (h0 >= threshold).float())


@needs_numba
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("spike", SPIKES, ids=["binary", "ternary", "multilevel"])
def test_fused_matches_sequential_for_every_reset_and_spike(reset, spike):
    x, beta, threshold, state = inputs(17, (3, 63), seed=0)
    assert_fused_matches_sequential(x, reset, spike, Atan(2.0), beta, threshold, state)


@needs_numba
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
def test_fused_matches_sequential_for_every_surrogate(surrogate):
    x, beta, threshold, state = inputs(17, (3, 63), seed=0)
    assert_fused_matches_sequential(x, "subtract", "binary", surrogate, beta, threshold, state)


@needs_numba
@pytest.mark.slow  # each combination compiles its own kernels (seconds each without numba's disk cache)
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("spike", SPIKES, ids=["binary", "ternary", "multilevel"])
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
def test_fused_matches_sequential_for_every_reset_spike_and_surrogate(reset, spike, surrogate):
    x, beta, threshold, state = inputs(17, (3, 63), seed=0)
    assert_fused_matches_sequential(x, reset, spike, surrogate, beta, threshold, state)


@needs_numba
@settings(max_examples=20, deadline=None)
@given(T=st.sampled_from([1, 2, 17, 40]), shape=st.sampled_from([(1,), (63,), (2, 5), (2, 3, 17), (1100,)]),
       reset=st.sampled_from(["subtract", "zero", "none"]), spike=st.sampled_from(SPIKES),
       scalar=st.booleans(), seed=st.integers(0, 99))
def test_fused_matches_sequential_over_random_shapes(T, shape, reset, spike, scalar, seed):
    x, beta, threshold, state = inputs(T, shape, seed)
    if scalar:  # one learnable beta and threshold shared by every neuron
        beta, threshold = beta[0], threshold[0]
    assert_fused_matches_sequential(x, reset, spike, Atan(2.0), beta, threshold, state)


@needs_numba
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_the_first_step_reads_the_given_spikes_not_ones_recomputed_from_h0(reset):
    # later steps recompute s_{t-1} from h_{t-1}; s0 is the caller's and need not be spike(h0)
    x, beta, threshold, (h0, s0) = inputs(5, (2, 63), seed=4)
    assert_fused_matches_sequential(x, reset, "binary", Atan(2.0), beta[0], threshold[0], (h0, 1 - s0))


@needs_numba
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_fused_forward_continues_from_returned_state(reset):
    x = 1.5 * torch.randn(40, 2, 63, generator=torch.Generator().manual_seed(3))
    lif = LIF(beta=0.9, reset=reset, spike="ternary", backend="fused")
    _, state = lif(x[:25], return_state=True)
    assert torch.equal(torch.cat([lif(x[:25]), lif(x[25:], state)]), lif(x))
    assert torch.equal(lif(x), LIF(beta=0.9, reset=reset, spike="ternary", backend="sequential")(x))


@needs_numba
def test_learnable_per_channel_beta_and_threshold_gradients_match_sequential():
    x = (1.3 * torch.randn(17, 4, 63, generator=torch.Generator().manual_seed(4))).requires_grad_()
    grads = []
    for backend in ("sequential", "fused"):
        lif = LIF(beta=torch.linspace(0.2, 0.95, 63), threshold=torch.linspace(0.5, 1.5, 63),
                  learn_beta=True, learn_threshold=True, backend=backend)
        s, state = lif(x, return_state=True)
        (s.sum() + state.h.square().sum()).backward()
        grads.append((x.grad.clone(), lif.beta.grad, lif.threshold.grad))
        x.grad = None
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_auto_picks_fused_only_where_it_applies(monkeypatch):
    x32 = torch.zeros(3, 2)
    backend = lambda module, x: module._backend(x, module.params())  # noqa: E731
    fused = "fused" if fused_lif.available() else "sequential"
    assert backend(LIF(), x32) == fused
    assert backend(LIF(reset="none"), x32) == ("fused" if fused_lif.available() else "scan")
    assert backend(LIF(), x32.double()) == "sequential"
    assert backend(LIF(spike=Bernoulli()), x32) == "sequential"
    assert backend(LIF(feedback=torch.eye(2)), x32) == "sequential"
    assert backend(ResonateFire(), x32) == "sequential"
    monkeypatch.setattr(fused_lif, "available", lambda: False)
    assert backend(LIF(), x32) == "sequential"


def test_fused_falls_back_to_the_reference_with_a_warning_without_numba(monkeypatch):
    monkeypatch.setattr(fused_lif, "available", lambda: False)
    x = torch.randn(9, 2, 5, generator=torch.Generator().manual_seed(5))
    with pytest.warns(RuntimeWarning, match="numba is not installed"):
        s = LIF(backend="fused")(x)
    assert torch.equal(s, LIF(backend="sequential")(x))


def test_fused_warns_and_falls_back_for_stochastic_spikes():
    with pytest.warns(RuntimeWarning, match="not deterministic|numba is not installed"):
        LIF(spike="bernoulli", backend="fused")(torch.zeros(4, 3))


def test_importing_neurons_does_not_import_numba():
    code = "import sys, neurotoken.neurons; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_numba
def test_a_fused_kernel_leaves_torch_thread_count_alone():
    # numba's OpenMP pool start (first kernel in a process) resets the process-wide OpenMP thread
    # count that torch reads; a fresh interpreter sees that first start
    code = ("import torch, neurotoken as nt; torch.set_num_threads(1); "
            "nt.LIF(backend='fused')(torch.rand(4, 2, 4096)); print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


# ---- surrogates carry their own kernel formula ---------------------------------------------------

import functools  # noqa: E402

import numpy as np  # noqa: E402

from neurotoken import surrogate as sg  # noqa: E402


@sg.dataclass(frozen=True)
class Gaussian(sg.Surrogate):
    """A surrogate defined in one class only: dH/dx := exp(-x^2 / (2 s^2)) / (s sqrt(2 pi))."""

    sigma: float = 0.5

    def primitive(self, x):
        return 0.5 * (1 + torch.erf(x / (self.sigma * 2 ** 0.5)))

    @staticmethod
    def formula(x, w):
        return exp(-(x * x) / (2 * w * w)) / (w * 2.5066282746310002)


exp = sg.exp


class OnlyGrad(sg.Atan):
    """An old-style subclass: its own grad, no formula of its own."""

    def grad(self, x):
        return torch.ones_like(x)


class NoFormula(sg.Surrogate):
    def grad(self, x):
        return torch.ones_like(x)


@functools.cache
def _formula_kernel(cls):
    """A compiled loop applying cls's kernel formula to every element (compiled once per class)."""
    from numba import njit

    from neurotoken.kernels.lif_numba import formula

    grad = formula(cls)

    @njit(cache=True)
    def apply(v, w):
        return [grad(v[i], w) for i in range(v.size)]
    return apply


@needs_numba
@settings(max_examples=30, deadline=None)
@given(x=st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=20), w=st.floats(0.0625, 30, width=32),
       cls=st.sampled_from([*sg.SURROGATES.values(), Gaussian]))
def test_the_compiled_float32_formula_matches_the_torch_grad(x, w, cls):
    got = _formula_kernel(cls)(np.array(x, dtype=np.float32), np.float32(w))
    assert all(type(g) is float for g in got)  # numba returns float32 scalars as Python floats
    expected = cls(w).grad(torch.tensor(x, dtype=torch.float32))
    torch.testing.assert_close(torch.tensor(got), expected, rtol=1e-5, atol=1e-6)


@needs_numba
def test_a_new_surrogate_is_one_class_and_the_fused_kernel_runs_it():
    assert fused_lif.unsupported(torch.zeros(2, 3), NPEParams(0.9, 1.0, surrogate=Gaussian())) is None
    x, beta, threshold, state = inputs(17, (3, 63), seed=2)
    assert_fused_matches_sequential(x, "subtract", "binary", Gaussian(0.4), beta, threshold, state)


@pytest.mark.parametrize("surrogate, match", [(OnlyGrad(), "OnlyGrad overrides grad"),
                                              (NoFormula(), "NoFormula has no kernel formula")])
def test_a_surrogate_without_a_kernel_formula_falls_back_with_a_reason(surrogate, match):
    with pytest.warns(RuntimeWarning, match=match):
        lif = LIF(surrogate=surrogate)
    x = torch.rand(5, 2, 3, requires_grad=True)
    assert lif._backend(x, lif.params()) == "sequential"
    lif(x).sum().backward()  # through the surrogate's own grad
    assert x.grad.abs().sum() > 0


def test_a_formula_without_source_falls_back_with_a_reason():
    namespace = {"Surrogate": sg.Surrogate, "dataclass": sg.dataclass}
    exec("@dataclass(frozen=True)\nclass Typed(Surrogate):\n    w: float = 1.0\n"
         "    formula = staticmethod(lambda x, w: x * 0 + w)\n", namespace)
    with pytest.warns(RuntimeWarning, match="source of Typed.formula is not available"):
        LIF(surrogate=namespace["Typed"]())


FAST_BF16 = {("subtract", "binary"), ("zero", "ternary"), ("none", "multilevel")}  # each compiles its own kernels


@needs_numba
@pytest.mark.parametrize("reset, spike", [
    pytest.param(r, k, marks=() if (r, k) in FAST_BF16 else pytest.mark.slow, id=f"{r}-{k}")
    for r in ("subtract", "zero", "none") for k in ("binary", "ternary", "multilevel")])
def test_bf16_states_keep_spikes_and_final_state_exact_and_gradients_close(reset, spike):
    x = (1.3 * torch.randn(17, 4, 63, generator=torch.Generator().manual_seed(5))).requires_grad_()
    outs = []
    for backend, state_dtype in (("sequential", torch.float32), ("fused", torch.bfloat16)):
        lif = LIF(beta=torch.linspace(0.2, 0.95, 63), threshold=torch.linspace(0.5, 1.5, 63), reset=reset,
                  spike=MultiLevel(4) if spike == "multilevel" else spike, learn_beta=True, learn_threshold=True, backend=backend, state_dtype=state_dtype)
        s, state = lif(x, return_state=True)
        ((s * torch.linspace(-1, 1, 63)).sum() + state.h.square().sum()).backward()
        outs.append((s.detach(), state.h.detach(), x.grad.clone(), lif.beta.grad, lif.threshold.grad))
        x.grad = None
    (s, h, *grads), (s_ref, h_ref, *grads_ref) = outs
    assert torch.equal(s, s_ref) and torch.equal(h, h_ref)  # the forward integrates in float32
    for g, ref in zip(grads, grads_ref):  # the surrogate reads 8-bit-mantissa states
        assert (g - ref).norm() <= 1e-2 * ref.norm()


@needs_numba
def test_bf16_states_are_the_float32_states_rounded_to_nearest_even():
    x = 1.3 * torch.randn(9, 2, 70, generator=torch.Generator().manual_seed(6))
    x[0, 0, :4] = torch.tensor([1.00390625, 1.01171875, -2.00781250, 0.0])  # ties: 1 + 2^-8, 1 + 3 2^-8, ...
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        LIF(beta=0.5, backend="fused", state_dtype=torch.bfloat16)(x.clone().requires_grad_())
    states = [t for t in saved if t.dtype == torch.bfloat16]
    _, h = npe_multistep(x, NPEParams(0.5, 1.0), None, "sequential")
    assert len(states) == 1 and torch.equal(states[0], h.to(torch.bfloat16))


@needs_numba
@pytest.mark.parametrize("reset, learn, state_dtype, expected", [
    ("subtract", False, torch.float32, 4.0),  # the states; each spike is recomputed from its state
    ("subtract", False, torch.bfloat16, 2.0),  # the subtract reset's backward never reads a spike
    ("zero", False, torch.bfloat16, 3.0),  # bf16 states + int8 spikes (a rounded state may not give them)
    ("subtract", True, torch.bfloat16, 3.0)])  # the beta, theta gradients read the spikes
def test_fused_lif_saves_states_and_only_the_spikes_backward_reads(reset, learn, state_dtype, expected):
    from neurotoken.bench import saved_bytes_per_neuron_step

    lif = LIF(beta=0.8, reset=reset, learn_beta=learn, backend="fused", state_dtype=state_dtype)
    assert saved_bytes_per_neuron_step(lif, torch.randn(8, 3, 40)) == expected
