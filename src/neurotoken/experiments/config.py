"""Experiment configs as data: frozen dataclasses <-> plain dicts <-> TOML, checked key by key.

Every config class validates itself in ``__post_init__`` with :func:`validate`: its ``CHECKS``
map each field to one validator ``(name, value)`` (built from the helpers below) and its
``RELATIONS`` hold the checks between fields, so an invalid config is refused when it is made,
before anything runs. ``from_dict`` rejects unknown keys and wrong types naming the dotted key (``fit.epochs``);
``load`` and ``with_overrides`` change only the keys they name (a partial ``[fit]`` table keeps
the experiment's other fit settings); ``with_overrides`` applies ``key=value`` assignments
(values in TOML syntax, bare words as strings), as ``neurotoken train --set`` does. TOML has no
null: fields set to None are left out
when dumping and keep their default when loading.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
import warnings
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import tomli_w

from .. import _checks

C = TypeVar("C")
Check = Callable[[str, Any], Any]  # (field name, value) -> raises ValueError/TypeError naming the field


def integer(low: int = 1) -> Check:
    """An integral number >= ``low``."""
    return lambda name, v: _checks.positive_int(name, v, low=low)


def real(**bounds) -> Check:
    """A finite real number within ``bounds`` (the keywords of ``_checks.number``)."""
    return lambda name, v: _checks.number(name, v, **bounds)


def one_of(options: Iterable[str] | Callable[[], Iterable[str]]) -> Check:
    """One of ``options`` (or of what ``options()`` returns, for a registry filled at import)."""
    return lambda name, v: _checks.choice(name, v, options() if callable(options) else options)


def flag(name: str, v) -> bool:
    """A bool."""
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    return v


def text(name: str, v) -> str:
    """A non-empty string."""
    if not isinstance(v, str):
        raise TypeError(f"{name} must be a string, got {type(v).__name__}")
    if not v:
        raise ValueError(f"{name} must not be empty")
    return v


def existing_path(name: str, v) -> str:
    """The path of an existing file or folder."""
    if not Path(text(name, v)).expanduser().exists():
        raise ValueError(f"{name} must name an existing file or folder, got {v!r}")
    return v


def existing_folder(name: str, v) -> str:
    """The path of an existing folder."""
    if not Path(text(name, v)).expanduser().is_dir():
        raise ValueError(f"{name} must name an existing folder, got {v!r}")
    return v


def each(check: Check, *, min_len: int = 1, unique: bool = False, length: int | None = None) -> Check:
    """A tuple whose items all pass ``check`` (named ``name[i]``): at least ``min_len`` of them
    (exactly ``length`` when given), without repeats when ``unique``."""
    def validate_items(name: str, v):
        if not isinstance(v, (tuple, list)):
            raise TypeError(f"{name} must be a tuple, got {type(v).__name__}")
        if length is not None and len(v) != length:
            raise ValueError(f"{name} must hold {length} values, got {len(v)}")
        if len(v) < min_len:
            raise ValueError(f"{name} must hold at least {min_len} value{'s' * (min_len > 1)}, got {len(v)}")
        for i, x in enumerate(v):
            check(f"{name}[{i}]", x)
        if unique and len(set(v)) < len(v):
            raise ValueError(f"{name} must not repeat a value, got {tuple(v)}")
        return v
    return validate_items


def items(*checks: Check) -> Check:
    """A tuple of ``len(checks)`` values, item i passing ``checks[i]``."""
    def validate_items(name: str, v):
        each(lambda *_: None, length=len(checks))(name, v)
        for i, (check, x) in enumerate(zip(checks, v)):
            check(f"{name}[{i}]", x)
        return v
    return validate_items


def increasing(name: str, v) -> tuple[float, ...]:
    """A non-empty, strictly increasing tuple of finite numbers."""
    return _checks.increasing(name, v)


def accepted(resolve: Callable[[Any], Any]) -> Check:
    """A value that ``resolve`` (e.g. ``get_profile``) accepts; its refusal is prefixed with the field name."""
    def resolved(name: str, v):
        try:
            return resolve(v)
        except (ValueError, TypeError, OSError) as e:
            raise type(e)(f"{name}: {e}") from None
    return resolved


def optional(check: Check) -> Check:
    """None or a value passing ``check``."""
    return lambda name, v: None if v is None else check(name, v)


def nested(cls: type) -> Check:
    """A ``cls`` instance (a dataclass that validates its own fields when made)."""
    def instance(name: str, v):
        if not isinstance(v, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(v).__name__}")
        return v
    return instance


def validate(config) -> None:
    """Run the ``CHECKS`` of every field of ``config`` (in field order), then its ``RELATIONS``:
    ``(field, holds(config), what is expected)`` with ``{c.<field>}`` placeholders, raising
    ``ValueError("<field> must <expected>")``."""
    checks = type(config).CHECKS
    for f in dataclasses.fields(config):
        checks[f.name](f.name, getattr(config, f.name))
    for name, holds, expected in getattr(type(config), "RELATIONS", ()):
        if not holds(config):
            raise ValueError(f"{name} must {expected.format(c=config)}")


def to_dict(config) -> dict[str, Any]:
    """The config as nested dicts of TOML values (tuples as lists, None fields left out)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v) if getattr(v, f.name) is not None}
        return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v
    return plain(config)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp, value, key: str):
    """``value`` as type ``tp`` or a TypeError naming ``key``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except TypeError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise TypeError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{key}: expected a table of {tp.__name__} fields, got {type(value).__name__}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise TypeError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build config class ``cls`` from ``data``; missing keys keep their defaults."""
    if not isinstance(data, dict):
        raise TypeError(f"{prefix or 'config'}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    data = dict(data)
    for old, new in getattr(cls, "SINGLES", {}).items():  # deprecated one-value keys of the main job
        if old in data:
            warnings.warn(f"{prefix}{old} is deprecated; use {prefix}{new} = [{data[old]!r}]", DeprecationWarning,
                          stacklevel=2)
            data[new] = [data.pop(old)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(f"unknown key {prefix + unknown[0]!r} for {cls.__name__}; expected one of {', '.join(names)}")
    values = {k: _convert(hints[k], v, prefix + k) for k, v in data.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:  # a range check of a nested config: name its dotted key
        if not prefix:
            raise
        raise type(e)(f"{prefix}{e}") from None


def dumps(config) -> str:
    """TOML text of ``config``."""
    return tomli_w.dumps(to_dict(config))


def _merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied key by key, tables merged recursively."""
    out = dict(base)
    for k, v in changes.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load(cls: type[C], path: str | Path, base: C | None = None) -> C:
    """``base`` (default: ``cls()``) with the keys of the TOML file at ``path`` applied."""
    data = _checks.toml_file("config file", path)
    return from_dict(cls, _merge(to_dict(cls() if base is None else base), data))


def parse_value(text: str):
    """A TOML value (``3``, ``1e-3``, ``true``, ``[1, 2]``, ``"x"``); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def with_overrides(config: C, assignments: list[str]) -> C:
    """``config`` with each ``dotted.key=value`` applied (e.g. ``fit.epochs=5``, ``Ts=[1, 2]``)."""
    data = to_dict(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        *parents, leaf = key.strip().split(".")
        node = data
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"unknown key {'.'.join(parents[:i + 1])!r}: it is not a table")
        node[leaf] = parse_value(text.strip())
    return from_dict(type(config), data)


def field_type(cls: type, key: str):
    """The declared type of dotted ``key`` in config class ``cls``."""
    *parents, leaf = key.split(".")
    for part in parents:
        cls = typing.get_type_hints(cls).get(part)
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"unknown key {key!r}: {part!r} is not a table")
    hints = typing.get_type_hints(cls)
    if leaf not in hints:
        raise ValueError(f"unknown key {key!r} for {cls.__name__}; expected one of {', '.join(hints)}")
    return hints[leaf]


DATA_NAMES = ("cifar10", "speech_commands", "shd", "ssc", "nmnist", "dvs_gesture", "text")  # `--data` names


def data_assignments(cls: type, experiment: str, items: list[str]) -> list[str]:
    """``key=value`` assignments of ``--data NAME=PATH`` items for config class ``cls``, whose
    ``data_fields()`` (when it has one) maps each accepted NAME to the field its PATH sets."""
    accepts = cls.data_fields() if hasattr(cls, "data_fields") else {}
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--data expects NAME=PATH, got {item!r}")
        if name not in accepts:
            known = "" if name in DATA_NAMES else f"unknown dataset {name!r} (the loaders are {', '.join(DATA_NAMES)}); "
            takes = f"--data {', '.join(accepts)}" if accepts else "no --data (it has no real-data counterpart)"
            raise ValueError(f"{known}experiment {experiment!r} accepts {takes}, got --data {name}")
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"--data {name}: {path!r} does not exist")
        out.append(f"{accepts[name]}={tomli_w.dumps({'v': path})[4:].strip()}")
    return out


def fit_keys(config, prefix: str = "") -> list[str]:
    """Dotted keys of every nested config of type ``FitConfig`` in ``config`` (``fit``, ``intra.fit``...)."""
    from ..learning.bptt import FitConfig

    keys = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, FitConfig):
            keys.append(prefix + f.name)
        elif dataclasses.is_dataclass(value):
            keys += fit_keys(value, f"{prefix}{f.name}.")
    return keys
