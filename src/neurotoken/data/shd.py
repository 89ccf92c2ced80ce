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
from .events import BinnedDataset, _cache_folder, _folder, _optional_int, bin_times

CHANNELS = 700
_KEYS = ("spikes/times", "spikes/units", "labels")
_SSC_FILES = {"training": "ssc_train.h5", "validation": "ssc_valid.h5", "testing": "ssc_test.h5"}


class _H5Samples:
    """Reads one sample's spikes; the file opens once per process (safe with DataLoader workers)."""

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

    def __call__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        pid, f = self._open
        if pid != os.getpid():
            f = require("h5py", "hdf5", self.user).File(self.path, "r")
            self._open = (os.getpid(), f)
        t = np.rint(np.asarray(f["spikes/times"][i], dtype=np.float64) * 1e6).astype(np.int64)
        units = np.asarray(f["spikes/units"][i], dtype=np.int64)
        if len(t) != len(units) or (units.size and (units.min() < 0 or units.max() >= CHANNELS)):
            raise ValueError(f"{self.path}: sample {i} has {len(t)} times, {len(units)} units "
                             f"(units must be 0-{CHANNELS - 1}, one per time)")
        return t, units


class _SpikeSample:
    """Bins sample i of an SHD/SSC file to ``[T, 700]`` counts (a picklable callable)."""

    def __init__(self, samples: _H5Samples, steps: int, bin_us: int | None, span: int | None, binary: bool):
        self.samples, self.steps, self.bin_us, self.span, self.binary = samples, steps, bin_us, span, binary

    def __call__(self, i: int) -> np.ndarray:
        t, units = self.samples(i)
        width = self.span if self.span is not None else (int(t.max()) + 1 if t.size else 1)
        counts = bin_times(t, units, CHANNELS, T=self.steps, bin_us=self.bin_us, t_span=width)
        return np.minimum(counts, 1) if self.binary else counts


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
