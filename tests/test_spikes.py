import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken import spikes
from neurotoken.surrogate import Atan, Sigmoid, Triangle

H = torch.tensor([-2.0, 0.0, 0.999, 1.0, 1.5, 2.0, 3.0, 4.0])


def test_binary_hand_values_fire_at_threshold():
    assert spikes.binary(H, 1.0).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert spikes.binary(H, 2.0).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]


def test_ternary_hand_values_at_both_thresholds():
    assert spikes.ternary(H, (0.0, 2.0)).tolist() == [-1, -1, 0, 0, 0, 1, 1, 1]
    assert spikes.ternary(torch.tensor([-1.0, -0.5, 0.5, 1.0]), (-1.0, 1.0)).tolist() == [-1, 0, 0, 1]


def test_multilevel_counts_thresholds_reached():
    assert spikes.multilevel(H, (1.0, 2.0, 3.0)).tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert spikes.multilevel(H, (0.5,)).tolist() == [0, 0, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("surrogate", [Atan(), Sigmoid(7.0), Triangle(0.5)], ids=repr)
def test_binary_backward_is_surrogate_derivative(surrogate):
    h = torch.linspace(-2, 3, 41, requires_grad=True)
    theta = torch.tensor(0.7, requires_grad=True)
    s = spikes.binary(h, theta, surrogate)
    g = torch.randn(41)
    s.backward(g)
    torch.testing.assert_close(h.grad, g * surrogate.grad(h.detach() - 0.7))
    torch.testing.assert_close(theta.grad, -(g * surrogate.grad(h.detach() - 0.7)).sum())


def test_ternary_and_multilevel_backward_sum_surrogates():
    sg = Triangle(1.0)
    h = torch.linspace(-3, 4, 71, dtype=torch.float64, requires_grad=True)
    spikes.ternary(h, (-1.0, 1.0), sg).sum().backward()
    torch.testing.assert_close(h.grad, sg.grad(h.detach() - 1) + sg.grad(-1 - h.detach()))
    h.grad = None
    spikes.multilevel(h, (1.0, 2.0, 3.0), sg).sum().backward()
    torch.testing.assert_close(h.grad, sum(sg.grad(h.detach() - t) for t in (1.0, 2.0, 3.0)))


def test_gradcheck_against_surrogate_primitive():
    # the backward of the spike equals the true gradient of the smooth primitive
    sg = Sigmoid(3.0)
    h = torch.randn(20, dtype=torch.float64, requires_grad=True)
    (gs,) = torch.autograd.grad(spikes.multilevel(h, (0.0, 1.0), sg).sum(), h)
    (gp,) = torch.autograd.grad((sg.primitive(h) + sg.primitive(h - 1.0)).sum(), h)
    torch.testing.assert_close(gs, gp)


def test_bernoulli_is_seeded_and_has_sigmoid_rate():
    h = torch.full((200_000,), 1.5)
    g = torch.Generator().manual_seed(3)
    s1 = spikes.bernoulli(h, 1.0, generator=g)
    s2 = spikes.bernoulli(h, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)
    assert set(s1.unique().tolist()) <= {0.0, 1.0}
    p = torch.sigmoid(torch.tensor(0.5)).item()
    sigma = (p * (1 - p) / h.numel()) ** 0.5
    assert abs(s1.mean().item() - p) < 4 * sigma


def test_bernoulli_gradient_options():
    h = torch.linspace(-2, 2, 9, requires_grad=True)
    spikes.bernoulli(h, 0.5, generator=torch.Generator().manual_seed(0), surrogate=Atan()).sum().backward()
    torch.testing.assert_close(h.grad, Atan().grad(h.detach() - 0.5))
    h.grad = None
    spikes.bernoulli(h, 0.5, generator=torch.Generator().manual_seed(0), grad="mean").sum().backward()
    p = torch.sigmoid(h.detach() - 0.5)
    torch.testing.assert_close(h.grad, p * (1 - p))


@settings(deadline=None, max_examples=50)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
       st.lists(st.floats(-5, 5), min_size=1, max_size=5, unique=True))
def test_multilevel_equals_count_of_reached_thresholds(values, thresholds):
    thresholds = sorted(thresholds)
    h = torch.tensor(values, dtype=torch.float64)
    expected = [sum(v >= t for t in thresholds) for v in values]
    assert spikes.multilevel(h, thresholds).tolist() == expected


def test_spike_kinds_scale_with_one_threshold():
    sg = Atan()
    assert spikes.Ternary()(H, 1.0, sg).tolist() == spikes.ternary(H, (-1.0, 1.0)).tolist()
    assert spikes.MultiLevel(4)(H, 1.0, sg).tolist() == spikes.multilevel(H, (1.0, 2.0, 3.0)).tolist()
    assert spikes.MultiLevel(4).bits == 2 and spikes.Ternary.bits == 2 and spikes.Binary.bits == 1


@pytest.mark.parametrize("call, match", [
    (lambda: spikes.binary([1.0]), "h must be a torch.Tensor"),
    (lambda: spikes.ternary(H, (1.0, -1.0)), "thresholds must be strictly increasing"),
    (lambda: spikes.ternary(H, (1.0,)), r"thresholds must be \(theta_minus, theta_plus\)"),
    (lambda: spikes.multilevel(H, (2.0, 1.0)), "thresholds must be strictly increasing"),
    (lambda: spikes.multilevel(H, ()), "thresholds must hold at least 1"),
    (lambda: spikes.bernoulli(H, grad="bogus"), "grad must be one of"),
    (lambda: spikes.resolve_spike("trinary"), "unknown spike 'trinary'.*ternary"),
    (lambda: spikes.MultiLevel(1), "levels must be >= 2"),
])
def test_bad_input_is_rejected_with_argument_name(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("fn", [spikes.binary, spikes.bernoulli, spikes.ternary, spikes.multilevel,
                                lambda h: spikes.bernoulli(h, grad="mean")])
def test_a_nan_membrane_spikes_nan_not_a_silent_zero(fn):
    h = torch.tensor([float("nan"), -5.0, 5.0, float("inf")], requires_grad=True)
    s = fn(h)
    assert s[0].isnan() and not s[1:].isnan().any()
    s.sum().backward()
    assert h.grad[1:3].isfinite().all()


@pytest.mark.parametrize("fn", [spikes.binary, spikes.bernoulli])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_threshold_is_refused(fn, bad):
    with pytest.raises(ValueError, match="threshold must be finite"):
        fn(torch.zeros(3), threshold=bad)


@pytest.mark.parametrize("fn", [spikes.binary, spikes.bernoulli, spikes.ternary, spikes.multilevel])
def test_complex_membranes_are_refused(fn):
    with pytest.raises(TypeError, match="h must be a real tensor"):
        fn(torch.zeros(3, dtype=torch.complex64))


def test_numpy_thresholds_are_numbers():
    import numpy as np
    assert spikes.binary(torch.tensor([0.5, 2.0]), threshold=np.float32(1.0)).tolist() == [0.0, 1.0]


@settings(deadline=None, max_examples=60)
@given(st.lists(st.one_of(st.floats(allow_nan=False, width=32), st.sampled_from([0.0, -0.0, 1e-45, -1e-45])),
                min_size=1, max_size=40))
def test_binary_forward_is_exactly_the_step_and_bernoulli_exactly_u_below_sigma(values):
    h = torch.tensor(values, dtype=torch.float32)
    s = spikes.binary(h, threshold=0.0)
    assert torch.equal(s, (h >= 0).float()) and not s.signbit().any()
    g = torch.Generator().manual_seed(len(values))
    b = spikes.bernoulli(h, threshold=0.0, generator=g)
    u = torch.rand(h.shape, generator=torch.Generator().manual_seed(len(values)))
    assert torch.equal(b, (u < torch.sigmoid(h)).float()) and not b.signbit().any()


def test_spike_config_names_spike_for_a_non_spike():
    with pytest.raises(TypeError, match="spike must be a spike kind"):
        spikes.spike_config(3)
    assert spikes.spike_config("multilevel") == {"name": "multilevel", "levels": 4}
