import pytest
import torch
import torch.nn.functional as F

import neurotoken as nt
from neurotoken.data.keywords import keywords
from neurotoken.models import KeywordSpotter
from neurotoken.neurons import LIF
from neurotoken.zoo import load_model, save_model


@pytest.mark.parametrize("resonators", [0, 6])
@pytest.mark.parametrize("spiking", [True, False])
def test_spotter_logits_and_gradients_for_features_and_spike_trains(resonators, spiking):
    torch.manual_seed(0)
    model = KeywordSpotter(10, 4, hidden=(8,), resonators=resonators, spiking=spiking, threshold=0.5)
    logits = model(torch.randn(3, 11, 10))
    assert logits.shape == (3, 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.dim() > 1)
    shd = KeywordSpotter(20, 4, hidden=(8,), norm="none", time_first=True, spiking=spiking)
    assert shd((torch.rand(13, 2, 20) > 0.8).float()).shape == (2, 4)


def test_counter_counts_acs_for_spike_input_and_hidden_spikes_and_macs_for_the_twin():
    torch.manual_seed(0)
    spikes = (torch.rand(13, 2, 20) > 0.8).float()
    for spiking in (True, False):
        model = KeywordSpotter(20, 4, hidden=(8,), norm="none", time_first=True, spiking=spiking, threshold=0.3)
        with nt.accounting.count(model) as c:
            model(spikes)
        assert c.layers["body.0.linear"]["acs"] == int(spikes.sum()) * 8  # events in, never re-encoded
        assert (c.layers["readout"]["acs"] > 0) == spiking and (c.layers["readout"]["macs"] > 0) != spiking
        assert (c.totals["spikes"] > 0) == spiking


def test_resonator_bank_spans_the_frequencies_below_the_frame_rate_nyquist():
    model = KeywordSpotter(10, 4, hidden=(8,), resonators=5, freq_hz=(2.0, 30.0), dt_ms=10.0)
    bank = model.body[0].neuron
    assert isinstance(bank, nt.ResonateFire)
    torch.testing.assert_close(bank.freq_hz, torch.linspace(2.0, 30.0, 5))
    with pytest.raises(ValueError, match="freq_hz"):
        KeywordSpotter(10, 4, resonators=5, freq_hz=(2.0, 80.0), dt_ms=10.0)  # Nyquist 50 Hz
    with pytest.raises(ValueError, match="freq_hz"):
        KeywordSpotter(10, 4, resonators=5, freq_hz=(20.0, 2.0))
    with pytest.raises(ValueError, match="freq_hz must be a"):
        KeywordSpotter(10, 4, resonators=5, freq_hz=(2.0, 4.0, 8.0))


def test_zoo_round_trip(tmp_path):
    kwargs = {"in_features": 10, "classes": 4, "hidden": [8, 6], "resonators": 4, "freq_hz": [2.0, 20.0],
              "neuron": LIF(beta=0.8, threshold=0.6).config()}
    torch.manual_seed(0)
    model = KeywordSpotter(**kwargs).eval()
    loaded, spec = load_model(save_model(tmp_path / "m.safetensors", "KeywordSpotter", kwargs, model))
    x = torch.randn(2, 7, 10)
    assert torch.equal(loaded(x), model(x)) and spec["kwargs"] == kwargs


def test_tiny_training_decreases_the_loss_on_keywords():
    torch.manual_seed(0)
    data = keywords(2, seed=0, n_mels=16, hop=400)  # 24 clips of 41 frames
    model = KeywordSpotter(16, 12, hidden=(24,), resonators=8, dt_ms=25.0, freq_hz=(1.0, 12.0))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(data.features), data.labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]


@pytest.mark.parametrize("x, error, match", [
    (torch.randn(2, 5, 9), ValueError, "x must have 10 features last"),
    (torch.randn(5, 10), ValueError, "x must have at least 3"),
    (torch.randn(1, 2, 5, 10), ValueError, r"x must be \[B, T, 10\]"),
    (torch.randn(2, 5, 10).double(), TypeError, "x has dtype"),
])
def test_bad_inputs_are_refused_naming_x(x, error, match):
    with pytest.raises(error, match=match):
        KeywordSpotter(10, 4)(x)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden": [0]}, r"hidden\[0\] must be >= 1"), ({"resonators": -1}, "resonators must be >= 0"),
    ({"norm": "tdbn"}, "norm must be one of"), ({"time_first": 1}, "time_first must be a bool"),
    ({"recurrent": "yes"}, "recurrent must be a bool"), ({"in_features": 0}, "in_features must be >= 1"),
])
def test_bad_options_are_refused_naming_them(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        KeywordSpotter(**kwargs)


def test_the_recurrent_twin_starts_stable_over_a_second_of_frames():
    torch.manual_seed(0)
    model = KeywordSpotter(32, 12, hidden=(64, 64), spiking=False, beta=0.9)
    assert model(torch.randn(4, 101, 32)).abs().max() < 100


def test_a_float64_spotter_with_resonators_runs_in_float64():
    model = KeywordSpotter(10, 4, hidden=(8,), resonators=3).double()
    assert model(torch.randn(2, 6, 10, dtype=torch.float64)).dtype == torch.float64
