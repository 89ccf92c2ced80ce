"""Google Speech Commands v2 from its folder, as log-mel features ``[frames, n_mels]`` (tokens x channels).

The folder holds one sub-folder of 16 kHz mono 16-bit WAV clips per word, ``validation_list.txt`` and
``testing_list.txt`` (the clips of those subsets; training is every other clip) and
``_background_noise_``. ``classes=35`` labels every word (sorted); ``classes=12`` labels the ten
keywords, ``_unknown_`` (every other word, all of its clips) and ``_silence_`` (one-second clips cut
from the background noise: training from the first 0.8 of each noise file, validation from the next
0.1, testing from the last 0.1; as many as ``silence_fraction`` of the word clips). Clips are
zero-padded or cut to one second. WAVs are read with the standard library; features are computed
with ``torch.stft`` and a mel filterbank (HTK mel scale), so no audio library is needed.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import _checks
from .events import _folder

SAMPLE_RATE = 16_000
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
NOISE = "_background_noise_"
SUBSETS = ("training", "validation", "testing")
_NOISE_PART = {"training": (0.0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0)}


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16 kHz mono 16-bit PCM WAV file as float32 in [-1, 1)."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
            frames = w.readframes(n)
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a readable WAV file ({err})") from None
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    if width != 2 or channels != 1:
        raise ValueError(f"{path}: {8 * width}-bit audio with {channels} channels, expected 16-bit mono PCM")
    if len(frames) != 2 * n:
        raise ValueError(f"{path}: truncated WAV file ({len(frames)} data bytes, header says {2 * n})")
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768


def _wav_frames(path: Path) -> int:
    try:
        with wave.open(str(path), "rb") as w:
            rate, n = w.getframerate(), w.getnframes()
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a readable WAV file ({err})") from None
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    return n


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int = SAMPLE_RATE, f_min: float = 20.0,
                   f_max: float | None = None, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Triangular filters ``[n_freqs, n_mels]`` on the linear STFT bins: filter m rises from mel point
    m to m + 1 and falls to m + 2, the ``n_mels + 2`` points equally spaced in mel over [f_min, f_max]."""
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = np.linspace(0, sample_rate / 2, n_freqs)
    points = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, mid, hi = points[:-2], points[1:-1], points[2:]
    up = (freqs[:, None] - lo) / (mid - lo)
    down = (hi - freqs[:, None]) / (hi - mid)
    return torch.as_tensor(np.maximum(0.0, np.minimum(up, down)), dtype=dtype, device=device)


def log_mel(x: torch.Tensor, sample_rate: int = SAMPLE_RATE, *, n_fft: int = 480, hop: int = 160, n_mels: int = 40,
            f_min: float = 20.0, f_max: float | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Log-mel power spectrogram ``[..., frames, n_mels]`` of waveforms ``[..., samples]``: a centred
    Hann-windowed ``torch.stft``, power, the mel filterbank, then ``log(. + eps)``."""
    lead = x.shape[:-1]
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, window=torch.hann_window(n_fft, device=x.device,
                      dtype=x.dtype), center=True, return_complex=True).abs().square()
    bank = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max, device=x.device, dtype=x.dtype)
    return torch.log(spec.transpose(-1, -2) @ bank + eps).reshape(*lead, -1, n_mels)


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: speech_commands expects the v2 folder with its split lists")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


class SpeechCommands(Dataset):
    """Log-mel features ``[frames, n_mels]`` with int labels (``classes`` names them);
    ``__getitems__`` computes a batch's features in one STFT."""

    def __init__(self, clips: list[tuple[Path, int]], labels: list[int], classes: tuple[str, ...],
                 features: dict):
        self.clips, self.labels, self.classes, self.features = clips, np.asarray(labels, np.int64), classes, features

    def __len__(self) -> int:
        return len(self.labels)

    def waveform(self, i: int) -> np.ndarray:
        """One second of clip i (a word clip from its start, or a slice of a noise file)."""
        path, start = self.clips[i]
        x = read_wav(path)[start: start + SAMPLE_RATE]
        return np.pad(x, (0, SAMPLE_RATE - len(x)))

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, int]]:
        feats = log_mel(torch.from_numpy(np.stack([self.waveform(i) for i in indices])), **self.features)
        return list(zip(feats.unbind(0), self.labels[list(indices)].tolist()))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.__getitems__([i])[0]


def speech_commands(root, subset: str = "training", classes: int = 12, *, n_mels: int = 40, n_fft: int = 480,
                    hop: int = 160, silence_fraction: float = 0.1, seed: int = 0) -> SpeechCommands:
    """Speech Commands v2 from ``root``: ``subset`` "training", "validation" or "testing"; ``classes``
    12 (keywords + unknown + silence) or 35 (every word). Features ``[1 + 16000 // hop, n_mels]``."""
    root = _folder(root)
    _checks.choice("subset", subset, SUBSETS)
    if classes not in (12, 35) or isinstance(classes, bool):
        raise ValueError(f"classes must be 12 or 35, got {classes!r}")
    for name, v in (("n_mels", n_mels), ("n_fft", n_fft), ("hop", hop)):
        _checks.positive_int(name, v)
    _checks.number("silence_fraction", silence_fraction, low=0)
    seed = _checks.positive_int("seed", seed, low=0)
    held = {"validation": _read_list(root / "validation_list.txt"), "testing": _read_list(root / "testing_list.txt")}
    words = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("_"))
    if classes == 35:
        if len(words) != 35:
            raise ValueError(f"{root}: classes=35 expects the 35 word folders of v2, found {len(words)}")
        names, label_of = tuple(words), {w: k for k, w in enumerate(words)}
    else:
        missing = [k for k in KEYWORDS if k not in words]
        if missing:
            raise FileNotFoundError(f"{root}: keyword folders missing: {', '.join(missing)}")
        names = (*KEYWORDS, UNKNOWN, SILENCE)
        label_of = {w: KEYWORDS.index(w) if w in KEYWORDS else len(KEYWORDS) for w in words}
    clips, labels = [], []
    mine = None if subset == "training" else subset
    for w in words:
        for f in sorted((root / w).glob("*.wav")):
            rel = f"{w}/{f.name}"
            if next((s for s, listed in held.items() if rel in listed), None) == mine:
                clips.append((f, 0))
                labels.append(label_of[w])
    if classes == 12:
        silence = _silence_clips(root / NOISE, subset, round(silence_fraction * len(clips)), seed)
        clips += silence
        labels += [names.index(SILENCE)] * len(silence)
    return SpeechCommands(clips, labels, names, {"n_mels": n_mels, "n_fft": n_fft, "hop": hop})


def _silence_clips(folder: Path, subset: str, count: int, seed: int) -> list[tuple[Path, int]]:
    """``count`` one-second slices of this subset's part of the noise files, at seeded offsets."""
    if count == 0:
        return []
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: classes=12 cuts its silence clips from the background noise")
    lo, hi = _NOISE_PART[subset]
    parts = []
    for f in sorted(folder.glob("*.wav")):
        n = _wav_frames(f)
        start, stop = math.floor(lo * n), math.floor(hi * n) - SAMPLE_RATE
        if stop >= start:
            parts.append((f, start, stop))
    if not parts:
        raise ValueError(f"{folder}: no noise file is long enough to cut one-second {subset} clips from")
    rng = np.random.default_rng([seed, SUBSETS.index(subset)])
    return [(f, int(rng.integers(start, stop + 1))) for f, start, stop in (parts[k % len(parts)] for k in range(count))]
