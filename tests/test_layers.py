import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.layers import (MSBlock, SEWBlock, SpikingConv2d, SpikingLinear, SpikingMLP, SpikingRecurrent,
                               TimeBatchNorm, pool2d)
from neurotoken.neurons import LIF, npe_step


def test_spiking_linear_is_projection_then_lif_per_step():
    torch.manual_seed(0)
    layer = SpikingLinear(5, 3, beta=0.8, threshold=0.5)
    x = torch.rand(9, 4, 5)
    expected = LIF(beta=0.8, threshold=0.5)(layer.linear(x))
    assert torch.equal(layer(x), expected)
    assert set(layer(x).unique().tolist()) <= {0.0, 1.0}


def test_spiking_linear_takes_a_neuron_instance_or_its_config_as_a_copy():
    lif = LIF(beta=0.8, threshold=0.5, learn_threshold=True)
    layer, from_config = SpikingLinear(5, 3, neuron=lif), SpikingLinear(5, 3, neuron=lif.config())
    assert layer.neuron is not lif and layer.neuron.threshold is not lif.threshold
    from_config.load_state_dict(layer.state_dict())
    x = torch.rand(9, 4, 5)
    assert torch.equal(layer(x), from_config(x))
    with pytest.raises(TypeError, match="not both"):
        SpikingLinear(5, 3, neuron=lif, beta=0.5)


@pytest.mark.parametrize("backend", ["event", "auto"])
def test_spiking_linear_event_backend_matches_dense_in_membranes_and_gradients(backend, monkeypatch):
    pytest.importorskip("numba")
    from neurotoken.kernels import event_linear

    monkeypatch.setattr(event_linear, "MIN_ROWS", 1)  # auto takes the event path on this small product
    monkeypatch.setattr(event_linear, "MIN_MACS", 1)
    torch.manual_seed(0)
    dense, event = SpikingLinear(37, 11, linear_backend="dense"), SpikingLinear(37, 11, linear_backend=backend)
    event.load_state_dict(dense.state_dict())
    x = (torch.rand(7, 3, 37) < 0.05).float()
    for layer in (dense, event):
        x_leaf = x.clone().requires_grad_()
        current = layer.linear(x_leaf)
        current.backward(torch.linspace(-1, 1, current.numel()).view_as(current))
        layer.current, layer.x_grad = current.detach(), x_leaf.grad
    torch.testing.assert_close(event.current, dense.current)
    torch.testing.assert_close(event.x_grad, dense.x_grad)
    torch.testing.assert_close(event.linear.weight.grad, dense.linear.weight.grad)
    assert (event(x) != dense(x)).float().mean() <= 1e-3


def test_spiking_mlp_passes_the_linear_backend_to_every_layer():
    mlp = SpikingMLP([6, 8, 4], linear_backend="dense")
    assert [layer.linear.backend for layer in mlp] == ["dense", "dense"]
    assert SpikingLinear(4, 3).linear.backend == "auto"
    with pytest.raises(ValueError, match="linear_backend must be one of"):
        SpikingLinear(4, 3, linear_backend="sparse")


def test_spiking_mlp_stacks_layers_with_shapes():
    mlp = SpikingMLP([6, 8, 4], spike="ternary")
    out = mlp(torch.randn(5, 2, 6))
    assert out.shape == (5, 2, 4) and len(mlp) == 2
    assert set(out.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_spiking_conv2d_channels_last_matches_nchw_conv():
    torch.manual_seed(1)
    layer = SpikingConv2d(3, 4, 3, padding=1, beta=0.9, threshold=0.3)
    x = torch.rand(6, 2, 7, 5, 3)  # [T, B, H, W, C]
    out = layer(x)
    assert out.shape == (6, 2, 7, 5, 4)
    ref_current = torch.stack([layer.conv(x_t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) for x_t in x])
    assert torch.equal(out, LIF(beta=0.9, threshold=0.3)(ref_current))


def test_layers_reject_bad_shapes():
    with pytest.raises(ValueError, match="x must have 3 channels last"):
        SpikingConv2d(3, 4, 3)(torch.rand(2, 1, 5, 5, 2))
    with pytest.raises(ValueError, match="x must have between 5 and 5"):
        SpikingConv2d(3, 4, 3)(torch.rand(2, 5, 5, 3))
    with pytest.raises(ValueError, match="sizes must hold at least"):
        SpikingMLP([4])
    with pytest.raises(ValueError, match=r"sizes\[1\] must be >= 1"):
        SpikingMLP([4, 0])


@pytest.mark.parametrize("make, x, error, match", [
    (lambda: SpikingLinear(4, 3), torch.rand(2, 2, 5), ValueError, r"x must be \[T, \.\.\., 4\]"),
    (lambda: SpikingLinear(4, 3), torch.rand(2, 2, 4, dtype=torch.float64), TypeError, "x has dtype torch.float64"),
    (lambda: SpikingLinear(4, 3), torch.ones(2, 2, 4, dtype=torch.long), TypeError, "x must be a real floating"),
    (lambda: SpikingConv2d(2, 3, 3), torch.rand(2, 1, 2, 2, 2), ValueError, "at least the kernel"),
    (lambda: SpikingConv2d(2, 3, 3), torch.rand(2, 1, 5, 5, 2, dtype=torch.float64), TypeError, "x has dtype"),
    (lambda: SpikingRecurrent(4, 3), torch.rand(2, 2, 5), ValueError, r"x must be \[T, B, 4\]"),
    (lambda: SpikingRecurrent(4, 3), torch.rand(2, 4), ValueError, "x must have between 3 and 3"),
    (lambda: SpikingRecurrent(4, 3), torch.rand(2, 2, 4).double(), TypeError, "x has dtype"),
    (lambda: SEWBlock(3), torch.rand(2, 1, 4, 4, 2), ValueError, "x must have 3 channels last"),
    (lambda: MSBlock(3), torch.rand(2, 1, 4, 4, 3).double(), TypeError, "x has dtype"),
], ids=["linear width", "linear float64", "linear int", "conv too small", "conv float64", "recurrent width",
        "recurrent rank", "recurrent float64", "sew channels", "ms float64"])
def test_bad_inputs_are_refused_naming_x(make, x, error, match):
    with pytest.raises(error, match=match):
        make()(x)


@pytest.mark.parametrize("make, match", [
    (lambda: SpikingLinear(0, 3), "in_features must be >= 1"),
    (lambda: SpikingLinear(4, 3, bias="no"), "bias must be a bool"),
    (lambda: SpikingConv2d(2, 3, 0), "kernel_size must be >= 1"),
    (lambda: SpikingConv2d(2, 3, 3, padding=-1), "padding must be >= 0"),
    (lambda: SpikingConv2d(0, 3, 3), "in_channels must be >= 1"),
])
def test_bad_sizes_are_refused_naming_them(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_sew_block_adds_spikes_so_its_output_is_a_spike_count():
    torch.manual_seed(2)
    block = SEWBlock(3, threshold=0.2)
    s = (torch.rand(4, 2, 5, 5, 3) > 0.5).float()
    out = block(s)
    assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0} and (out == 2).any()
    assert torch.equal(out - s, block.units[1](block.units[0](s)))


def test_ms_block_shortcut_carries_the_membrane_and_convolutions_read_spikes():
    torch.manual_seed(3)
    block = MSBlock(3, norm="bn", threshold=0.3)
    u = torch.randn(4, 2, 5, 5, 3)
    reads = []
    for conv in (block.unit.conv, block.conv):
        conv.register_forward_hook(lambda m, i, o: reads.append(i[0]))
    out = block(u)
    assert out.shape == u.shape and not torch.equal(out, u)
    assert all(set(r.unique().tolist()) <= {0.0, 1.0} for r in reads)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.floats(0.25, 2.0), st.floats(0.1, 2.0), st.integers(0, 2 ** 16))
def test_tdbn_is_alpha_threshold_times_normalised_input(C, alpha, threshold, seed):
    torch.manual_seed(seed)
    layer = SpikingConv2d(2, C, 1, norm="tdbn", alpha=alpha, threshold=threshold)
    layer.norm.weight.data.uniform_(0.5, 1.5)
    layer.norm.bias.data.uniform_(-1, 1)
    y = torch.randn(3, 2, 4, 5, C) * 3 + 1  # [T, B, H, W, C]: statistics over T, B, H, W per channel
    mean, var = y.mean((0, 1, 2, 3)), y.var((0, 1, 2, 3), unbiased=False)
    expected = alpha * threshold * layer.norm.weight * (y - mean) / torch.sqrt(var + 1e-5) + layer.norm.bias
    torch.testing.assert_close(layer.norm(y), expected, rtol=1e-4, atol=1e-4)


def test_bn_folds_time_into_the_batch_and_tracks_running_statistics():
    norm = TimeBatchNorm(2, momentum=1.0)
    y = torch.tensor([[[[[1.0, 0.0]]]], [[[[3.0, 4.0]]]]])  # T = 2 steps of one pixel
    torch.testing.assert_close(norm(y).flatten(), torch.tensor([-1.0, -1.0, 1.0, 1.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm.running_mean, torch.tensor([2.0, 2.0]))
    norm.eval()
    torch.testing.assert_close(norm(y).flatten(), (y.flatten() - 2) / torch.sqrt(torch.tensor([2.0, 8.0])
                                                                                  .repeat(2) + 1e-5))


def test_pooling_of_spike_currents_keeps_the_output_spikes():
    x = torch.arange(16.0).reshape(1, 4, 4, 1)
    assert pool2d(x, "max", 2).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert pool2d(x, "avg", 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    out = SpikingConv2d(1, 2, 3, padding=1, pool="avg")(torch.rand(3, 2, 6, 6, 1))
    assert out.shape == (3, 2, 3, 3, 2) and set(out.unique().tolist()) <= {0.0, 1.0}


def test_recurrent_layer_is_lif_driven_by_input_and_its_own_last_spikes():
    torch.manual_seed(0)
    layer = SpikingRecurrent(4, 5, beta=0.8, threshold=0.4)
    x = torch.randn(9, 3, 4)
    p, h, s, expected = LIF(beta=0.8, threshold=0.4).params(), torch.zeros(3, 5), torch.zeros(3, 5), []
    for x_t in x:
        h, s = npe_step(h, layer.linear(x_t) + layer.recurrent(s), s, p)
        expected.append(s)
    out = layer(x)
    assert torch.equal(out, torch.stack(expected)) and out.any()


@pytest.mark.parametrize("recurrent", [True, False])
def test_recurrent_twin_is_the_same_leak_with_relu_and_no_reset(recurrent):
    torch.manual_seed(1)
    layer = SpikingRecurrent(4, 5, recurrent, spiking=False, beta=0.7)
    x = torch.randn(6, 2, 4)
    h, r, expected = torch.zeros(2, 5), torch.zeros(2, 5), []
    for x_t in x:
        h = 0.7 * h + layer.linear(x_t) + (layer.recurrent(r) if recurrent else 0)
        r = F.relu(h)
        expected.append(r)
    torch.testing.assert_close(layer(x), torch.stack(expected))


def test_conv_twin_is_relu_of_the_same_convolution_and_norm():
    torch.manual_seed(4)
    layer = SpikingConv2d(2, 3, 3, padding=1, norm="bn", spiking=False).eval()
    x = torch.randn(1, 2, 5, 5, 2)
    ref = torch.stack([layer.conv(x_t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) for x_t in x])
    torch.testing.assert_close(layer(x), F.relu(layer.norm(ref)))


def test_conv_takes_a_neuron_instance_or_its_config_as_a_copy():
    lif = LIF(beta=0.5, threshold=0.3, reset="zero")
    layer, from_config = SpikingConv2d(2, 3, 3, neuron=lif), SpikingConv2d(2, 3, 3, neuron=lif.config())
    assert layer.neuron is not lif and layer.neuron.config() == from_config.neuron.config() == lif.config()
    with pytest.raises(TypeError, match="not both"):
        SpikingConv2d(2, 3, 3, neuron=lif, beta=0.5)
    with pytest.raises(ValueError, match="norm must be one of"):
        SpikingConv2d(2, 3, 3, norm="ln")
    with pytest.raises(ValueError, match="pool must be one of"):
        SpikingConv2d(2, 3, 3, pool="sum")


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 24), min_size=3, max_size=4), T=st.integers(1, 5),
       surrogate=st.sampled_from(["triangle", "atan"]), reset=st.sampled_from(["subtract", "none"]),
       beta=st.sampled_from([0.0, 0.5, 0.9]), rate=st.sampled_from([0.1, 0.5]))
def test_sparse_input_grad_keeps_every_weight_gradient(sizes, T, surrogate, reset, beta, rate):
    import copy

    torch.manual_seed(len(sizes) + T)
    sparse = SpikingMLP(sizes, sparse_input_grad=True, linear_backend="event", beta=beta, reset=reset,
                        surrogate=surrogate, threshold=0.3)
    dense = copy.deepcopy(sparse)
    dense.sparse_input_grad = False
    x = (torch.rand(T, 3, sizes[0]) < rate).double()
    sparse.double(), dense.double()
    outs = []
    for net in (sparse, dense):
        xin = x.clone().requires_grad_()
        y = net(xin)
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y))
        outs.append((y, xin.grad, [p.grad for p in net.parameters()]))
    (y, gx, gp), (y_ref, gx_ref, gp_ref) = outs
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(gx, gx_ref)
    for a, b in zip(gp, gp_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset", ["subtract", "none"])
@pytest.mark.parametrize("surrogate", ["triangle", "sigmoid"])
def test_support_is_where_the_surrogate_derivative_of_the_membrane_is_non_zero(reset, surrogate):
    from neurotoken.layers import _support
    from neurotoken.neurons import npe_multistep

    torch.manual_seed(0)
    neuron = LIF(0.8, 0.5, reset, surrogate=surrogate)
    current = 30 * torch.randn(7, 4, 9)  # far from theta the sigmoid's derivative underflows to 0
    s, h = npe_multistep(current, neuron.params(), backend="sequential")
    mask = _support(neuron, current, s)
    expected = neuron.params().surrogate.grad(h - 0.5) != 0
    assert torch.equal(mask, expected) and 0 < mask.sum() < mask.numel()


def test_sparse_input_grad_refusals_name_the_argument():
    with pytest.raises(TypeError, match="sparse_input_grad"):
        SpikingMLP([4, 3], sparse_input_grad="yes")
    with pytest.raises(ValueError, match="sparse_input_grad"):
        SpikingMLP([4, 3, 2], sparse_input_grad=True, reset="zero")
    SpikingMLP([4, 3], sparse_input_grad=True, reset="zero")  # the last layer's neuron feeds no layer
