"""Tiny files in each real dataset's published format, for the real-data recipes' tests (the byte
layouts the loaders' own format tests write)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np

from neurotoken.data.speech_commands import KEYWORDS


def cifar10(root: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> Path:
    """``root/cifar-10-batches-bin`` with five training batches and a test batch of random records."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    for name, n in zip(names, [n_train // 5 + (k < n_train % 5) for k in range(5)] + [n_test]):
        records = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], axis=1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    return root


def _events(rng, n: int, sensor: tuple[int, int], t_max: int):
    return rng.integers(0, sensor[1], n), rng.integers(0, sensor[0], n), np.sort(rng.integers(0, t_max, n)), \
        rng.integers(0, 2, n)


def nmnist(root: Path, per_split: tuple[int, int] = (12, 6), seed: int = 0) -> Path:
    """``root/Train|Test/<digit>/*.bin`` of 40-bit events (x, y, polarity and 23-bit time, big-endian)."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("Train", "Test"), per_split):
        for k in range(n):
            folder = root / split / str(k % 10)
            folder.mkdir(parents=True, exist_ok=True)
            x, y, t, p = _events(rng, 60, (34, 34), 300_000)
            data = bytearray()
            for xi, yi, ti, pi in zip(x, y, t, p):
                data += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 127), (ti >> 8) & 255, ti & 255])
            (folder / f"{k:05d}.bin").write_bytes(bytes(data))
    return root


def shd(root: Path, per_split: tuple[int, int] = (12, 6), seed: int = 0, name: str = "shd", classes: int = 20) -> Path:
    """``root/shd_train.h5`` and ``shd_test.h5``: ``spikes/times`` (s), ``spikes/units`` (0-699), ``labels``."""
    import h5py

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "test"), per_split):
        with h5py.File(root / f"{name}_{split}.h5", "w") as f:
            times, units = np.empty(n, dtype=object), np.empty(n, dtype=object)
            for i in range(n):
                k = int(rng.integers(20, 200))
                times[i] = (np.sort(rng.integers(0, 1400, k)) * 1e-3).astype(np.float32)
                units[i] = rng.integers(0, 700, k).astype(np.uint16)
            f.create_dataset("spikes/times", data=times, dtype=h5py.vlen_dtype(np.float32))
            f.create_dataset("spikes/units", data=units, dtype=h5py.vlen_dtype(np.uint16))
            f.create_dataset("labels", data=np.arange(n, dtype=np.uint16) % classes)
    return root


def ssc(root: Path, seed: int = 0) -> Path:
    """``root/ssc_train.h5`` and ``ssc_test.h5``, SHD's layout with 35 classes."""
    return shd(root, seed=seed, name="ssc", classes=35)


def _wav(path: Path, samples) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def speech_commands(root: Path, seed: int = 0) -> Path:
    """Speech Commands v2 layout: a folder of 16 kHz 16-bit wavs per keyword (plus one unknown word),
    ``validation_list.txt``, ``testing_list.txt`` and ``_background_noise_``."""
    rng = np.random.default_rng(seed)
    for w in (*KEYWORDS, "cat"):
        for k in range(2):
            _wav(root / w / f"{k:08x}_nohash_0.wav", rng.integers(-3000, 3000, 8_000 + 4_000 * k))
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text("".join(f"{w}/00000001_nohash_0.wav\n" for w in KEYWORDS[:4]))
    _wav(root / "_background_noise_" / "white.wav", rng.integers(-2000, 2000, 16_000 * 12))
    return root


def dvs_gesture(root: Path, seed: int = 0) -> Path:
    """IBM DVS Gesture layout: one AEDAT 3.1 file per split (polarity packets), its ``_labels.csv``
    and ``trials_to_train.txt`` / ``trials_to_test.txt``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, gestures in (("train", 6), ("test", 3)):
        x, y, t, p = _events(rng, 600, (128, 128), 10_000 * gestures)
        records = b"".join(struct.pack("<Ii", (int(a) << 17) | (int(b) << 2) | (int(c) << 1) | 1, int(d))
                           for a, b, c, d in zip(x, y, p, t))
        header = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, len(x), len(x), len(x))
        name = f"user01_{split}.aedat"
        (root / name).write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + header + records)
        rows = "".join(f"{g % 11 + 1},{10_000 * g},{10_000 * (g + 1)}\n" for g in range(gestures))
        (root / f"user01_{split}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)
        (root / f"trials_to_{split}.txt").write_text(name + "\n")
    return root


WRITERS = {"cifar10": cifar10, "nmnist": nmnist, "shd": shd, "ssc": ssc, "speech_commands": speech_commands,
           "dvs_gesture": dvs_gesture}
