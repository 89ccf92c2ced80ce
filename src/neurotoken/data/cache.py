"""Disk cache of binned samples: sparse counts as plain ``.npy`` files (no pickle), each written
atomically, with a ``manifest.json`` written last so a cache exists only once it is complete.

A cache folder holds, for N samples, the flat indices and counts of each sample's non-zero cells
(``index.npy`` and ``count.npy``, each in the narrowest integer type that holds it, sample i at
``offsets[i]:offsets[i + 1]``), the number
of bins of each sample (``lengths.npy``) and the labels (``labels.npy``). Arrays load memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._io import atomic_file, atomic_write

VERSION = 2
_ARRAYS = ("index", "count", "offsets", "lengths", "labels")


def key(**parts) -> str:
    """A short hash of JSON-able ``parts`` (loader, split, binning, source files): the cache's name."""
    text = json.dumps({"version": VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _narrow(a: np.ndarray) -> np.ndarray:
    """``a`` (non-negative integers) in the narrowest unsigned type that holds its largest value."""
    top = int(a.max()) if a.size else 0
    return a.astype(next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if top <= np.iinfo(t).max))


def source_stamp(paths: Iterable[Path], root: Path) -> list[tuple[str, int, int]]:
    """(path relative to root, size, mtime in ns) of each file: a changed file changes the key."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return out


class SparseSamples:
    """Samples of shape ``[lengths[i], *cell_shape]`` stored as their non-zero cells."""

    def __init__(self, index, count, offsets, lengths, labels, cell_shape):
        self.index, self.count, self.offsets = index, count, offsets
        self.lengths, self.labels, self.cell_shape = lengths, labels, tuple(int(c) for c in cell_shape)

    @classmethod
    def from_dense(cls, samples: Iterable[np.ndarray], labels: np.ndarray, cell_shape) -> SparseSamples:
        """Sparse copy of dense samples, consumed one at a time (a generator keeps memory flat)."""
        index, count, lengths = [], [], []
        for s in samples:
            flat = s.reshape(-1)
            nz = np.flatnonzero(flat)
            index.append(nz)
            count.append(flat[nz].astype(np.uint32))
            lengths.append(s.shape[0])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum([len(n) for n in index], out=offsets[1:])
        return cls(np.concatenate(index or [np.zeros(0, np.int64)]).astype(np.int64),
                   np.concatenate(count or [np.zeros(0, np.uint32)]), offsets,
                   np.array(lengths, dtype=np.int64), np.asarray(labels, dtype=np.int64), cell_shape)

    @classmethod
    def from_keys(cls, keys: np.ndarray, lengths: np.ndarray, labels: np.ndarray, cell_shape,
                  binary: bool = False) -> SparseSamples:
        """Counts of events without a dense copy: ``keys[k]`` is event k's cell in the samples laid end to
        end (sample i spans ``lengths[i] * prod(cell_shape)`` cells); ``binary`` clips counts to 1."""
        lengths = np.asarray(lengths, dtype=np.int64)
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths * math.prod(cell_shape), out=starts[1:])
        small = np.int32 if starts[-1] < 2**31 else np.int64  # a narrower key sorts faster
        s = np.sort(np.asarray(keys).astype(small, copy=False))
        first = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1]))) if s.size else np.zeros(0, np.int64)
        cells, count = s[first], np.diff(np.append(first, s.size))
        offsets = np.searchsorted(cells, starts)
        index = cells - np.repeat(starts[:-1], np.diff(offsets)).astype(small)
        count = np.minimum(count, 1) if binary else count
        return cls(index, _narrow(count), offsets, lengths, np.asarray(labels, dtype=np.int64), cell_shape)

    @classmethod
    def concat(cls, parts: Iterable[SparseSamples]) -> SparseSamples:
        """The samples of ``parts`` (at least one, same cell shape), in order."""
        parts = list(parts)
        shifts = np.cumsum([0] + [len(p.index) for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + k for p, k in zip(parts, shifts)]).astype(np.int64)
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("index", "count")), offsets,
                   *(np.concatenate([getattr(p, name) for p in parts]) for name in ("lengths", "labels")),
                   parts[0].cell_shape)

    def __len__(self) -> int:
        return len(self.lengths)

    def dense(self, i: int) -> np.ndarray:
        out = np.zeros((int(self.lengths[i]), *self.cell_shape), dtype=np.float32)
        lo, hi = self.offsets[i], self.offsets[i + 1]
        out.reshape(-1)[self.index[lo:hi]] = self.count[lo:hi]
        return out

    def dense_many(self, rows) -> list[np.ndarray]:
        """``[dense(i) for i in rows]``, scattered in one pass when the samples have equal lengths."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        if len(rows) == 0 or (lengths != lengths[0]).any():
            return [self.dense(i) for i in rows]
        lo, n = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        take = np.arange(n.sum()) + np.repeat(lo - np.cumsum(n) + n, n)
        out = np.zeros((len(rows), int(lengths[0]) * math.prod(self.cell_shape)), dtype=np.float32)
        out[np.repeat(np.arange(len(rows)), n), self.index[take]] = self.count[take]
        return list(out.reshape(len(rows), int(lengths[0]), *self.cell_shape))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            with atomic_file(folder / f"{name}.npy") as f:
                np.save(f, _narrow(getattr(self, name)) if name in ("index", "count") else getattr(self, name),
                        allow_pickle=False)
        manifest = {"version": VERSION, "cell_shape": list(self.cell_shape), "samples": len(self)}
        atomic_write(folder / "manifest.json", json.dumps(manifest).encode())

    @classmethod
    def load(cls, folder: Path) -> SparseSamples | None:
        """The cache in ``folder``, or None when absent, incomplete or unreadable (with a warning)."""
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            return None
        try:
            meta = json.loads(manifest.read_text())
            arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False) for n in _ARRAYS}
            out = cls(**arrays, cell_shape=meta["cell_shape"])
            if len(out.labels) != meta["samples"] or len(out.offsets) != meta["samples"] + 1:
                raise ValueError("array lengths disagree with the manifest")
            return out
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"ignoring unreadable cache {folder}: {err}; rebuilding it", stacklevel=3)
            return None
