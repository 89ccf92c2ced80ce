import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neurotoken.accounting import fake_quant, int8_scale, quantised_copy
from neurotoken.data import load_digits
from neurotoken.learning.bptt import FitConfig, fit_classifier
from neurotoken.metrics import accuracy
from neurotoken.models import SNNClassifier


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 7), st.integers(1, 9), st.floats(1e-3, 1e3), st.integers(0, 2**31 - 1), st.booleans())
def test_fake_quant_round_trip_within_half_a_step_on_the_int8_grid(rows, cols, magnitude, seed, per_channel):
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * magnitude
    s = int8_scale(x, per_channel)
    q = fake_quant(x, s)
    assert ((q - x).abs() <= s / 2 * (1 + 1e-9)).all()
    k = q / s
    assert torch.allclose(k, k.round()) and k.round().abs().max() <= 127
    peak = x.abs().amax(dim=1 if per_channel else (0, 1))
    assert torch.allclose(q.abs().amax(dim=1 if per_channel else (0, 1)), peak)  # the max maps to +-127 s


def test_int8_scale_per_channel_broadcasts_over_conv_weights():
    w = torch.randn(4, 3, 2, 2)
    s = int8_scale(w, per_channel=True)
    assert s.shape == (4, 1, 1, 1) and torch.allclose(s.flatten() * 127, w.abs().amax(dim=(1, 2, 3)))


def test_quantised_copy_quantises_weights_and_real_inputs_not_spikes():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    calib = torch.rand(20, 5) * 2
    q = quantised_copy(lin, calib)
    assert not torch.equal(q.weight, lin.weight) and q.bias is not lin.bias
    w_scale = int8_scale(lin.weight, per_channel=True)
    assert torch.equal(q.weight, fake_quant(lin.weight, w_scale))
    x = torch.rand(4, 5) * 2
    x_scale = calib.abs().max() / 127
    torch.testing.assert_close(q(x), nn.functional.linear(fake_quant(x, x_scale), q.weight, q.bias))
    spikes = (torch.rand(4, 5) < 0.5).float()
    torch.testing.assert_close(q(spikes), nn.functional.linear(spikes, q.weight, q.bias))  # exact in int8


def test_quantised_copy_leaves_the_model_alone_and_rejects_non_modules():
    net = SNNClassifier(4, (3,), 2, T=2, encoding="rate")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    quantised_copy(net, torch.rand(6, 4))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(not m._forward_pre_hooks for m in net.modules())
    with pytest.raises(TypeError, match="model"):
        quantised_copy("net", torch.rand(6, 4))


@pytest.mark.slow
def test_int8_twin_is_within_two_points_of_fp32_on_digits():
    data = load_digits(seed=0)
    twin = SNNClassifier(64, (256,), 10, spiking=False)
    fit_classifier(twin, data.x_train, data.y_train, FitConfig(epochs=30, batch_size=64, lr=5e-3))
    fp32 = accuracy(twin, data.x_test, data.y_test)
    int8 = accuracy(quantised_copy(twin, data.x_train), data.x_test, data.y_test)
    assert fp32 > 0.95 and abs(int8 - fp32) <= 0.02
