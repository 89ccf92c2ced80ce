"""Byte-level text for next-byte prediction: the installed Python standard library's docstrings
(deterministic for a Python version, nothing downloaded) or any UTF-8 text file.

Tokens are the UTF-8 bytes (vocabulary 256). The text splits into a contiguous training part
and a validation part after it; each part is cut into non-overlapping windows of L + 1 bytes,
x = window[:-1] and y = window[1:] (the next byte of every position).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import torch

from .. import _checks

VOCAB = 256
# Standard-library modules not read: importing them has side effects (prints, opens a browser,
# touches the terminal) or pulls in GUI/test/packaging code.
SKIP_MODULES = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "venv",
                          "lib2to3", "pydoc_data", "test", "readline", "rlcompleter", "curses", "msilib", "winreg",
                          "winsound", "msvcrt", "nt", "_winapi"})


class TextSplit(NamedTuple):
    x_train: torch.Tensor  # [N, L] bytes as int64
    y_train: torch.Tensor  # [N, L] the next byte of each position
    x_val: torch.Tensor
    y_val: torch.Tensor


def _docstrings(module) -> list[str]:
    """The module's docstring, then its public classes and functions (and the classes' methods)
    defined in it or its submodules, by sorted name."""
    found = [module]
    for name in sorted(vars(module)):
        obj = vars(module)[name]
        home = getattr(obj, "__module__", None)
        if name.startswith("_") or not isinstance(home, str) or home.split(".")[0] != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            found.append(obj)
        if inspect.isclass(obj):
            found += [m for n, m in sorted(vars(obj).items()) if not n.startswith("_") and inspect.isroutine(m)]
    return [inspect.cleandoc(o.__doc__) for o in found if isinstance(getattr(o, "__doc__", None), str)]


@lru_cache(maxsize=4)
def stdlib_corpus(max_bytes: int = 2_000_000) -> str:
    """Docstrings of the public standard-library modules (``sys.stdlib_module_names`` in sorted
    order, less :data:`SKIP_MODULES` and those that fail to import), each distinct text once,
    blank-line separated, cut to at most ``max_bytes`` UTF-8 bytes at a character boundary. Same
    text on every run of the same Python installation."""
    _checks.positive_int("max_bytes", max_bytes)
    seen, parts = set(), []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # deprecated modules and attributes warn when touched
        for name in sorted(sys.stdlib_module_names - SKIP_MODULES):
            if name.startswith("_"):
                continue
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - platform-specific modules fail in many ways
                continue
            for doc in _docstrings(module):
                if doc and doc not in seen:
                    seen.add(doc)
                    parts.append(doc)
    return "\n\n".join(parts).encode()[:max_bytes].decode(errors="ignore")


def encode(text: str) -> torch.Tensor:
    """UTF-8 bytes of ``text`` as int64 tokens [n]."""
    return torch.tensor(list(text.encode()), dtype=torch.long)


def decode(tokens: torch.Tensor) -> str:
    """Tokens [n] (bytes) back to text; invalid UTF-8 becomes U+FFFD."""
    return bytes(tokens.tolist()).decode(errors="replace")


def windows(tokens: torch.Tensor, L: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of L + 1 tokens as (x [N, L], y [N, L]) with y = x shifted by one."""
    w = tokens[: (len(tokens) - 1) // L * L + 1]
    return w[:-1].view(-1, L), w[1:].view(-1, L)


def load_text(path: str | Path | None = None, L: int = 128, val_fraction: float = 0.1,
              max_bytes: int = 2_000_000) -> TextSplit:
    """Next-byte windows of the UTF-8 file ``path`` (default: :func:`stdlib_corpus`): the first
    1 - ``val_fraction`` of the bytes for training, the rest for validation (disjoint)."""
    _checks.positive_int("L", L)
    _checks.number("val_fraction", val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    if path is None:
        text = stdlib_corpus(max_bytes)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path must name a UTF-8 text file, {str(path)!r} is not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"path {str(path)!r} is not UTF-8 text: {e}") from None
    tokens = encode(text)[:max_bytes]
    cut = int(len(tokens) * (1 - val_fraction))
    if min(cut, len(tokens) - cut) < L + 1:
        raise ValueError(f"the text ({len(tokens)} bytes) is too short for windows of L + 1 = {L + 1} bytes "
                         f"in both parts (val_fraction={val_fraction})")
    return TextSplit(*windows(tokens[:cut], L), *windows(tokens[cut:], L))


__all__ = ["VOCAB", "SKIP_MODULES", "TextSplit", "stdlib_corpus", "encode", "decode", "windows", "load_text"]
