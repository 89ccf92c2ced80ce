"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) from their HDF5 files.

Each file holds ``spikes/times`` (seconds) and ``spikes/units`` (0-699) per sample, and ``labels``.
A sample becomes exact spike counts ``[T, 700]`` (float32, or 0/1 with ``binary=True``): ``T`` equal
bins over ``[0, duration_s)``, or bins of ``bin_us`` microseconds (``T`` of them, or enough to cover
``duration_s``); spikes at or after ``duration_s`` fall outside. ``duration_s=None`` spreads the
bins over each sample's own ``[0, last spike]``. Needs ``h5py`` (``pip install 'neurotoken[hdf5]'``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .. import _checks
from ._optional import require
from .cache import SparseSamples
from .events import BinnedDataset, _cache_folder, _folder, _optional_int, bin_of

CHANNELS = 700
_KEYS = ("spikes/times", "spikes/units", "labels")
_SSC_FILES = {"training": "ssc_train.h5", "validation": "ssc_valid.h5", "testing": "ssc_test.h5"}


class _H5Samples:
    """Reads samples' spikes, many per h5py call; the file opens once per process (safe with DataLoader
    workers)."""

    def __init__(self, path: Path, user: str):
        self.path, self.user = path, user
        self._open = (None, None)
        try:
            with require("h5py", "hdf5", user).File(path, "r") as f:
                missing = [k for k in _KEYS if k not in f]
                if missing:
                    raise ValueError(f"{path}: not an SHD/SSC file (missing {', '.join(missing)}; "
                                     f"expected {', '.join(_KEYS)})")
                self.labels = np.asarray(f["labels"][()], dtype=np.int64).reshape(-1)
                sizes = {len(f["spikes/times"]), len(f["spikes/units"]), len(self.labels)}
        except OSError as err:
            raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
        if len(sizes) != 1:
            raise ValueError(f"{path}: spikes/times, spikes/units and labels differ in length")

    def __getstate__(self):
        return {**self.__dict__, "_open": (None, None)}

    def _arrays(self):
        pid, arrays = self._open
        if pid != os.getpid():
            f = require("h5py", "hdf5", self.user).File(self.path, "r")
            arrays = (f["spikes/times"], f["spikes/units"])
            self._open = (os.getpid(), arrays)
        return arrays

    def read(self, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spike times (whole microseconds) and units (int64) of samples ``indices`` laid end to end, and
        each sample's spike count: one h5py read per array (a slice for consecutive indices)."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (np.diff(idx) == 1).all():
            rows, order = slice(int(idx[0]), int(idx[-1]) + 1), slice(None)
        else:  # h5py reads increasing, distinct indices
            rows, order = np.unique(idx, return_inverse=True)
        times, units = (a[rows][order] for a in self._arrays())
        sizes = np.fromiter(map(len, times), np.int64, len(times))
        t = np.concatenate([*times, np.zeros(0, np.float64)]).astype(np.float64, copy=False)
        t = np.rint(t * 1e6).astype(np.int64)
        u = np.concatenate([*units, np.zeros(0, np.int64)]).astype(np.int64, copy=False)
        uneven = np.flatnonzero(sizes != np.fromiter(map(len, units), np.int64, len(units)))
        outside = np.flatnonzero((u < 0) | (u >= CHANNELS)) if u.size and (u.min() < 0 or u.max() >= CHANNELS) else []
        if uneven.size or len(outside):
            k = int(uneven[0]) if uneven.size else int(np.searchsorted(np.cumsum(sizes), outside[0], side="right"))
            raise ValueError(f"{self.path}: sample {idx[k]} has {sizes[k]} times, {len(units[k])} units "
                             f"(units must be 0-{CHANNELS - 1}, one per time)")
        return t, u, sizes


class _SpikeSample:
    """Bins samples of an SHD/SSC file to ``[T, 700]`` counts, many at once, vectorised over their spikes
    (picklable, for DataLoader workers)."""

    def __init__(self, samples: _H5Samples, steps: int, bin_us: int | None, span: int | None, binary: bool):
        self.samples, self.steps, self.bin_us, self.span, self.binary = samples, steps, bin_us, span, binary

    def sparse(self, indices) -> SparseSamples:
        """Samples ``indices`` binned, as their non-zero cells."""
        t, units, sizes = self.samples.read(indices)
        sample = np.repeat(np.arange(len(sizes)), sizes)
        width = self.span
        if width is None:  # each sample's own [0, last spike]
            width = np.ones(len(sizes), dtype=np.int64)
            full = sizes > 0
            width[full] = np.maximum.reduceat(t, (np.cumsum(sizes) - sizes)[full]) + 1
            width = width[sample]
        b = bin_of(t, self.steps, self.bin_us, width)
        keep = (b >= 0) & (b < self.steps)
        if not keep.all():
            b, sample, units = b[keep], sample[keep], units[keep]
        keys = (sample * self.steps + b) * CHANNELS + units
        return SparseSamples.from_keys(keys, np.full(len(sizes), self.steps), self.samples.labels[np.asarray(indices)],
                                       (CHANNELS,), self.binary)


def _spike_dataset(path: Path, name: str, user: str, T, bin_us, duration_s, binary, cache) -> BinnedDataset:
    _optional_int("T", T)
    _optional_int("bin_us", bin_us)
    if T is None and bin_us is None:
        raise ValueError("give T (number of bins) or bin_us (bin width in microseconds), or both")
    if duration_s is not None:
        duration_s = _checks.number("duration_s", duration_s, low=0, low_open=True)
    if T is None and duration_s is None:
        raise ValueError("bin_us without T needs duration_s (the window the bins cover)")
    if not isinstance(binary, bool):
        raise TypeError(f"binary must be a bool, got {type(binary).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing ({user} expects the unpacked .h5 files in root)")
    samples = _H5Samples(path, user)
    span = None if duration_s is None else round(duration_s * 1e6)
    steps = T if T is not None else math.ceil(span / bin_us)
    params = {"T": T, "bin_us": bin_us, "duration_s": duration_s, "binary": binary}
    folder = _cache_folder(cache, path.parent, name, [path], **params)
    return BinnedDataset(samples.labels, (CHANNELS,), _SpikeSample(samples, steps, bin_us, span, binary), folder)


def shd(root, train: bool = True, *, T: int | None = 100, bin_us: int | None = None, duration_s: float | None = 1.4,
        binary: bool = False, cache=True) -> BinnedDataset:
    """SHD from ``root/shd_train.h5`` or ``root/shd_test.h5``: samples ``[T, 700]``, labels 0-19.
    ``cache``: True (``root/.neurotoken-cache``), a folder, or False."""
    split = "train" if train else "test"
    return _spike_dataset(_folder(root) / f"shd_{split}.h5", f"shd-{split}", "nt.data.shd", T, bin_us,
                          duration_s, binary, cache)


def ssc(root, subset: str = "training", *, T: int | None = 100, bin_us: int | None = None,
        duration_s: float | None = 1.4, binary: bool = False, cache=True) -> BinnedDataset:
    """SSC from ``root/ssc_train.h5``, ``ssc_valid.h5`` or ``ssc_test.h5`` (``subset`` "training",
    "validation" or "testing"): samples ``[T, 700]``, labels 0-34."""
    _checks.choice("subset", subset, _SSC_FILES)
    return _spike_dataset(_folder(root) / _SSC_FILES[subset], f"ssc-{subset}", "nt.data.ssc", T, bin_us,
                          duration_s, binary, cache)
