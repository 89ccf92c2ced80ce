"""Text classification for a bidirectional encoder: which standard-library module a docstring is from.

Docstrings are collected per module as :mod:`neurotoken.data.text` collects its corpus, each
recorded with its module. The module list is pinned (ordered by docstring count), so the task
has the same classes and counts on every Python version; the docstrings of each module are
ordered by a hash of the seed and their text and a fixed count per module is kept, so the
selection does not depend on the order the interpreter lists them in, and a docstring whose text
differs between versions moves only its own place in that order. Texts are UTF-8 bytes (cut to ``max_len``,
right-padded with PAD = 0, a byte docstrings never hold); :func:`mask_bytes` makes the
masked-byte pre-training inputs with MASK = 0xFF, a byte UTF-8 never uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import sys
import warnings
from functools import lru_cache
from typing import NamedTuple

import torch

from .. import _checks
from .text import SKIP_MODULES, _docstrings

# the modules with the most docstrings, each with at least the default per_module count on Python 3.9 to 3.13
MODULES = ("asyncio", "decimal", "logging", "unittest", "inspect", "pdb", "imaplib", "mailbox", "tarfile")
MIN_CHARS = 40   # shorter docstrings ("Return self.") say too little about their module
PAD, MASK = 0, 0xFF
IGNORE = -100    # target of unmasked positions (torch's cross-entropy ignore_index)


class DocstringModules(NamedTuple):
    x_train: torch.Tensor  # [N, max_len] int64 bytes, PAD-padded
    y_train: torch.Tensor  # [N] int64: index into modules
    x_test: torch.Tensor
    y_test: torch.Tensor
    modules: tuple[str, ...]


def _module_docstrings(names) -> dict[str, set[str]]:
    """Docstring -> the modules of ``names`` (those that import) holding it, texts of at least MIN_CHARS."""
    found: dict[str, set[str]] = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # deprecated attributes warn when touched
        for name in names:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - platform-specific modules fail in many ways
                continue
            for doc in _docstrings(module):
                if len(doc) >= MIN_CHARS:
                    found.setdefault(doc, set()).add(name)
    return found


@lru_cache(maxsize=1)
def labelled_docstrings() -> tuple[tuple[str, str], ...]:
    """(module, docstring) of every pinned module that imports, each text at least MIN_CHARS long and
    found in one module only (texts shared between modules are dropped)."""
    return tuple((next(iter(names)), doc) for doc, names in _module_docstrings(MODULES).items() if len(names) == 1)


@lru_cache(maxsize=1)
def unlabelled_docstrings() -> tuple[str, ...]:
    """Docstrings (at least MIN_CHARS long) of the public standard-library modules outside the pinned
    list, less any text a pinned module also holds: texts that carry no label of the task."""
    names = sorted(sys.stdlib_module_names - SKIP_MODULES - set(MODULES))
    labelled = _module_docstrings(MODULES)
    return tuple(doc for doc in _module_docstrings(n for n in names if not n.startswith("_")) if doc not in labelled)


def transfer_texts(n: int, max_len: int = 256, seed: int = 0) -> torch.Tensor:
    """``n`` of :func:`unlabelled_docstrings` (the first by sha256 of seed and text) as byte ids
    [n, max_len]: a transfer set on which a teacher's outputs train a student."""
    n = _checks.positive_int("n", n)
    docs = unlabelled_docstrings()
    if n > len(docs):
        raise ValueError(f"n must be <= {len(docs)} (the unlabelled docstrings of this Python), got {n}")
    seed = _checks.positive_int("seed", seed, low=0)
    chosen = sorted(docs, key=lambda d: hashlib.sha256(f"{seed}\0{d}".encode()).digest())[:n]
    return _encode(chosen, _checks.positive_int("max_len", max_len))


def _encode(texts: list[str], max_len: int) -> torch.Tensor:
    ids = torch.full((len(texts), max_len), PAD, dtype=torch.int64)
    for i, text in enumerate(texts):
        row = text.encode()[:max_len]
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.int64)
    return ids


def docstring_modules(k: int = 8, max_len: int = 256, seed: int = 0, *, per_module: int = 40,
                      test_per_module: int = 10) -> DocstringModules:
    """The first ``k`` pinned modules as classes, ``per_module`` docstrings of each (the first by
    sha256 of seed and text), ``test_per_module`` of them held out for testing."""
    k = _checks.positive_int("k", k, low=2)
    if k > len(MODULES):
        raise ValueError(f"k must be <= {len(MODULES)} (the pinned modules), got {k}")
    max_len = _checks.positive_int("max_len", max_len)
    seed = _checks.positive_int("seed", seed, low=0)
    per_module = _checks.positive_int("per_module", per_module, low=2)
    test_per_module = _checks.positive_int("test_per_module", test_per_module)
    if test_per_module >= per_module:
        raise ValueError(f"test_per_module must be < per_module={per_module}, got {test_per_module}")
    modules = MODULES[:k]
    by_module = {m: [] for m in modules}
    for m, doc in labelled_docstrings():
        if m in by_module:
            by_module[m].append(doc)
    parts = {"train": ([], []), "test": ([], [])}
    for label, m in enumerate(modules):
        docs = sorted(by_module[m], key=lambda d: hashlib.sha256(f"{seed}\0{d}".encode()).digest())
        if len(docs) < per_module:
            raise ValueError(f"module {m!r} has {len(docs)} docstrings in this Python, fewer than "
                             f"per_module={per_module}; ask for fewer")
        for part, chosen in (("test", docs[:test_per_module]), ("train", docs[test_per_module:per_module])):
            parts[part][0].extend(chosen)
            parts[part][1].extend([label] * len(chosen))
    (xtr, ytr), (xte, yte) = parts["train"], parts["test"]
    return DocstringModules(_encode(xtr, max_len), torch.tensor(ytr), _encode(xte, max_len), torch.tensor(yte),
                            modules)


def mask_bytes(ids: torch.Tensor, p: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-byte pre-training pairs from byte ids ``[N, L]``: each non-PAD byte is replaced by MASK
    with probability ``p`` (drawn on the ids' device); targets hold the original byte there and
    IGNORE elsewhere."""
    _checks.tensor("ids", ids, min_dim=2, max_dim=2)
    if ids.dtype != torch.int64:
        raise TypeError(f"ids must be int64 byte ids, got {ids.dtype}")
    p = _checks.number("p", p, low=0, high=1, low_open=True)
    g = torch.Generator(device=ids.device).manual_seed(_checks.positive_int("seed", seed, low=0))
    masked = (torch.rand(ids.shape, generator=g, device=ids.device) < p) & (ids != PAD)
    return ids.masked_fill(masked, MASK), ids.masked_fill(~masked, IGNORE)


__all__ = ["MODULES", "PAD", "MASK", "IGNORE", "DocstringModules", "labelled_docstrings", "unlabelled_docstrings",
           "docstring_modules", "transfer_texts", "mask_bytes"]
