"""Disk cache of binned samples: sparse counts as plain ``.npy`` files (no pickle), each written
atomically, with a ``manifest.json`` written last so a cache exists only once it is complete.

A cache folder holds, for N samples, the flat indices and counts of each sample's non-zero cells
(``index.npy`` int64, ``count.npy`` uint32, sample i at ``offsets[i]:offsets[i + 1]``), the number
of bins of each sample (``lengths.npy``) and the labels (``labels.npy``). Arrays load memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._io import atomic_file, atomic_write

VERSION = 1
_ARRAYS = ("index", "count", "offsets", "lengths", "labels")


def key(**parts) -> str:
    """A short hash of JSON-able ``parts`` (loader, split, binning, source files): the cache's name."""
    text = json.dumps({"version": VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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

    def __len__(self) -> int:
        return len(self.lengths)

    def dense(self, i: int) -> np.ndarray:
        out = np.zeros((int(self.lengths[i]), *self.cell_shape), dtype=np.float32)
        lo, hi = self.offsets[i], self.offsets[i + 1]
        out.reshape(-1)[self.index[lo:hi]] = self.count[lo:hi]
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            with atomic_file(folder / f"{name}.npy") as f:
                np.save(f, getattr(self, name), allow_pickle=False)
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
