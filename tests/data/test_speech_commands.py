import wave

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from neurotoken.data import speech_commands
from neurotoken.data.speech_commands import KEYWORDS, hz_to_mel, log_mel, mel_filterbank, mel_to_hz, read_wav

WORDS_35 = ("backward bed bird cat dog down eight five follow forward four go happy house learn left marvin nine no "
            "off on one right seven sheila six stop three tree two up visual wow yes zero").split()


def write_wav(path, samples, rate=16_000, width=2, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


@pytest.fixture(scope="module")
def sc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sc")
    rng = np.random.default_rng(0)
    for w in WORDS_35:
        for k in range(3):
            write_wav(root / w / f"{k:08x}_nohash_0.wav", rng.integers(-3000, 3000, 12_000 + 2_000 * k))
    (root / "validation_list.txt").write_text("yes/00000001_nohash_0.wav\ncat/00000001_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/00000002_nohash_0.wav\n\n")
    write_wav(root / "_background_noise_" / "white.wav", rng.integers(-2000, 2000, 16_000 * 12))
    write_wav(root / "_background_noise_" / "short.wav", rng.integers(-2000, 2000, 16_000 * 3))
    return root


def test_read_wav_reads_16_bit_samples_exactly(tmp_path):
    write_wav(tmp_path / "a.wav", [0, 1, -1, 32767, -32768])
    np.testing.assert_array_equal(read_wav(tmp_path / "a.wav"), np.array([0, 1, -1, 32767, -32768]) / 32768)


def test_splits_follow_the_lists_and_12_class_labels(sc_root):
    train = speech_commands(sc_root, "training", 12, silence_fraction=0.1)
    val = speech_commands(sc_root, "validation", 12, silence_fraction=0.5)
    test = speech_commands(sc_root, "testing", 12, silence_fraction=0.0)
    assert len(test) == 1 and test.labels.tolist() == [KEYWORDS.index("yes")]
    assert val.labels.tolist() == [10, KEYWORDS.index("yes"), 11]   # cat -> unknown; 1 silence clip
    n_words = 35 * 3 - 3
    assert len(train) == n_words + round(0.1 * n_words)
    assert train.classes[10:] == ("_unknown_", "_silence_")
    assert (train.labels == 11).sum() == round(0.1 * n_words) and (train.labels == 10).sum() == 25 * 3 - 1
    train_paths = {path.name for path, _ in train.clips if path.parent.name == "yes"}
    assert train_paths == {"00000000_nohash_0.wav"}


def test_35_classes_label_each_word_sorted(sc_root):
    ds = speech_commands(sc_root, "validation", 35)
    assert ds.classes == tuple(sorted(WORDS_35)) and ds.labels.tolist() == [ds.classes.index("cat"), ds.classes.index("yes")]


def test_features_are_log_mel_of_the_padded_clip(sc_root):
    ds = speech_commands(sc_root, "testing", 12, silence_fraction=0.0)
    x, y = ds[0]
    assert x.shape == (101, 40) and x.dtype == torch.float32
    wav = read_wav(sc_root / "yes" / "00000002_nohash_0.wav")   # 16000 samples: 12000 + 2 x 2000
    assert len(wav) == 16_000
    torch.testing.assert_close(x, log_mel(torch.from_numpy(wav)))
    xb, yb = next(iter(DataLoader(speech_commands(sc_root, "validation", 12, silence_fraction=0.5), batch_size=3)))
    assert xb.shape == (3, 101, 40) and yb.tolist() == [10, 0, 11]


def test_silence_clips_come_from_the_subsets_part_of_the_noise(sc_root):
    for subset, (lo, hi) in (("training", (0, 0.8)), ("validation", (0.8, 0.9)), ("testing", (0.9, 1.0))):
        ds = speech_commands(sc_root, subset, 12, silence_fraction=3.0)
        starts = [(p.name, s) for p, s in ds.clips if p.parent.name == "_background_noise_"]
        assert starts and all(p == "white.wav" or subset == "training" for p, _ in starts)
        for name, s in starts:
            n = 16_000 * (12 if name == "white.wav" else 3)
            assert lo * n <= s and s + 16_000 <= hi * n + 1


@settings(max_examples=30, deadline=None)
@given(st.floats(100.0, 7000.0))
def test_log_mel_of_a_tone_peaks_in_the_band_around_its_frequency(f):
    t = torch.arange(16_000, dtype=torch.float64) / 16_000
    feats = log_mel(torch.sin(2 * torch.pi * f * t)[None])[0]
    assert feats.shape == (101, 40) and feats.dtype == torch.float64
    peak = int(feats[50].argmax())
    centres = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(8000.0), 42))[1:-1]
    assert abs(peak - int(np.abs(centres - f).argmin())) <= 1


@settings(max_examples=30, deadline=None)
@given(st.integers(16, 400), st.integers(1, 64))
def test_mel_filterbank_triangles(n_freqs, n_mels):
    bank = mel_filterbank(n_freqs, n_mels).double()
    assert bank.shape == (n_freqs, n_mels) and bank.min() >= 0 and bank.max() <= 1 + 1e-6
    assert torch.isfinite(bank).all()


def test_wrong_rate_corrupt_wav_and_missing_lists_name_the_file(tmp_path, sc_root):
    write_wav(tmp_path / "r.wav", [1, 2, 3], rate=8000)
    with pytest.raises(ValueError, match="r.wav: sample rate 8000 Hz, expected 16000"):
        read_wav(tmp_path / "r.wav")
    write_wav(tmp_path / "s.wav", [1, 2, 3, 4], channels=2)
    with pytest.raises(ValueError, match="s.wav: 16-bit audio with 2 channels"):
        read_wav(tmp_path / "s.wav")
    (tmp_path / "c.wav").write_bytes(b"RIFF1234WAVEjunk")
    with pytest.raises(ValueError, match="c.wav: not a readable WAV"):
        read_wav(tmp_path / "c.wav")
    data = (sc_root / "yes" / "00000000_nohash_0.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="t.wav: truncated"):
        read_wav(tmp_path / "t.wav")
    (tmp_path / "yes").mkdir()
    with pytest.raises(FileNotFoundError, match="validation_list.txt is missing"):
        speech_commands(tmp_path)
    with pytest.raises(ValueError, match="subset must be one of"):
        speech_commands(sc_root, "train")
    with pytest.raises(ValueError, match="classes must be 12 or 35"):
        speech_commands(sc_root, classes=10)
