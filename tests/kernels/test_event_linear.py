import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.kernels import event_linear as ev
from neurotoken.kernels.event_linear import EventLinear, dense_linear, event_linear

pytestmark = pytest.mark.skipif(not ev.available(), reason="numba is not installed")


def spikes(shape, rate, levels=(1.0,), dtype=torch.float32, seed=0):
    """A spike tensor: each entry non-zero with probability ``rate``, its value drawn from ``levels``."""
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor(levels, dtype=dtype)[torch.randint(len(levels), shape, generator=g)]
    return torch.where(torch.rand(shape, generator=g) < rate, values, torch.zeros((), dtype=dtype))


def grads(fn, x, weight, bias, g):
    """fn's output and its gradients w.r.t. x, weight, bias (None for a leaf that needs none)."""
    leaves = [t if t is None else t.detach().clone().requires_grad_(t.requires_grad) for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(g)
    return y.detach(), [None if t is None else t.grad for t in leaves]


def assert_event_matches_dense(x, weight, bias, g, **kw):
    y_ref, g_ref = grads(dense_linear, x, weight, bias, g)
    y, got = grads(lambda a, w, b: event_linear(a, w, b, **kw), x, weight, bias, g)
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(got, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


@settings(max_examples=25, deadline=None)
@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=3), k=st.integers(1, 70), n=st.integers(1, 40),
       rate=st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0]), double=st.booleans(), has_bias=st.booleans(),
       levels=st.sampled_from([(1.0,), (-1.0, 1.0), (1.0, 2.0, 3.0)]), input_grad=st.booleans())
def test_event_linear_matches_the_dense_reference(lead, k, n, rate, double, has_bias, levels, input_grad):
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(len(lead) + k + n)
    x = spikes((*lead, k), rate, levels, dtype).requires_grad_(input_grad)
    weight = torch.randn(n, k, generator=g, dtype=dtype).requires_grad_()
    bias = torch.randn(n, generator=g, dtype=dtype).requires_grad_() if has_bias else None
    assert_event_matches_dense(x, weight, bias, torch.randn(*lead, n, generator=g, dtype=dtype))


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 50), n=st.integers(1, 30),
       mask_rate=st.sampled_from([0.0, 0.05, 0.5, 1.0]), double=st.booleans())
def test_masked_input_gradient_is_the_dense_one_inside_the_mask_and_zero_outside(m, k, n, mask_rate, double):
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(m * k + n)
    x = spikes((m, k), 0.2, dtype=dtype).requires_grad_()
    weight = torch.randn(n, k, generator=g, dtype=dtype).requires_grad_()
    mask = torch.rand(m, k, generator=g) < mask_rate
    gy = torch.randn(m, n, generator=g, dtype=dtype)
    _, (gx_ref, gw_ref, _) = grads(dense_linear, x, weight, None, gy)
    _, (gx, gw, _) = grads(lambda a, w, b: event_linear(a, w, b, grad_mask=mask), x, weight, None, gy)
    torch.testing.assert_close(gx, gx_ref * mask)
    torch.testing.assert_close(gw, gw_ref)


def test_masked_input_gradient_is_fresh_memory_per_call():
    x, weight = spikes((6, 9), 0.3).requires_grad_(), torch.randn(5, 9, requires_grad=True)
    mask = torch.rand(6, 9, generator=torch.Generator().manual_seed(0)) < 0.5
    event_linear(x, weight, grad_mask=mask).sum().backward()
    first = x.grad
    x.grad = None
    event_linear(x, weight, grad_mask=~mask).sum().backward()
    assert (first[~mask] == 0).all() and (x.grad[mask] == 0).all()
    torch.testing.assert_close(first + x.grad, torch.ones(6, 5) @ weight.detach())


def test_gradcheck_in_float64():
    x = spikes((3, 7, 9), 0.3, (1.0, -1.0), torch.float64).requires_grad_()
    w = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(event_linear, (x, w, b))


def test_non_contiguous_and_stride_zero_inputs():
    x = spikes((4, 6, 10), 0.3)
    w = torch.randn(7, 10)
    torch.testing.assert_close(event_linear(x.transpose(0, 1), w), dense_linear(x.transpose(0, 1), w))
    direct = x[:1].expand(5, -1, -1, -1)
    torch.testing.assert_close(event_linear(direct, w), dense_linear(direct, w))


def test_nan_input_propagates_and_zeros_skip_infinite_weights():
    x = torch.tensor([[float("nan"), 0.0], [0.0, 1.0]])
    w = torch.tensor([[1.0, 2.0], [float("inf"), 3.0]])
    y = event_linear(x, w)
    assert torch.isnan(y[0]).all() and y[1].tolist() == [2.0, 3.0]


def test_refusals_name_the_argument():
    w = torch.randn(3, 4)
    for kw, name in [({"x": torch.randn(2, 5)}, "x must be"), ({"weight": torch.randn(3)}, "weight"),
                     ({"bias": torch.randn(4)}, "bias"), ({"grad_mask": torch.ones(2, 4)}, "grad_mask"),
                     ({"x": torch.randn(2, 4, dtype=torch.float16)}, "float32")]:
        args = {"x": torch.randn(2, 4), "weight": w, **kw}
        with pytest.raises((ValueError, TypeError), match=name):
            event_linear(**args)


@pytest.mark.parametrize("backend", ["auto", "dense", "event"])
def test_event_linear_module_matches_nn_linear_and_keeps_its_state_dict(backend):
    torch.manual_seed(0)
    layer = EventLinear(10, 6, backend=backend)
    reference = torch.nn.Linear(10, 6)
    reference.load_state_dict(layer.state_dict())
    x = spikes((3, 4, 10), 0.05)
    torch.testing.assert_close(layer(x), reference(x))
    assert f"backend='{backend}'" in repr(layer)


def test_auto_picks_the_event_path_below_the_crossover_and_dense_above(monkeypatch):
    calls = []
    monkeypatch.setattr(ev, "event_linear", lambda *a, **k: calls.append(1) or dense_linear(*a))
    rows = ev.MIN_ROWS
    layer = EventLinear(64, ev.MIN_MACS // (rows * 64))
    layer(spikes((rows, 64), ev.CROSSOVER / 4))
    assert calls and layer.rate < ev.CROSSOVER
    calls.clear()
    layer(spikes((rows, 64), min(1.0, 2 * ev.CROSSOVER)))
    assert not calls and layer.rate >= ev.CROSSOVER
    layer(torch.randn(rows, 64))
    assert not calls and layer.rate == 1.0


def test_auto_keeps_small_products_dense(monkeypatch):
    calls = []
    monkeypatch.setattr(ev, "event_linear", lambda *a, **k: calls.append(1) or dense_linear(*a))
    EventLinear(64, 8)(spikes((ev.MIN_ROWS, 64), 0.01))
    EventLinear(64, 2**20)(spikes((ev.MIN_ROWS // 2, 64), 0.01))
    assert not calls


def test_spike_rate_estimates_the_fraction_of_non_zeros():
    for rate in (0.0, 0.05, 0.3, 1.0):
        assert ev.spike_rate(spikes((64, 1024), rate)) == pytest.approx(rate, abs=0.02)


def test_auto_on_meta_reads_no_values_and_forced_event_falls_back_with_a_warning():
    layer = EventLinear(4, 3, device="meta")
    assert layer(torch.empty(2, 4, device="meta")).shape == (2, 3) and layer.rate is None
    forced = EventLinear(4, 3, backend="event").to(torch.bfloat16)
    with pytest.warns(RuntimeWarning, match="backend='event' cannot run"):
        assert forced(torch.ones(2, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EventLinear(4, 3, backend="dense").to(torch.bfloat16)(torch.ones(2, 4, dtype=torch.bfloat16))


def test_constructor_refusals_name_the_argument():
    for kw, name in [({"in_features": 0}, "in_features"), ({"out_features": -1}, "out_features"),
                     ({"bias": "no"}, "bias"), ({"backend": "sparse"}, "backend")]:
        with pytest.raises((ValueError, TypeError), match=name):
            EventLinear(**{"in_features": 4, "out_features": 3, **kw})


def test_from_linear_shares_the_parameters_and_draws_no_random_numbers():
    linear = torch.nn.Linear(6, 4)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    layer = EventLinear.from_linear(linear, backend="event")
    assert torch.equal(torch.rand(3), expected)
    assert layer.weight is linear.weight and layer.bias is linear.bias and layer.backend == "event"
    x = spikes((5, 6), 0.3)
    torch.testing.assert_close(layer(x), linear(x))
    assert EventLinear.from_linear(torch.nn.Linear(6, 4, bias=False)).bias is None
    with pytest.raises(TypeError, match="linear"):
        EventLinear.from_linear(torch.nn.Conv1d(6, 4, 1))


def _spiking_projections():
    from neurotoken import mixers, models

    return [  # (spiking module, its conventional twin, the attribute read by spikes)
        (lambda: mixers.SpikingSSM(8, 4), lambda: mixers.SpikingSSM(8, 4, neuron=None), "out"),
        (lambda: mixers.SpikingLRU(8, 4), lambda: mixers.SpikingLRU(8, 4, neuron=None), "out"),
        (lambda: mixers.RWKVTimeMix(8, neuron=mixers.memoryless()), lambda: mixers.RWKVTimeMix(8), "output"),
        (lambda: mixers.RWKVChannelMix(8, neuron=mixers.memoryless()), lambda: mixers.RWKVChannelMix(8), "value"),
        (lambda: mixers.SpikingAttention(8, 2, T=2), lambda: mixers.SoftmaxAttention(8, 2), "out"),
        (lambda: models.SNNClassifier(8, (6,), 3, T=2), lambda: models.SNNClassifier(8, (6,), 3, spiking=False),
         "readout"),
        (lambda: mixers.SpikingMamba(8, 4), lambda: mixers.MambaBlock(8, 4), "in_proj"),
        (lambda: mixers.SpikingMamba(8, 4), lambda: mixers.MambaBlock(8, 4), "out"),
        (lambda: models.SpikingMLPBlock(8, 16), lambda: models.SpikingMLPBlock(8, 16, neuron=None), "fc2"),
    ]


@pytest.mark.parametrize("make, twin, name", _spiking_projections())
def test_spiking_projections_are_event_driven_and_twins_plain(make, twin, name):
    torch.manual_seed(0)
    spiking = make()
    torch.manual_seed(0)
    plain = twin()
    assert type(getattr(spiking, name)) is EventLinear and type(getattr(plain, name)) is torch.nn.Linear
    x = torch.rand(2, 5, 8) if hasattr(spiking, "d_model") else torch.rand(3, 8)
    getattr(spiking, name).backend = "dense"
    torch.manual_seed(1)
    dense = spiking(x)
    getattr(spiking, name).backend = "event"
    torch.manual_seed(1)
    torch.testing.assert_close(spiking(x), dense)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_the_tiled_transpose_equals_torchs_on_every_shape(rows, cols, dtype):
    a = torch.randn(rows, cols, dtype=dtype, generator=torch.Generator().manual_seed(rows * 41 + cols))
    t = ev._transposed(a)
    assert t.is_contiguous() and torch.equal(t, a.T)


def test_the_weight_gradient_arrives_in_the_weights_layout():
    # a transposed view would be copied again by autograd into the weight's (contiguous) layout
    x, weight = spikes((130, 24), 0.1), torch.randn(16, 24, requires_grad=True)
    event_linear(x, weight).sum().backward()
    assert weight.grad.is_contiguous()
    torch.testing.assert_close(weight.grad, torch.ones(130, 16).T @ x)
