import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from neurotoken.data import keywords
from neurotoken.data.keywords import CLASSES, SAMPLE_RATE, noise_burst, voiced, waveforms
from neurotoken.data.speech_commands import log_mel


def peak_hz(y: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    band = (freqs >= lo) & (freqs < hi)
    return float(freqs[band][spectrum[band].argmax()])


@settings(max_examples=10, deadline=None)
@given(f1=st.floats(300, 800), f2=st.floats(1100, 2000), f3=st.floats(2300, 3200), f0=st.floats(90, 140))
def test_voiced_spectrum_peaks_at_a_harmonic_beside_each_formant(f1, f2, f3, f0):
    """The nearest harmonic, or its neighbour where another formant's skirt lifts it (seen: F2 1730,
    F3 2300 Hz, f0 129.5 Hz peaked at the 17th harmonic, 2,202 Hz, not the 18th)."""
    y = voiced((f1, f2, f3), f0, 0.4)
    edges = (150, (f1 + f2) / 2, (f2 + f3) / 2, f3 + 500)
    for f, lo, hi in zip((f1, f2, f3), edges, edges[1:]):
        assert abs(peak_hz(y, lo, hi) - f) <= f0


def test_noise_burst_energy_sits_in_its_band():
    y = noise_burst(5000.0, 1500.0, 0.3, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    assert spectrum[(freqs > 3500) & (freqs < 6500)].sum() > 0.6 * spectrum.sum()


def test_same_seed_same_set_and_splits_differ():
    a, b = keywords(2, seed=5), keywords(2, seed=5)
    assert torch.equal(a.features, b.features) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.features, keywords(2, split="testing", seed=5).features)


def test_shapes_dtypes_classes_and_balance_match_speech_commands():
    ds = keywords(3, seed=0, n_mels=20, hop=320)
    assert ds.features.shape == (36, 1 + 16000 // 320, 20) and ds.features.dtype == torch.float32
    assert ds.labels.dtype == torch.int64 and ds.labels.bincount().tolist() == [3] * 12
    assert ds.classes == CLASSES and ds.classes[10:] == ("_unknown_", "_silence_")
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert x.shape == (5, 51, 20) and y.tolist() == ds.labels[:5].tolist()


def test_features_are_the_speech_commands_log_mel_of_the_clips():
    clips, labels = waveforms(1, seed=2)
    ds = keywords(1, seed=2)
    torch.testing.assert_close(ds.features, log_mel(torch.from_numpy(clips)))
    assert ds.labels.tolist() == labels.tolist()


@pytest.mark.parametrize("kwargs, name", [({"n_per_class": 0}, "n_per_class"), ({"split": "train"}, "split"),
                                          ({"snr_db": (10.0, 0.0)}, "snr_db"), ({"n_mels": 0}, "n_mels"),
                                          ({"seed": -2}, "seed")])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        keywords(**kwargs)
