import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import neurotoken as nt
from neurotoken.models.sequence import Bidirectional


def classifier(**kwargs):
    torch.manual_seed(0)
    return nt.models.SpikingSSMClassifier(2, d_model=6, d_state=3, layers=1, classes=3, **kwargs)


@settings(max_examples=10, deadline=None)
@given(L=st.integers(1, 9), mixer=st.sampled_from(["lru", "selective"]), spiking=st.booleans())
def test_bidirectional_block_is_the_forward_mixer_plus_the_reversed_mixer_flipped_back(L, mixer, spiking):
    model = classifier(mixer=mixer, spiking=spiking, bidirectional=True, neuron=nt.LIF(0.0, 0.5, "none", "binary"))
    both = model.blocks[0].sublayers[0]
    assert isinstance(both, Bidirectional)
    x = torch.randn(2, L, 6, generator=torch.Generator().manual_seed(L))
    expected = both.forward_mixer(x) + torch.flip(both.backward_mixer(torch.flip(x, [1])), [1])
    torch.testing.assert_close(both(x), expected)


def test_the_reversed_scan_lets_the_first_token_see_the_last():
    x = torch.randn(1, 7, 6, generator=torch.Generator().manual_seed(0))
    later = x.clone()
    later[0, -1] += 1.0
    for bidirectional in (False, True):
        mixer = classifier(spiking=False, mixer="lru", bidirectional=bidirectional).blocks[0].sublayers[0]
        with torch.no_grad():
            assert torch.equal(mixer(x)[0, 0], mixer(later)[0, 0]) != bidirectional


def test_max_pool_reads_the_largest_normalised_feature_over_tokens():
    model = classifier(spiking=False, pool="max")
    x = torch.randn(2, 5, 2)
    with torch.no_grad():
        h = model.norm(model.blocks(model.embed(x)))
        torch.testing.assert_close(model(x), model.readout(h.max(1).values))
        model.pool = "mean"
        torch.testing.assert_close(model(x), model.readout(h.mean(1)))


def test_defaults_keep_one_causal_mixer_per_block_and_the_mean():
    model = classifier()
    assert model.pool == "mean" and not isinstance(model.blocks[0].sublayers[0], Bidirectional)
    n = sum(p.numel() for p in model.parameters())
    both = sum(p.numel() for p in classifier(bidirectional=True).parameters())
    mixer = sum(p.numel() for p in model.blocks[0].sublayers[0].parameters())
    assert both == n + mixer  # the reversed scan has its own parameters


def test_batch_norm_normalises_each_channel_over_batch_and_tokens():
    model = classifier(spiking=False, norm="batch", bidirectional=True)
    norms = [n for block in model.blocks for n in block.norms] + [model.norm]
    assert all(isinstance(n, nt.layers.TimeBatchNorm) for n in norms)
    x = 3 * torch.rand(4, 9, 2) + 1
    seen = {}
    model.norm.register_forward_hook(lambda m, i, out: seen.update(out=out))
    model(x)
    flat = seen["out"].reshape(-1, 6)  # training mode: batch statistics over B * L rows
    torch.testing.assert_close(flat.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(0, unbiased=False), torch.ones(6), atol=1e-3, rtol=0)
    model.eval()  # running statistics: one image alone gives the same logits as in its batch
    torch.testing.assert_close(model(x[:1]), model(x)[:1])


def test_batch_norm_classifier_round_trips_through_the_zoo(tmp_path):
    kwargs = {"in_features": 2, "d_model": 6, "d_state": 3, "layers": 1, "classes": 3, "mixer": "lru",
              "norm": "batch", "pool": "max", "bidirectional": True, "spiking": False}
    model = nt.zoo.build("SpikingSSMClassifier", kwargs)
    model(torch.rand(3, 5, 2))  # moves the running statistics
    model.eval()
    path = nt.zoo.save_model(tmp_path / "m.safetensors", "SpikingSSMClassifier", kwargs, model)
    loaded, _ = nt.zoo.load_model(path)
    assert not loaded.training
    x = torch.rand(2, 5, 2)
    torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize("kwargs, err, name", [({"pool": "last"}, ValueError, "pool"), ({"norm": "rms"}, ValueError, "norm"),
                                                ({"bidirectional": 1}, TypeError, "bidirectional")])
def test_bad_pool_or_direction_is_named(kwargs, err, name):
    with pytest.raises(err, match=name):
        classifier(**kwargs)
