import pytest
import torch

from neurotoken.accounting import count
from neurotoken.data.qam import demodulation
from neurotoken.models import SpikingTransformer


def _linear_sizes(model):
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("pool", ["last", "mean"])
def test_transformer_logits_shape_and_gradients(spiking, pool):
    torch.manual_seed(0)
    model = SpikingTransformer(5, d_model=12, heads=3, layers=2, classes=4, T=3, pool=pool, spiking=spiking)
    logits = model(demodulation(6, pilots=7).tokens)
    assert logits.shape == (6, 4)
    logits.sum().backward()
    for name in ("embed.weight", "blocks.0.norms.0.weight", "readout.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


def test_twin_has_the_same_linear_layers():
    sizes = [_linear_sizes(SpikingTransformer(5, 12, 3, 2, 4, mlp_ratio=3, spiking=s)) for s in (True, False)]
    assert sizes[0] == sizes[1]
    assert sizes[0][:4] == [(5, 12), (12, 36), (12, 12), (12, 36)]  # embed, qkv, out, MLP fc1


def test_spiking_attention_and_mlp_read_spikes():
    torch.manual_seed(1)
    model = SpikingTransformer(5, 8, 2, 1, 4, T=4)
    seen = {}
    for name in ("blocks.0.sublayers.0.1.qkv", "blocks.0.sublayers.1.1.linear", "blocks.0.sublayers.1.2"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, i[0]))
    model(demodulation(3, pilots=5).tokens)
    for name, x in seen.items():
        assert x.shape[0] == 4 and bool(((x == 0) | (x == 1)).all()), name


def test_integer_token_ids_with_causal_mask():
    torch.manual_seed(2)
    model = SpikingTransformer(d_model=8, heads=2, layers=1, classes=3, T=2, mask="causal", vocab=11)
    ids = torch.randint(11, (4, 9))
    assert model(ids).shape == (4, 3)
    changed = ids.clone()
    changed[:, 0] = (ids[:, 0] + 1) % 11
    twin = SpikingTransformer(d_model=8, heads=2, layers=1, classes=3, mask="causal", vocab=11, spiking=False)
    assert not torch.allclose(twin(ids), twin(changed))  # the last token attends the first


def test_bad_inputs_are_rejected():
    model = SpikingTransformer(5, 8, 2, 1, 4, T=2)
    with pytest.raises(ValueError, match="x must have 5 channels last"):
        model(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="x must have between 3 and 3"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="pool must be one of"):
        SpikingTransformer(pool="max")
    with pytest.raises(ValueError, match="d_model .* divisible by heads"):
        SpikingTransformer(d_model=10, heads=4)
    ids = SpikingTransformer(d_model=8, heads=2, vocab=5)
    with pytest.raises(ValueError, match=r"x must hold token ids in \[0, 5\)"):
        ids(torch.tensor([[1, 5]]))
    with pytest.raises(TypeError, match="x must be integer token ids"):
        ids(torch.zeros(1, 2))


def test_counter_sees_acs_for_spiking_and_macs_for_twin():
    x = demodulation(4, pilots=7).tokens
    totals = {}
    for spiking in (True, False):
        torch.manual_seed(3)
        model = SpikingTransformer(5, 8, 2, 2, 4, T=4, spiking=spiking)
        with count(model) as c:
            model(x)
        totals[spiking] = c.totals
    assert totals[True]["acs"] > 0 and totals[True]["spikes"] > 0
    assert totals[False]["macs"] > 0 and totals[False]["acs"] == 0
    # the spiking model's only MACs: the real-valued embedding (B L D F) and readout (T B classes D)
    assert totals[True]["macs"] == 4 * 8 * 8 * 5 + 4 * 4 * 4 * 8
