import pytest
import torch

from neurotoken.layers import SpikingConv2d, SpikingLinear, SpikingMLP
from neurotoken.neurons import LIF


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
], ids=["linear width", "linear float64", "linear int", "conv too small", "conv float64"])
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
