"""A generated keyword-spotting set shaped like Speech Commands' 12-class task (nothing downloaded).

Each clip is one second at 16 kHz: one word spoken by a random speaker at a random time, in
background noise at a random SNR. Words are phone strings: vowels and sonorants are a glottal
pulse train at pitch f0 through three formant resonators (two-pole filters applied in the
frequency domain); fricatives are band-passed noise; plosives a silent closure then a noise burst.
A speaker scales every formant (vocal-tract length), sets f0 and the speaking rate. The ten
keywords approximate the English words of Speech Commands; ``_unknown_`` words are random phone
strings that are not keywords; ``_silence_`` clips hold noise only. Features come from the same
log-mel pipeline as :func:`neurotoken.data.speech_commands`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import _checks
from .speech_commands import KEYWORDS, SAMPLE_RATE, SILENCE, SUBSETS, UNKNOWN, log_mel

CLASSES = (*KEYWORDS, UNKNOWN, SILENCE)
# (F1, F2, F3) in Hz for an adult male vocal tract (Peterson & Barney 1952)
VOWELS = {"i": (270, 2290, 3010), "I": (390, 1990, 2550), "E": (530, 1840, 2480), "ae": (660, 1720, 2410),
          "a": (730, 1090, 2440), "O": (570, 840, 2410), "U": (440, 1020, 2240), "u": (300, 870, 2240),
          "V": (640, 1190, 2390), "o": (500, 900, 2300)}
SONORANTS = {"n": (250, 1700, 2600), "m": (250, 1000, 2200), "l": (360, 1300, 2700), "r": (310, 1060, 1380),
             "w": (300, 610, 2200), "j": (260, 2070, 3020)}
# noise consonants: (centre Hz, bandwidth Hz, duration s, amplitude, closure s before the burst)
NOISES = {"s": (5000, 2500, 0.11, 0.35, 0.0), "S": (2800, 1500, 0.10, 0.35, 0.0), "f": (5500, 5000, 0.09, 0.12, 0.0),
          "h": (1500, 3000, 0.06, 0.08, 0.0), "t": (4000, 3000, 0.03, 0.4, 0.04), "k": (2000, 1200, 0.035, 0.4, 0.04),
          "p": (900, 1500, 0.02, 0.35, 0.04), "d": (3500, 2500, 0.02, 0.25, 0.03), "g": (1800, 1000, 0.025, 0.25, 0.03),
          "b": (800, 1200, 0.015, 0.25, 0.03)}
WORDS = {"yes": "j E s", "no": "n o U", "up": "V p", "down": "d a U n", "left": "l E f t", "right": "r a I t",
         "on": "a n", "off": "O f", "stop": "s t a p", "go": "g o U"}
VOWEL_S, SONORANT_S = 0.14, 0.07      # durations at speaking rate 1
BANDWIDTHS_HZ = (70.0, 100.0, 140.0)  # formant bandwidths
RAMP_S = 0.012                        # raised-cosine onset and offset of every phone
F0_HZ, FORMANT_SCALE, RATE = (85.0, 255.0), (0.85, 1.25), (0.75, 1.3)  # speaker ranges (uniform)


def resonator(freqs: np.ndarray, centre_hz: float, bandwidth_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Complex response at ``freqs`` (Hz) of the two-pole formant resonator of eq. (91),
    1 / (1 - 2 r cos(w) z^-1 + r^2 z^-2),
    r = exp(-pi B / fs), w = 2 pi F / fs, scaled to unit gain at 0 Hz."""
    r, w = math.exp(-math.pi * bandwidth_hz / sample_rate), 2 * math.pi * centre_hz / sample_rate
    z1 = np.exp(-2j * math.pi * np.asarray(freqs) / sample_rate)
    return (1 - 2 * r * math.cos(w) + r * r) / (1 - 2 * r * math.cos(w) * z1 + r * r * z1 * z1)


def _filtered(source: np.ndarray, response) -> np.ndarray:
    """``source`` through a filter given by its frequency response (zero-padded, so the tail decays in)."""
    n_fft = 1 << (len(source) + 2048 - 1).bit_length()
    freqs = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    return np.fft.irfft(np.fft.rfft(source, n_fft) * response(freqs), n_fft)[: len(source)]


def _envelope(n: int) -> np.ndarray:
    ramp = min(int(RAMP_S * SAMPLE_RATE), n // 2)
    env = np.ones(n)
    env[:ramp] = env[n - ramp:][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    return env


def voiced(formants_hz, f0_hz: float, duration_s: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """A glottal pulse train at ``f0_hz`` (1% period jitter with ``rng``; above f0 the source and lip
    radiation together fall by 6 dB/octave) through one resonator per formant, with raised-cosine
    ends; peak 1."""
    n = max(int(duration_s * SAMPLE_RATE), 1)
    jitter = 1 + 0.01 * (rng.standard_normal(n) if rng is not None else np.zeros(n))
    phase = np.cumsum(f0_hz * jitter / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)

    def response(freqs):
        out = 1 / (1 + 1j * freqs / f0_hz)
        for f, b in zip(formants_hz, BANDWIDTHS_HZ):
            out = out * resonator(freqs, f, b)
        return out

    y = _filtered(pulses, response) * _envelope(n)
    return y / max(np.abs(y).max(), 1e-12)


def noise_burst(centre_hz: float, bandwidth_hz: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """White noise through one wide resonator, with raised-cosine ends; peak 1."""
    n = max(int(duration_s * SAMPLE_RATE), 1)
    y = _filtered(rng.standard_normal(n), lambda f: resonator(f, centre_hz, bandwidth_hz)) * _envelope(n)
    return y / max(np.abs(y).max(), 1e-12)


def speak(phones: str, f0_hz: float, formant_scale: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    """The waveform of space-separated ``phones`` (keys of VOWELS, SONORANTS, NOISES) for one speaker."""
    parts = []
    for k, phone in enumerate(phones.split()):
        pitch = f0_hz * (1 - 0.08 * k / max(len(phones.split()), 1))  # declination over the word
        if phone in NOISES:
            centre, width, dur, amp, closure = NOISES[phone]
            parts.append(np.zeros(int(closure / rate * SAMPLE_RATE)))
            parts.append(amp * noise_burst(centre * formant_scale, width, dur / rate, rng))
        else:
            vowel = phone in VOWELS
            formants = [f * formant_scale for f in (VOWELS[phone] if vowel else SONORANTS[phone])]
            dur, amp = (VOWEL_S, 1.0) if vowel else (SONORANT_S, 0.45)
            parts.append(amp * voiced(formants, pitch, dur / rate, rng))
    return np.concatenate(parts)


def _unknown_word(rng: np.random.Generator) -> str:
    """A random one- or two-syllable phone string (consonant? vowel consonant?) that is not a keyword."""
    consonants, vowels = (*SONORANTS, *NOISES), tuple(VOWELS)
    while True:
        phones = []
        for _ in range(int(rng.integers(1, 3))):
            if rng.random() < 0.7:
                phones.append(consonants[rng.integers(len(consonants))])
            phones.append(vowels[rng.integers(len(vowels))])
            if rng.random() < 0.5:
                phones.append(consonants[rng.integers(len(consonants))])
        word = " ".join(phones)
        if word not in WORDS.values():
            return word


def _background(rng: np.random.Generator) -> np.ndarray:
    """One second of noise, a random mix of white and brown (integrated) noise, unit RMS."""
    white = rng.standard_normal(SAMPLE_RATE)
    brown = np.cumsum(rng.standard_normal(SAMPLE_RATE))
    brown -= np.linspace(brown[0], brown[-1], SAMPLE_RATE)
    mix = rng.random()
    y = mix * white / white.std() + (1 - mix) * brown / brown.std()
    return y / y.std()


def clip(label: int, rng: np.random.Generator, snr_db: tuple[float, float] = (0.0, 20.0)) -> np.ndarray:
    """One second (float32 [16000]) of class ``label`` of :data:`CLASSES` from a random speaker."""
    noise = _background(rng)
    if CLASSES[label] == SILENCE:
        return (10 ** rng.uniform(-3, -1) * noise).astype(np.float32)
    phones = WORDS[CLASSES[label]] if label < len(KEYWORDS) else _unknown_word(rng)
    word = speak(phones, rng.uniform(*F0_HZ), rng.uniform(*FORMANT_SCALE), rng.uniform(*RATE), rng)[:SAMPLE_RATE]
    word *= 10 ** rng.uniform(-1, -0.3) / np.abs(word).max()
    start = int(rng.integers(0, SAMPLE_RATE - len(word) + 1))
    signal = np.zeros(SAMPLE_RATE)
    signal[start: start + len(word)] = word
    speech_rms = np.sqrt(np.mean(word ** 2))
    return (signal + speech_rms * 10 ** (-rng.uniform(*snr_db) / 20) * noise).astype(np.float32)


class Keywords(Dataset):
    """Log-mel features ``[frames, n_mels]`` with int labels (``classes`` names them), as
    :class:`~neurotoken.data.speech_commands.SpeechCommands` serves them; ``features`` and ``labels``
    hold the whole set as tensors."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels, self.classes = features, labels, CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.features[i], int(self.labels[i])


def waveforms(n_per_class: int = 100, split: str = "training", seed: int = 0,
              snr_db: tuple[float, float] = (0.0, 20.0)) -> tuple[np.ndarray, np.ndarray]:
    """Clips [12 * n_per_class, 16000] float32 and labels [N] int64, classes interleaved; each split
    draws its own speakers from ``seed``."""
    n_per_class = _checks.positive_int("n_per_class", n_per_class)
    _checks.choice("split", split, SUBSETS)
    seed = _checks.positive_int("seed", seed, low=0)
    if len(snr_db) != 2:
        raise ValueError(f"snr_db must be a (low, high) pair of decibels, got {snr_db!r}")
    lo, hi = (_checks.number(f"snr_db[{i}]", v) for i, v in enumerate(snr_db))
    if hi < lo:
        raise ValueError(f"snr_db must be (low, high) with low <= high, got {snr_db!r}")
    rng = np.random.default_rng([seed, SUBSETS.index(split)])
    labels = np.tile(np.arange(len(CLASSES)), n_per_class)
    return np.stack([clip(int(c), rng, (lo, hi)) for c in labels]), labels.astype(np.int64)


def keywords(n_per_class: int = 100, split: str = "training", seed: int = 0, *,
             snr_db: tuple[float, float] = (0.0, 20.0), n_mels: int = 40, n_fft: int = 480, hop: int = 160) -> Keywords:
    """The generated 12-class set: features ``[12 * n_per_class, 1 + 16000 // hop, n_mels]`` (float32)
    from :func:`~neurotoken.data.speech_commands.log_mel` and balanced labels, deterministic in
    ``seed`` and ``split`` ("training", "validation" or "testing")."""
    for name, v in (("n_mels", n_mels), ("n_fft", n_fft), ("hop", hop)):
        _checks.positive_int(name, v)
    clips, labels = waveforms(n_per_class, split, seed, snr_db)
    return Keywords(log_mel(torch.from_numpy(clips), n_mels=n_mels, n_fft=n_fft, hop=hop), torch.from_numpy(labels))


__all__ = ["CLASSES", "WORDS", "VOWELS", "Keywords", "keywords", "waveforms", "clip", "speak", "voiced",
           "noise_burst", "resonator"]
