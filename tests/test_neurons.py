import math

import pytest
import torch

from neurotoken import LIF, ResonateFire
from neurotoken.neurons import NPEParams, NPEState, npe_step
from neurotoken.surrogate import Atan, Triangle


def hand_lif(x, beta, theta, reset):
    """Eq. (9)-(10) unrolled by hand with Python floats, one neuron."""
    h, s, out = 0.0, 0.0, []
    for xt in x:
        if reset == "subtract":
            h = beta * h + xt - theta * s
        elif reset == "zero":
            h = beta * h * (s == 0) + xt
        else:
            h = beta * h + xt
        s = float(h >= theta)
        out.append(s)
    return out


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_lif_matches_hand_unrolled_eq_9_10(reset):
    torch.manual_seed(0)
    x = torch.rand(63, 5, dtype=torch.float64) * 0.8
    s = LIF(beta=0.85, threshold=1.0, reset=reset)(x)
    for n in range(5):
        assert s[:, n].tolist() == hand_lif(x[:, n].tolist(), 0.85, 1.0, reset)


def test_lif_hand_computation_small():
    # beta=0.5, theta=1: h = 0.6, 0.9, 1.05 (fires), then 0.525+0.6-1 = 0.125
    s = LIF(beta=0.5, threshold=1.0)(torch.tensor([[0.6], [0.6], [0.6], [0.6]]))
    assert s.flatten().tolist() == [0, 0, 1, 0]


def test_ternary_subtract_reset_restores_charge_of_negative_spike():
    lif = LIF(beta=1.0, threshold=1.0, spike="ternary")
    s, state = lif(torch.tensor([[-1.2], [0.0], [0.0]]), return_state=True)
    assert s.flatten().tolist() == [-1, 0, 0]  # -1.2 fires -1, then +theta brings h to -0.2
    assert state.h.item() == pytest.approx(-0.2)


def test_multilevel_subtract_reset_removes_k_thresholds():
    lif = LIF(beta=1.0, threshold=1.0, spike="multilevel")
    s, state = lif(torch.tensor([[2.5], [0.0]]), return_state=True)
    assert s.flatten().tolist() == [2, 0]
    assert state.h.item() == pytest.approx(0.5)


@pytest.mark.parametrize("spike", ["binary", "ternary", "multilevel"])
def test_reset_none_scan_backend_equals_sequential_forward_and_gradients(spike):
    torch.manual_seed(1)
    x = torch.randn(63, 4, 7, dtype=torch.float64, requires_grad=True)
    beta = torch.rand(7, dtype=torch.float64)
    outs, grads = [], []
    for backend in ("sequential", "scan"):
        lif = LIF(beta=beta, reset="none", spike=spike, backend=backend, learn_beta=True,
                  surrogate=Triangle(1.0)).double()
        s, state = lif(x, return_state=True)
        (s.sum(-1) * torch.arange(63.0, dtype=torch.float64)[:, None]).sum().backward()
        outs.append((s, state.h))
        grads.append((x.grad.clone(), lif.beta.grad.clone()))
        x.grad = None
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("spike", ["binary", "ternary", "multilevel"])
def test_step_loop_equals_forward(reset, spike):
    torch.manual_seed(2)
    x = torch.randn(17, 3, 6) * 1.5
    lif = LIF(beta=0.8, reset=reset, spike=spike)
    full = lif(x)
    state, steps = None, []
    for x_t in x:
        s_t, state = lif.step(x_t, state)
        steps.append(s_t)
    assert torch.equal(torch.stack(steps), full)


def test_forward_continues_from_returned_state():
    torch.manual_seed(3)
    x = torch.randn(40, 2, 5)
    lif = LIF(beta=0.9)
    _, state = lif(x[:25], return_state=True)
    assert torch.equal(torch.cat([lif(x[:25]), lif(x[25:], state)]), lif(x))


def test_feedback_matrix_theta_identity_equals_subtract_reset():
    torch.manual_seed(4)
    x = torch.rand(30, 2, 4) * 0.9
    ref = LIF(beta=0.9, threshold=0.8)(x)
    assert torch.equal(LIF(beta=0.9, threshold=0.8, feedback=0.8 * torch.eye(4))(x), ref)


def test_general_w_core_with_lateral_feedback_hand_computation():
    # R = [[1, 0.5], [0, 1]]: a spike of neuron 2 also lowers neuron 1 by 0.5
    p = NPEParams(decay=1.0, threshold=1.0, feedback=torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    h, s = npe_step(torch.zeros(2), torch.tensor([0.2, 1.0]), torch.zeros(2), p)
    assert s.tolist() == [0, 1]
    h, s = npe_step(h, torch.tensor([0.0, 0.0]), s, p)
    assert h.tolist() == pytest.approx([-0.3, 0.0])


def test_learnable_beta_and_threshold_receive_gradients():
    lif = LIF(beta=0.7, threshold=1.0, learn_beta=True, learn_threshold=True, surrogate=Atan())
    lif(torch.rand(10, 3, 4) * 2).sum().backward()
    assert lif.beta.grad is not None and lif.beta.grad.abs() > 0
    assert lif.threshold.grad is not None and lif.threshold.grad.abs() > 0


def _sine_drive(freq_hz, n=400, dt_ms=1.0, amp=0.05):
    t = torch.arange(n) * dt_ms / 1000.0
    return (amp * torch.sin(2 * math.pi * freq_hz * t))[:, None]


def test_resonate_fire_prefers_its_own_frequency():
    rf = ResonateFire(freq_hz=40.0, tau_ms=100.0, threshold=0.5)
    counts = {f: rf(_sine_drive(f)).sum().item() for f in (5.0, 40.0, 150.0)}
    assert counts[40.0] > 3 * max(counts[5.0], counts[150.0], 1)


def test_resonate_fire_state_rotates_by_hand():
    # no leak (tau huge), quarter-turn per step: z = 1, i, -1, -i ...
    rf = ResonateFire(freq_hz=250.0, tau_ms=1e12, dt_ms=1.0, threshold=10.0, reset="none")
    _, state = rf(torch.tensor([[1.0], [0.0], [0.0]]), return_state=True)
    torch.testing.assert_close(state.h, torch.tensor([-1.0 + 0.0j]), atol=1e-6, rtol=0)


def test_resonate_fire_scan_equals_sequential_and_step():
    torch.manual_seed(5)
    x = torch.randn(50, 2, 3)
    kw = dict(freq_hz=torch.tensor([10.0, 30.0, 80.0]), tau_ms=50.0, reset="none", threshold=0.3)
    seq = ResonateFire(backend="sequential", **kw)
    s_seq, st_seq = seq(x, return_state=True)
    s_scan, st_scan = ResonateFire(backend="scan", **kw)(x, return_state=True)
    torch.testing.assert_close(st_seq.h, st_scan.h, atol=1e-5, rtol=1e-5)
    assert (s_seq != s_scan).float().mean() <= 1e-2
    state = None
    for t in range(50):
        s_t, state = seq.step(x[t], state)
        assert torch.equal(s_t, s_seq[t])


def test_resonate_fire_learns_frequency_gradient():
    rf = ResonateFire(freq_hz=30.0, tau_ms=80.0, learn_dynamics=True, threshold=0.2)
    rf(_sine_drive(35.0, n=100, amp=0.1)).sum().backward()
    assert rf.freq_hz.grad is not None and torch.isfinite(rf.freq_hz.grad)


@pytest.mark.parametrize("make, match", [
    (lambda: LIF(beta=1.5), "beta must"),
    (lambda: LIF(beta=-0.1), "beta must"),
    (lambda: LIF(beta=torch.tensor([0.5, 1.2])), "beta must lie in"),
    (lambda: LIF(threshold=0.0), "threshold must be >"),
    (lambda: LIF(threshold=float("nan")), "threshold must be finite"),
    (lambda: LIF(reset="soft"), "reset must be one of"),
    (lambda: LIF(backend="cuda"), "backend must be one of"),
    (lambda: LIF(reset="subtract", backend="scan"), "backend='scan' is exact only for reset='none'"),
    (lambda: LIF(spike="quaternary"), "unknown spike"),
    (lambda: LIF(feedback=torch.eye(3), reset="zero"), "feedback"),
    (lambda: LIF(feedback=torch.ones(3, 2)), "feedback must be square"),
    (lambda: ResonateFire(tau_ms=0.0), "tau_ms"),
    (lambda: ResonateFire(dt_ms=-1.0), "dt_ms"),
])
def test_bad_constructor_arguments_are_rejected(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("backend", ["sequential", "fused", "scan"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_a_nan_input_propagates_to_nan_spikes_without_a_check(backend, reset, beta):
    if backend == "scan" and reset != "none":
        return
    x = torch.rand(7, 3, 5)
    x[2, 1, 4] = float("nan")
    s = LIF(beta=beta, reset=reset, backend=backend)(x)
    expected = torch.zeros_like(s, dtype=torch.bool)
    expected[2:, 1, 4] = True  # never a silent 0, from the step it enters on; other neurons untouched
    assert torch.equal(s.isnan(), expected)


def test_bad_inputs_are_rejected():
    lif = LIF()
    with pytest.raises(ValueError, match="at least one time step"):
        lif(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="x must have at least 1"):
        lif(torch.tensor(1.0))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        lif([[1.0]])


# ---- serialisable config -------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from neurotoken import spikes  # noqa: E402
from neurotoken.neurons import NEURONS, build_neuron  # noqa: E402

_SPIKES = st.sampled_from(["binary", "bernoulli", "ternary", {"name": "multilevel", "levels": 3}])
_SURROGATES = st.sampled_from(["atan", "sigmoid", {"name": "triangle", "width": 0.5}, "fast_sigmoid",
                               "straight_through"])
_FLOATS = st.floats(0.05, 0.95)


@st.composite
def _neurons(draw):
    common = dict(threshold=draw(st.one_of(st.floats(0.1, 3.0), st.lists(st.floats(0.1, 3.0), min_size=3,
                                                                        max_size=3).map(torch.tensor))),
                  spike=draw(_SPIKES), surrogate=draw(_SURROGATES), learn_threshold=draw(st.booleans()))
    if draw(st.booleans()):
        return ResonateFire(freq_hz=draw(st.floats(1.0, 400.0)), tau_ms=draw(st.floats(1.0, 200.0)),
                            learn_dynamics=draw(st.booleans()), **common)
    reset = draw(st.sampled_from(["subtract", "zero", "none"]))
    return LIF(beta=draw(_FLOATS), reset=reset, learn_beta=draw(st.booleans()), **common)


@settings(max_examples=40, deadline=None)
@given(_neurons())
def test_config_is_json_and_builds_an_equal_neuron(npe):
    import json
    config = npe.config()
    rebuilt = build_neuron(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(npe) and rebuilt.config() == config
    x = torch.randn(9, 2, 3, generator=torch.Generator().manual_seed(1))
    if not isinstance(npe.spike, spikes.Bernoulli):
        torch.testing.assert_close(rebuilt(x), npe(x))
    assert [n for n, _ in rebuilt.named_parameters()] == [n for n, _ in npe.named_parameters()]


def test_build_neuron_deep_copies_an_instance():
    lif = LIF(beta=0.5, learn_beta=True)
    copy = build_neuron(lif)
    assert copy is not lif and copy.beta is not lif.beta and copy.config() == lif.config()


def test_config_of_a_feedback_lif_round_trips():
    lif = LIF(feedback=torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    assert torch.equal(build_neuron(lif.config()).feedback, lif.feedback)


def test_config_leaves_out_a_bernoulli_generator():
    config = LIF(spike=spikes.Bernoulli(generator=torch.Generator(), grad="mean")).config()
    assert config["spike"] == {"name": "bernoulli", "grad": "mean"}


def test_an_unregistered_subclass_refuses_to_save_as_a_config():
    class MyLIF(LIF):
        pass
    with pytest.raises(ValueError, match="MyLIF is not a registered neuron.*LIF, ResonateFire"):
        MyLIF().config()
    assert set(NEURONS.names()) == {"LIF", "ResonateFire"}


@pytest.mark.parametrize("spec, error, match", [
    ("LIF", TypeError, "spec must be an NPE or its config dict"),
    ({"beta": 0.5}, ValueError, "spec needs a 'kind'"),
    ({"kind": "IF"}, ValueError, "unknown neuron 'IF'.*LIF, ResonateFire"),
    ({"kind": "LIF", "tau": 3}, ValueError, "LIF takes no option 'tau'"),
    ({"kind": "LIF", "spike": {"levels": 3}}, ValueError, "spike as a dict needs a 'name'"),
    ({"kind": "LIF", "spike": {"name": "binary", "levels": 3}}, ValueError, "'binary' takes no option 'levels'"),
    ({"kind": "LIF", "surrogate": {"name": "atan", "alpha": -1.0}}, ValueError, "Atan.alpha"),
    ({"kind": "LIF", "beta": 1.5}, ValueError, "beta"),
])
def test_build_neuron_refuses_bad_specs_naming_the_field(spec, error, match):
    with pytest.raises(error, match=match):
        build_neuron(spec)


# ---- clear refusals at the boundary --------------------------------------------------------------

@pytest.mark.parametrize("make", [LIF, ResonateFire])
def test_complex_input_is_refused_not_truncated(make):
    with pytest.raises(TypeError, match="x must be a real tensor, got torch.complex64"):
        make()(torch.ones(3, 2, dtype=torch.complex64))


def test_resonate_fire_refuses_frequencies_above_nyquist():
    with pytest.raises(ValueError, match=r"freq_hz must be <= 500.0, got 600.0"):
        ResonateFire(freq_hz=600.0, dt_ms=1.0)
    with pytest.raises(ValueError, match="freq_hz must lie in"):
        ResonateFire(freq_hz=[10.0, 300.0], dt_ms=2.0)  # Nyquist 250 Hz
    assert ResonateFire(freq_hz=500.0, dt_ms=1.0).freq_hz == 500.0


def test_numpy_numbers_are_accepted_as_parameters():
    import numpy as np
    lif = LIF(beta=np.float32(0.5), threshold=np.int64(2))
    assert lif.beta == 0.5 and lif.threshold == 2.0
    with pytest.raises(ValueError, match="beta must hold finite values"):
        LIF(beta=torch.tensor([0.5, float("nan")]))


@pytest.mark.parametrize("call, error, match", [
    (lambda: LIF(beta=torch.full((3,), 0.5))(torch.ones(2, 4, 5)), ValueError, "beta has 3 channels but x has 5"),
    (lambda: LIF(threshold=torch.ones(2))(torch.ones(2, 4, 5)), ValueError, "threshold has 2 channels"),
    (lambda: LIF()(torch.ones(2, 4, 5), NPEState(torch.zeros(4, 3), torch.zeros(4, 5))), ValueError,
     r"state.h must have shape \(4, 5\)"),
    (lambda: LIF()(torch.ones(2, 5), (torch.zeros(5),)), TypeError, "state must be an NPEState"),
])
def test_mismatched_channels_and_states_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("backend, reset", [("sequential", "subtract"), ("fused", "zero"), ("scan", "none"),
                                            ("auto", "none")])
def test_an_npe_forward_reads_no_tensor_values(monkeypatch, backend, reset):
    x = torch.randn(6, 2, 5)
    models = [LIF(reset=reset, backend=backend), ResonateFire(reset=reset, backend="sequential")]

    def sync(*args, **kwargs):
        raise AssertionError("a host sync in a forward pass")
    for name in ("__bool__", "item", "tolist", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    monkeypatch.setattr(torch, "equal", sync)
    for model in models:
        model(x, return_state=True)


@pytest.mark.parametrize("make, match", [
    (lambda: LIF(threshold="1"), "threshold must be a real number or a 1-D tensor"),
    (lambda: ResonateFire(freq_hz=None), "freq_hz must be a real number or a 1-D tensor"),
    (lambda: LIF(beta=True), "beta must be a real number, got bool"),
    (lambda: LIF(learn_beta="no"), "learn_beta must be a bool, got str"),
    (lambda: LIF(learn_threshold=1), "learn_threshold must be a bool, got int"),
    (lambda: ResonateFire(learn_dynamics="yes"), "learn_dynamics must be a bool, got str"),
])
def test_wrong_types_are_refused_by_name(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize("backend", ["auto", "sequential", "scan"])
def test_under_autocast_the_membrane_stays_float32(backend):
    lif = LIF(0.9, reset="none" if backend == "scan" else "subtract", backend=backend)
    x = torch.rand(4, 2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s, state = lif(torch.nn.functional.linear(x, torch.eye(8)), return_state=True)
    assert state.h.dtype == torch.float32 and s.dtype == torch.float32
    torch.testing.assert_close(s, lif(x.bfloat16().float()))
    assert lif(x.bfloat16()).dtype == torch.bfloat16  # outside autocast a bfloat16 input stays bfloat16
