"""Event-camera datasets from their published files, binned onto the virtual time axis.

N-MNIST (``Train|Test/<digit>/*.bin``, 40-bit events) and DVS Gesture (AEDAT 3.1 files listed in
``trials_to_train.txt``/``trials_to_test.txt``, each with its ``_labels.csv``) are read with numpy.
Each sample becomes exact spike counts ``[T, H, W, C]`` (float32 holding small integers, or 0/1 with
``binary=True``), channels last; a :func:`~neurotoken.data.collate.time_first` batch is
``[T, B, H, W, C]``. Binning: ``T`` equal bins over each sample's span, or bins of ``bin_us``
microseconds (``T`` of them from the first event, or as many as the sample needs), polarity as two
channels (off, on) or one merged, spatial down-sampling by summing ``downsample x downsample``
pixels, and an optional denoise filter. Binned samples are cached under ``cache`` keyed by these
choices and the source files.
"""

from __future__ import annotations

import csv
import operator
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import cache as _cache
from .collate import time_first

NMNIST_SENSOR = (34, 34)
GESTURE_SENSOR = (128, 128)
GESTURE_CLASSES = 11
_NMNIST_OVERFLOW_Y = 240  # an N-MNIST record with y == 240 marks a timestamp overflow of 2**13 us
_AEDAT_HEADER_END = b"#!END-HEADER\r\n"
_AEDAT_PACKET = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                          ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_AEDAT_POLARITY = 1


def _optional_int(name: str, value, *, low: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or None, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}") from None
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def bin_of(t: np.ndarray, T: int | None, bin_us: int | None, t_span) -> np.ndarray:
    """The bin of each event time ``t`` (measured from the window's start): ``t // bin_us``, else ``T``
    equal bins over ``[0, t_span)`` (``t_span`` an int or one per event)."""
    return t // bin_us if bin_us is not None else t * T // t_span


def bin_times(t: np.ndarray, cell: np.ndarray, n_cells: int, *, T: int | None = None, bin_us: int | None = None,
              t_start: int = 0, t_span: int | None = None) -> np.ndarray:
    """Spike counts ``[T, n_cells]``: event k adds one at (its bin, ``cell[k]``).

    With ``bin_us`` the bin is ``(t - t_start) // bin_us`` (``T`` bins, or as many as the last event
    needs); otherwise ``T`` equal bins cover ``[t_start, t_start + t_span)``. Events outside fall away."""
    t = t - t_start
    b = bin_of(t, T, bin_us, t_span)
    if T is None:
        T = int(b.max()) + 1 if b.size else 1
    keep = (b >= 0) & (b < T)
    if not keep.all():
        b, cell = b[keep], cell[keep]
    return np.bincount(b * n_cells + cell, minlength=T * n_cells).reshape(T, n_cells)


def denoise(x: np.ndarray, y: np.ndarray, t: np.ndarray, filter_us: int, sensor: tuple[int, int]) -> np.ndarray:
    """Mask of the events to keep: those with an earlier event (in stream order) at one of their four
    neighbouring pixels less than ``filter_us`` before them (the rule of tonic's ``Denoise``)."""
    n = len(t)
    height, width = sensor
    keys = np.sort((y.astype(np.int64) * width + x) * n + np.arange(n))   # by pixel, then stream order
    idx, pix = keys % n, keys // n
    xs, ys = x[idx], y[idx]
    near = np.zeros(n, dtype=bool)
    for dx, dy, inside in ((-1, 0, xs > 0), (1, 0, xs < width - 1), (0, -1, ys > 0), (0, 1, ys < height - 1)):
        step = dy * width + dx
        pos = np.searchsorted(keys, keys + step * n) - 1   # queries sorted too: a fast merge
        prev = keys[np.maximum(pos, 0)]
        near |= inside & (pos >= 0) & (prev // n == pix + step) & (t[idx] - t[prev % n] < filter_us)
    keep = np.zeros(n, dtype=bool)
    keep[idx] = near
    return keep


@dataclass(frozen=True)
class EventBinning:
    """How events become a ``[T, H, W, C]`` sample (see the module docstring)."""

    T: int | None = 10
    bin_us: int | None = None
    channels: int = 2
    downsample: int = 1
    denoise_us: int | None = None
    binary: bool = False

    def __post_init__(self):
        _optional_int("T", self.T)
        _optional_int("bin_us", self.bin_us)
        if self.T is None and self.bin_us is None:
            raise ValueError("give T (number of bins) or bin_us (bin width in microseconds), or both")
        if self.channels not in (1, 2) or isinstance(self.channels, bool):
            raise ValueError(f"channels must be 1 (polarities merged) or 2 (off, on), got {self.channels!r}")
        if _optional_int("downsample", self.downsample) is None:
            raise TypeError("downsample must be an int >= 1, got None")
        _optional_int("denoise_us", self.denoise_us)
        if not isinstance(self.binary, bool):
            raise TypeError(f"binary must be a bool, got {type(self.binary).__name__}")

    def cell_shape(self, sensor: tuple[int, int]) -> tuple[int, int, int]:
        f = self.downsample
        return (sensor[0] + f - 1) // f, (sensor[1] + f - 1) // f, self.channels

    def __call__(self, x, y, t, p, sensor: tuple[int, int]) -> np.ndarray:
        """Bin one sample's events (time-ordered int arrays; ``p`` 1 = on) to ``[T, H, W, C]`` counts."""
        if self.denoise_us is not None:
            keep = denoise(x, y, t, self.denoise_us, sensor)
            x, y, t, p = x[keep], y[keep], t[keep], p[keep]
        h, w, c = self.cell_shape(sensor)
        f = self.downsample
        cell = ((y // f) * w + x // f) * c + (p if c == 2 else 0)
        t0 = int(t.min()) if t.size else 0
        span = int(t.max()) - t0 + 1 if t.size else 1
        counts = bin_times(t, cell, h * w * c, T=self.T, bin_us=self.bin_us, t_start=t0, t_span=span)
        if self.binary:
            np.minimum(counts, 1, out=counts)
        return counts.reshape(-1, h, w, c)


class BinnedDataset(Dataset):
    """Labelled samples binned to ``[T, *cell_shape]`` (float32 counts) with int labels; batches through
    ``collate_fn`` (:func:`time_first`) to ``[T, B, *cell_shape]``. ``binned`` bins sample i (a callable
    returning its counts) or many at once (an object whose ``sparse(indices)`` returns their
    :class:`~neurotoken.data.cache.SparseSamples`). With a cache folder every sample is binned once and
    served from the memory-mapped cache afterwards."""

    collate_fn = staticmethod(time_first)
    chunk = 64  # samples binned together when the binning has a ``sparse`` form

    def __init__(self, labels: np.ndarray, cell_shape: tuple[int, ...], binned, cache_folder: Path | None = None):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.cell_shape = tuple(cell_shape)
        self._binned = binned
        self._sparse = None
        if cache_folder is not None:
            self._sparse = _cache.SparseSamples.load(cache_folder)
            if self._sparse is None:
                if hasattr(binned, "sparse"):
                    n = len(self.labels)
                    self._sparse = _cache.SparseSamples.concat(binned.sparse(range(lo, min(n, lo + self.chunk)))
                                                               for lo in range(0, n, self.chunk))
                else:
                    samples = map(binned, range(len(self.labels)))
                    self._sparse = _cache.SparseSamples.from_dense(samples, self.labels, self.cell_shape)
                try:
                    self._sparse.save(cache_folder)
                    self._sparse = _cache.SparseSamples.load(cache_folder)   # memory-mapped from now on
                except OSError as err:
                    warnings.warn(f"could not write the cache {cache_folder} ({err}); serving from memory",
                                  stacklevel=3)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, int]]:
        """Samples ``indices`` as (x, label) pairs, binned or read from the cache in one pass where the
        binning has a ``sparse(indices)`` form (a :class:`~neurotoken.data.cache.SparseSamples`)."""
        n = len(self.labels)
        indices = [operator.index(i) for i in indices]
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for a dataset of {n} samples")
        indices = [i % n for i in indices]
        if self._sparse is not None:
            xs = self._sparse.dense_many(indices)
        elif hasattr(self._binned, "sparse"):
            xs = self._binned.sparse(indices).dense_many(range(len(indices)))
        else:
            xs = [self._binned(i).astype(np.float32) for i in indices]
        return [(torch.from_numpy(x), int(self.labels[i])) for x, i in zip(xs, indices)]


def _cache_folder(cache, root: Path, name: str, files: list[Path], **params) -> Path | None:
    if cache is False or cache is None:
        return None
    if not isinstance(cache, (bool, str, Path)):
        raise TypeError(f"cache must be True, False or a folder path, got {type(cache).__name__}")
    folder = root / ".neurotoken-cache" if cache is True else Path(cache)
    return folder / f"{name}-{_cache.key(name=name, files=_cache.source_stamp(files, root), **params)}"


def _folder(root, name: str = "root") -> Path:
    if not isinstance(root, (str, Path)):
        raise TypeError(f"{name} must be a path (str or Path), got {type(root).__name__}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{name} {str(root)!r} is not a folder")
    return root


def read_nmnist(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events ``(x, y, t_us, p)`` (int64 arrays, ``p`` 1 = on) of one N-MNIST ``.bin`` file.

    Each event is 40 bits: x (8), y (8), polarity (1), timestamp (23, microseconds), big-endian;
    a record with y = 240 marks a timestamp overflow: 2**13 is added to the timestamps from it on."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise ValueError(f"{path}: truncated N-MNIST file ({raw.size} bytes is not a whole number of 5-byte events)")
    r = raw.reshape(-1, 5).astype(np.int64)
    y = r[:, 1]
    overflow = y == _NMNIST_OVERFLOW_Y
    t = ((r[:, 2] & 127) << 16) | (r[:, 3] << 8) | r[:, 4]
    if overflow.any():
        t = t + np.cumsum(overflow) * 8192
        keep = ~overflow
        r, y, t = r[keep], y[keep], t[keep]
    x, p = r[:, 0], r[:, 2] >> 7
    if x.size and (x.max() >= NMNIST_SENSOR[1] or y.max() >= NMNIST_SENSOR[0]):
        raise ValueError(f"{path}: not an N-MNIST file (pixel ({int(x.max())}, {int(y.max())}) outside the 34 x 34 sensor)")
    return x, y, t, p


class _NmnistSample:
    """Bins sample i of an N-MNIST file list (a picklable callable, for DataLoader workers)."""

    def __init__(self, files: list[Path], binning: EventBinning):
        self.files, self.binning = files, binning

    def __call__(self, i: int) -> np.ndarray:
        return self.binning(*read_nmnist(self.files[i]), NMNIST_SENSOR)


def nmnist(root, train: bool = True, *, T: int | None = 10, bin_us: int | None = None, channels: int = 2,
           downsample: int = 1, denoise_us: int | None = None, binary: bool = False, cache=True) -> BinnedDataset:
    """N-MNIST from its original folder (``root/Train|Test/<digit>/*.bin``): samples ``[T, 34, 34, C]``
    (smaller with ``downsample``), labels 0-9. ``cache``: True (``root/.neurotoken-cache``), a folder,
    or False."""
    root = _folder(root)
    binning = EventBinning(T, bin_us, channels, downsample, denoise_us, binary)
    split = root / ("Train" if train else "Test")
    if not split.is_dir():
        raise FileNotFoundError(f"{split} is missing: nmnist expects root/Train/<digit>/*.bin and root/Test/<digit>/*.bin")
    files, labels = [], []
    for digit in range(10):
        found = sorted((split / str(digit)).glob("*.bin"))
        files += found
        labels += [digit] * len(found)
    if not files:
        raise FileNotFoundError(f"{split} holds no <digit>/*.bin files")

    folder = _cache_folder(cache, root, f"nmnist-{split.name}", files, binning=asdict(binning))
    return BinnedDataset(np.array(labels), binning.cell_shape(NMNIST_SENSOR), _NmnistSample(files, binning), folder)


def read_aedat31(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Polarity events ``(x, y, t_us, p)`` (int64 arrays) of an AEDAT 3.1 file: an ASCII header
    ending in ``#!END-HEADER``, then packets of a 28-byte header and ``capacity x size`` bytes holding
    ``number`` events; a polarity event (type 1, 8 bytes) is a uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y,
    bits 17-31 x) and an int32 timestamp extended by the packet's overflow count."""
    data = Path(path).read_bytes()
    if not data.startswith(b"#!AER-DAT3"):
        raise ValueError(f"{path}: not an AEDAT 3.x file (no '#!AER-DAT3' header line)")
    end = data.find(_AEDAT_HEADER_END)
    if end < 0:
        raise ValueError(f"{path}: AEDAT header has no '#!END-HEADER' line")
    pos, parts = end + len(_AEDAT_HEADER_END), []
    while pos < len(data):
        if pos + _AEDAT_PACKET.itemsize > len(data):
            raise ValueError(f"{path}: truncated AEDAT packet header at byte {pos}")
        head = np.frombuffer(data, _AEDAT_PACKET, count=1, offset=pos)[0]
        size, number, capacity = int(head["size"]), int(head["number"]), int(head["capacity"])
        pos += _AEDAT_PACKET.itemsize
        if size <= 0 or not 0 <= number <= capacity or pos + size * capacity > len(data):
            raise ValueError(f"{path}: truncated or corrupt AEDAT packet at byte {pos - _AEDAT_PACKET.itemsize}")
        if head["type"] == _AEDAT_POLARITY:
            if size != 8:
                raise ValueError(f"{path}: polarity events of {size} bytes at byte {pos} (AEDAT 3.1 has 8)")
            ev = np.frombuffer(data, np.dtype([("data", "<u4"), ("ts", "<i4")]), count=number, offset=pos)
            ev = ev[(ev["data"] & 1).astype(bool)]
            parts.append((ev["data"].astype(np.int64), ev["ts"].astype(np.int64) + (int(head["ts_overflow"]) << 31)))
        pos += size * capacity
    d = np.concatenate([a for a, _ in parts]) if parts else np.zeros(0, np.int64)
    t = np.concatenate([b for _, b in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(t, kind="stable")
    d, t = d[order], t[order]
    return (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, t, (d >> 1) & 1


def _gesture_labels(path: Path) -> list[tuple[int, int, int]]:
    """(label 0-10, start_us, end_us) rows of a DVS Gesture ``_labels.csv`` file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (each DVS Gesture .aedat file has a _labels.csv beside it)")
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    try:
        out = [(int(a) - 1, int(b), int(c)) for a, b, c in rows[1:]]
    except ValueError:
        raise ValueError(f"{path}: expected rows 'class,startTime_usec,endTime_usec' of integers") from None
    if any(not 0 <= lab < GESTURE_CLASSES or end <= start for lab, start, end in out):
        raise ValueError(f"{path}: classes must be 1-{GESTURE_CLASSES} and each end after its start")
    return out


class _GestureSample:
    """Bins gesture i (a slice of one recording by time); keeps the last recording read."""

    def __init__(self, files: list[Path], slices: list[tuple[int, int, int, int]], binning: EventBinning):
        self.files, self.slices, self.binning = files, slices, binning
        self._last = (None, None)

    def __call__(self, i: int) -> np.ndarray:
        k, _, start, end = self.slices[i]
        if self._last[0] != k:
            self._last = (k, read_aedat31(self.files[k]))
        x, y, t, p = self._last[1]
        lo, hi = np.searchsorted(t, [start, end])
        return self.binning(x[lo:hi], y[lo:hi], t[lo:hi], p[lo:hi], GESTURE_SENSOR)


def dvs_gesture(root, train: bool = True, *, T: int | None = 20, bin_us: int | None = None, channels: int = 2,
                downsample: int = 1, denoise_us: int | None = None, binary: bool = False, cache=True) -> BinnedDataset:
    """IBM DVS Gesture from its original folder (``trials_to_train.txt``/``trials_to_test.txt`` naming
    AEDAT 3.1 files, each with its ``_labels.csv``): one sample per labelled gesture, ``[T, 128, 128, C]``
    (smaller with ``downsample``), labels 0-10."""
    root = _folder(root)
    binning = EventBinning(T, bin_us, channels, downsample, denoise_us, binary)
    listing = root / ("trials_to_train.txt" if train else "trials_to_test.txt")
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} is missing: dvs_gesture expects the DvsGesture folder with its trial lists")
    files = [root / line.strip() for line in listing.read_text().splitlines() if line.strip()]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f} is listed in {listing.name} but missing")
    slices = [(k, lab, start, end) for k, f in enumerate(files)
              for lab, start, end in _gesture_labels(f.with_name(f.stem + "_labels.csv"))]

    csvs = [f.with_name(f.stem + "_labels.csv") for f in files]
    folder = _cache_folder(cache, root, f"dvs_gesture-{'train' if train else 'test'}", files + csvs,
                           binning=asdict(binning))
    return BinnedDataset(np.array([s[1] for s in slices]), binning.cell_shape(GESTURE_SENSOR),
                         _GestureSample(files, slices, binning), folder)
