import pytest
import torch
import torch.nn.functional as F

import neurotoken as nt
from neurotoken.data.scenes import scenes
from neurotoken.metrics import mean_iou
from neurotoken.models import SpikingCNN, SpikingSegmenter
from neurotoken.models.vision import pixel_loss
from neurotoken.zoo import load_model, save_model

CNN = {"in_channels": 1, "classes": 3, "channels": [4, 6], "T": 3}


@pytest.mark.parametrize("block", ["none", "sew", "ms"])
@pytest.mark.parametrize("norm", ["none", "bn", "tdbn"])
@pytest.mark.parametrize("spiking", [True, False])
def test_cnn_logits_shape_and_gradients_for_images_and_frames(block, norm, spiking):
    torch.manual_seed(0)
    model = SpikingCNN(**CNN, block=block, norm=norm, spiking=spiking, threshold=0.5)
    for x in (torch.rand(2, 6, 6, 1), (torch.rand(5, 2, 6, 6, 1) > 0.6).float()):
        logits = model(x)
        assert logits.shape == (2, 3)
        logits.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.body.parameters()
                   if p.requires_grad and p.dim() > 1)


def test_event_frames_are_used_without_re_encoding(monkeypatch):
    model = SpikingCNN(**CNN, encoding="rate")
    called = []
    monkeypatch.setattr(nt.encoding, "encode", lambda *a, **k: called.append(a))
    frames = (torch.rand(7, 2, 6, 6, 1) > 0.5).float()
    seen = []
    model.body[0].conv.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    model(frames)
    assert not called and seen == [(7 * 2, 1, 6, 6)]  # all 7 frames, as they are


def test_counter_counts_acs_for_spiking_convolutions_and_macs_for_the_twin():
    torch.manual_seed(0)
    x = torch.rand(2, 6, 6, 1)
    for spiking in (True, False):
        model = SpikingCNN(**CNN, block="sew", spiking=spiking)
        with nt.accounting.count(model) as c:
            model(x)
        later = [name for name in c.layers if name.endswith("conv") and not name.startswith("body.0.")]
        assert later
        for name in later:
            assert (c.layers[name]["acs"] > 0) == spiking and (c.layers[name]["macs"] > 0) != spiking
    # the first convolution reads the real image: MACs in both forms, once (direct coding repeats it over T)
    assert c.layers["body.0.conv"]["macs"] == 2 * 36 * 4 * 9


def test_direct_coding_convolves_the_repeated_image_once_with_the_same_spikes():
    torch.manual_seed(0)
    model = SpikingCNN(**CNN, norm="tdbn", threshold=0.3)
    x = torch.rand(2, 6, 6, 1)
    torch.testing.assert_close(model(x), model(x[None].repeat(CNN["T"], 1, 1, 1, 1)))
    with nt.accounting.count(model) as c:
        model(x)
    assert c.layers["body.0.conv"]["macs"] == 2 * 36 * 4 * 9


@pytest.mark.parametrize("make, kwargs", [(SpikingCNN, {**CNN, "block": "sew", "norm": "tdbn"}),
                                          (SpikingSegmenter, {"channels": [4, 6], "T": 2, "beta": 0.5})])
def test_zoo_round_trip(tmp_path, make, kwargs):
    torch.manual_seed(0)
    model = make(**kwargs).eval()
    loaded, spec = load_model(save_model(tmp_path / "m.safetensors", make.__name__, kwargs, model))
    x = torch.rand(2, 8, 8, kwargs.get("in_channels", 3))
    assert torch.equal(loaded(x), model(x)) and spec["kwargs"] == kwargs


@pytest.mark.parametrize("spiking", [True, False])
def test_segmenter_gives_per_pixel_logits_and_skips_reach_the_decoder(spiking):
    torch.manual_seed(0)
    model = SpikingSegmenter(3, 5, channels=(4, 6, 8), T=2, spiking=spiking, threshold=0.3)
    x = torch.rand(2, 8, 12, 3)
    logits = model(x)
    assert logits.shape == (2, 8, 12, 5)
    pixel_loss(logits, torch.randint(0, 5, (2, 8, 12))).backward()
    assert all(p.grad is not None for p in model.parameters() if p.dim() > 1)
    frames = model((torch.rand(3, 2, 8, 12, 3) > 0.5).float())
    assert frames.shape == (2, 8, 12, 5)


def test_tiny_training_decreases_the_loss_on_scenes():
    torch.manual_seed(0)
    data = scenes(4, size=16, seed=0)
    model = SpikingSegmenter(3, 5, channels=(4, 6), T=2, threshold=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = pixel_loss(model(data.images), data.masks)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    with torch.no_grad():
        assert 0.0 <= mean_iou(model(data.images).argmax(-1), data.masks, 5) <= 1.0


def test_tiny_training_decreases_the_loss_on_digits_as_images():
    torch.manual_seed(0)
    from neurotoken.data.digits import load_digits
    split = load_digits()
    x, y = split.x_train[:16].reshape(-1, 8, 8, 1), split.y_train[:16]
    model = SpikingCNN(1, 10, channels=(6, 8), T=2, norm="tdbn", block="sew")
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("make, x, error, match", [
    (lambda: SpikingCNN(**CNN), torch.rand(2, 6, 6, 3), ValueError, r"x must be \[B, H, W, 1\]"),
    (lambda: SpikingCNN(**CNN), torch.rand(2, 5, 6, 1), ValueError, "multiples of 2"),
    (lambda: SpikingCNN(**CNN), torch.rand(6, 6), ValueError, "x must have"),
    (lambda: SpikingCNN(**CNN), torch.rand(2, 6, 6, 1).double(), TypeError, "x has dtype"),
    (lambda: SpikingSegmenter(channels=(4, 4, 4)), torch.rand(1, 6, 6, 3), ValueError, "multiples of 4"),
], ids=["channels", "odd size", "rank", "dtype", "segmenter size"])
def test_bad_inputs_are_refused_naming_x(make, x, error, match):
    with pytest.raises(error, match=match):
        make()(x)


@pytest.mark.parametrize("kwargs, match", [
    ({"block": "res"}, "block must be one of"), ({"norm": "ln"}, "norm must be one of"),
    ({"pool": "none"}, "pool must be one of"), ({"channels": []}, "channels must hold"),
    ({"channels": [4, 0]}, r"channels\[1\] must be >= 1"), ({"encoding": "nope"}, "encoding"),
    ({"spiking": "no"}, "spiking must be a bool"), ({"T": 0}, "T must be >= 1"), ({"alpha": 0}, "alpha must be >"),
])
def test_bad_options_are_refused_naming_them(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        SpikingCNN(**kwargs)
