"""CIFAR-10 from its binary version (``cifar-10-batches-bin``), read with numpy (no pickle).

Each record is 1 label byte and 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32);
``data_batch_1.bin`` to ``data_batch_5.bin`` form the training set, ``test_batch.bin`` the test set.
Images come out channels last, ``[32, 32, 3]`` float32 in [0, 1] (or standardised per channel with
``normalize=True``). ``augment=True`` applies the standard augmentation, a random 32 x 32 crop of the
image zero-padded by 4 pixels and a horizontal flip with probability 1/2, drawn from
``(seed, epoch, index)`` alone: the same in every worker, resumable, independent of batching.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import _checks
from .events import _folder

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
RECORD = 1 + 3 * 32 * 32
PAD = 4
_TRAIN = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
_TEST = ("test_batch.bin",)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 32, 32, 3]`` uint8 and labels ``[N]`` int64 of one CIFAR-10 binary batch file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise ValueError(f"{path}: truncated or not a CIFAR-10 binary batch ({raw.size} bytes is not a whole "
                         f"number of {RECORD}-byte records)")
    raw = raw.reshape(-1, RECORD)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise ValueError(f"{path}: label byte {int(labels.max())} is not a CIFAR-10 class (0-9)")
    return raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: uint64 -> well-mixed uint64 (a counter-based random source)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def augment_draws(seed: int, epoch: int, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop offsets ``dy, dx`` in 0..8 and flip flags of the given sample indices for (seed, epoch)."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch))
        r = _mix(np.asarray(index, dtype=np.uint64) + np.atleast_1d(base))
    return (r % 9).astype(np.int64), ((r >> np.uint64(8)) % 9).astype(np.int64), ((r >> np.uint64(16)) & 1) == 1


class Cifar10(Dataset):
    """CIFAR-10 images ``[32, 32, 3]`` with int labels; ``__getitems__`` fetches a batch at once."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: bool, normalize: bool, seed: int):
        self.images, self.labels = images, labels
        self.augment, self.normalize, self.seed, self.epoch = augment, normalize, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of this epoch (like ``DistributedSampler.set_epoch``)."""
        self.epoch = _checks.positive_int("epoch", epoch, low=0)

    def __len__(self) -> int:
        return len(self.labels)

    def _batch(self, index: np.ndarray) -> torch.Tensor:
        imgs = self.images[index]
        if self.augment:
            dy, dx, flip = augment_draws(self.seed, self.epoch, index)
            padded = np.pad(imgs, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
            ar = np.arange(32)
            rows = dy[:, None] + ar
            cols = dx[:, None] + np.where(flip[:, None], 31 - ar, ar)
            imgs = padded[np.arange(len(index))[:, None, None], rows[:, :, None], cols[:, None, :]]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).float().div_(255)
        if self.normalize:
            x = (x - x.new_tensor(MEAN)) / x.new_tensor(STD)
        return x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._batch(np.array([i]))[0], int(self.labels[i])

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, int]]:
        index = np.asarray(indices, dtype=np.int64)
        return list(zip(self._batch(index).unbind(0), self.labels[index].tolist()))


def cifar10(root, train: bool = True, *, augment: bool = False, normalize: bool = False, seed: int = 0) -> Cifar10:
    """CIFAR-10 from ``root`` (the ``cifar-10-batches-bin`` folder or the folder holding it)."""
    root = _folder(root)
    for name, flag in (("augment", augment), ("normalize", normalize)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    seed = _checks.positive_int("seed", seed, low=0)
    if (root / "cifar-10-batches-bin").is_dir():
        root = root / "cifar-10-batches-bin"
    files = [root / n for n in (_TRAIN if train else _TEST)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{root} lacks {', '.join(missing)} (expected the cifar-10-batches-bin folder)")
    parts = [read_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Cifar10(images, labels, augment, normalize, seed)
