import numpy as np
import pytest
import torch

import neurotoken as nt
from neurotoken.accounting import count
from neurotoken.models import SNNClassifier, SpikingMLPBlock
from neurotoken.neurons import LIF


@pytest.mark.parametrize("encoding", ["direct", "rate", "bernoulli", "positional", "unary", "first_spike"])
def test_snn_classifier_logits_shape_and_gradients(encoding):
    torch.manual_seed(0)
    model = SNNClassifier(64, (32,), 10, T=4, encoding=encoding)
    logits = model(torch.rand(5, 64))
    assert logits.shape == (5, 10)
    logits.sum().backward()
    assert model.body[0].linear.weight.grad.abs().sum() > 0


def test_readout_is_rate_decoded_linear_of_hidden_spikes():
    torch.manual_seed(1)
    model = SNNClassifier(8, (6,), 3, T=5, encoding="rate")
    x = torch.rand(4, 8)
    from neurotoken import encoding

    s = model.body(encoding.rate(x, 5))
    torch.testing.assert_close(model(x), model.readout(s.mean(0)))


def test_conventional_twin_has_same_linear_layers_and_relu():
    twin = SNNClassifier(8, (6, 5), 3, spiking=False)
    linears = [m for m in twin.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 6), (6, 5), (5, 3)]
    x = torch.rand(2, 8)
    ref = linears[2](torch.relu(linears[1](torch.relu(linears[0](x)))))
    torch.testing.assert_close(twin(x), ref)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown encoding 'morse'"):
        SNNClassifier(8, encoding="morse")
    with pytest.raises(ValueError, match="T must be >= 1"):
        SNNClassifier(8, T=0)
    with pytest.raises(ValueError, match="x must have between 2 and 2"):
        SNNClassifier(8)(torch.rand(8))
    with pytest.raises(ValueError, match="x must lie in"):
        SNNClassifier(8, encoding="rate")(torch.full((1, 8), 2.0))


def test_mlp_block_fires_its_memoryless_neuron_or_is_a_gelu_twin():
    torch.manual_seed(0)
    block = SpikingMLPBlock(4, 6, neuron=LIF(0.0, 0.2, "none", "ternary"))
    twin = SpikingMLPBlock(4, 6, neuron=None)
    twin.load_state_dict(block.state_dict())
    x = torch.randn(2, 5, 4)
    h = block.fc1(x)
    assert torch.equal(block(x), block.fc2(nt.spikes.ternary(h, (-0.2, 0.2))))
    torch.testing.assert_close(twin(x), twin.fc2(torch.nn.functional.gelu(h)))
    with count(block) as c:
        block(x)
    assert c.layers["fire"]["neuron_updates"] == 2 * 5 * 6
    with pytest.raises(TypeError, match="memoryless"):
        SpikingMLPBlock(4, 6, neuron=LIF(0.9))


def test_a_stateful_model_neuron_needs_its_own_mlp_neuron():
    lif = nt.LIF(0.5, 1.0, "subtract", "binary")
    with pytest.raises(TypeError, match="mlp_neuron"):
        nt.models.SpikingSSMClassifier(2, d_model=8, neuron=lif)
    model = nt.models.SpikingSSMClassifier(2, d_model=8, neuron=lif, mlp_neuron=nt.LIF(0.0, 1.0, "none", "binary"))
    assert not model.blocks[0].sublayers[0].fire.memoryless


MODELS = {  # a small float32 model of each family and a good input for it
    "snn": (lambda: nt.models.SNNClassifier(4, (3,), 2, T=2), (2, 4)),
    "snn twin": (lambda: nt.models.SNNClassifier(4, (3,), 2, spiking=False), (2, 4)),
    "ssm": (lambda: nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1, classes=3), (2, 5, 2)),
    "transformer": (lambda: nt.models.SpikingTransformer(5, d_model=8, heads=2, layers=1, T=2), (2, 4, 5)),
}


def _wider(shape):
    return (*shape[:-1], shape[-1] + 1)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bad, error, match", [
    (lambda s: torch.rand(_wider(s)), ValueError, r"x must have \d+ (features|channels) last"),
    (lambda s: torch.ones(s, dtype=torch.long), TypeError, "x must be a real floating-point tensor"),
    (lambda s: torch.rand(s, dtype=torch.float64), TypeError, r"x has dtype torch.float64 .* model.to\("),
    (lambda s: torch.rand(s).half(), TypeError, r"x has dtype torch.float16 .* model.to\("),
    (lambda s: torch.rand(s, device="meta"), ValueError, "x is on meta but the parameters are on cpu"),
    (lambda s: torch.rand(0, *s[1:]), ValueError, "x must"),
], ids=["wide", "int", "float64", "float16", "meta", "empty"])
def test_models_refuse_bad_input_naming_x(name, bad, error, match):
    make, shape = MODELS[name]
    with pytest.raises(error, match=match):
        make()(bad(shape))


@pytest.mark.parametrize("name", MODELS)
def test_models_run_in_the_dtype_they_are_converted_to(name):
    make, shape = MODELS[name]
    y = make().double()(torch.rand(shape, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


@pytest.mark.parametrize("make", [
    lambda: SNNClassifier(4, spiking="no"),
    lambda: nt.models.SpikingSSMClassifier(2, spiking=1),
    lambda: nt.models.SpikingTransformer(spiking="yes"),
    lambda: nt.models.SpikingLM(spiking=None),
])
def test_spiking_must_be_a_bool(make):
    with pytest.raises(TypeError, match="spiking must be a bool"):
        make()


def test_sizes_are_named_as_given_and_numpy_integers_accepted():
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        SNNClassifier(0)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be >= 1"):
        SNNClassifier(4, hidden=(3, -5))
    with pytest.raises(TypeError, match="hidden must be a sequence of ints"):
        SNNClassifier(4, hidden=32)
    model = SNNClassifier(np.int64(4), hidden=np.array([3]), classes=np.int64(2), T=np.int64(2))
    assert model(torch.rand(2, 4)).shape == (2, 2)


@pytest.mark.parametrize("name", MODELS)
def test_models_check_no_values_in_the_forward_so_they_run_on_meta(name):
    make, shape = MODELS[name]
    y = make().to("meta")(torch.rand(shape, device="meta"))
    assert y.device.type == "meta" and y.shape[0] == shape[0]


@pytest.mark.parametrize("make", [
    lambda: nt.models.SpikingLM(d_model=4, layers=1, hidden_ratio=1),
    lambda: nt.models.SpikingLM(d_model=4, layers=1, hidden_ratio=1, backbone="pspikessm"),
    lambda: nt.models.SpikingTransformer(4, d_model=4, heads=2, layers=1, T=2, vocab=5),
], ids=["spikegpt", "pspikessm", "transformer ids"])
def test_token_models_check_no_id_values_in_the_forward(make):
    y = make().to("meta")(torch.ones(2, 3, dtype=torch.long, device="meta"))
    assert y.device.type == "meta" and y.shape[0] == 2
