"""Boundary validation: each check names the argument and what was expected."""

from __future__ import annotations

import math
import numbers
import operator
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch


def tensor(name: str, x, *, min_dim: int = 0, max_dim: int | None = None, finite: bool = False) -> torch.Tensor:
    """Require a tensor of rank in [min_dim, max_dim]; with ``finite`` also finite values (a host sync:
    for data given once, such as weights or a calibration set, never in a forward pass)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        want = f"at least {min_dim}" if max_dim is None else f"between {min_dim} and {max_dim}"
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    # a finite sum proves every entry finite (one cheap reduction); overflow falls back to the full check
    if finite and not (bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())):
        raise ValueError(f"{name} must hold finite values (found NaN or inf)")
    return x


def real(name: str, x: torch.Tensor) -> torch.Tensor:
    """Require a real (not complex) tensor: complex input would lose its imaginary part silently."""
    if x.is_complex():
        raise TypeError(f"{name} must be a real tensor, got {x.dtype}")
    return x


def number(name: str, x, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """Require a finite real number in the given (closed unless told open) interval."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(x.shape)}")
        x = x.item()
    if _is_bool(x) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def _is_bool(x) -> bool:
    return isinstance(x, bool) or (isinstance(x, torch.Tensor) and x.dtype == torch.bool)


def integer(name: str, x) -> int:
    """Require an integral number: any type with ``__index__`` (numpy ints too), not a bool."""
    try:
        value = None if _is_bool(x) else operator.index(x)
    except TypeError:
        value = None
    if value is None:
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    return value


def flag(name: str, x) -> bool:
    """Require a bool (a string such as 'no' would be truthy)."""
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__}")
    return x


def positive_int(name: str, x, *, low: int = 1) -> int:
    """Require an integral number >= low (see :func:`integer`)."""
    value = integer(name, x)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def choice(name: str, x: str, options: Iterable[str]) -> str:
    options = tuple(options)
    if x not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {x!r}")
    return x


def increasing(name: str, xs: Sequence[float], *, min_len: int = 1) -> tuple[float, ...]:
    """Require a strictly increasing sequence of finite numbers."""
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(xs).__name__}")
    xs = tuple(number(f"{name}[{i}]", v) for i, v in enumerate(xs))
    if len(xs) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} values, got {len(xs)}")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"{name} must be strictly increasing, got {xs}")
    return xs


def toml_file(what: str, path) -> dict:
    """The tables of the TOML file at ``path``; errors name it as ``what`` ("config file", "chip file")."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory, expected a TOML file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {str(path)!r} is not valid TOML: {e}") from None
