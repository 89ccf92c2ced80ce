"""Named hardware profiles: energy = counts x constants (per operation and per byte per memory level), eq. (67).

A profile prices the count keys of :mod:`neurotoken.accounting.counter` in picojoules:
``ops_pj[key]`` per operation (``"macs"``, ``"acs"``, ``"neuron_updates"``, ``"spikes"``, mixer keys
such as ``"state_updates"``; ``"*_int8"`` keys price the quantised counts of
:func:`neurotoken.accounting.baselines.quantise_int8`) and ``level.pj_per_byte`` per byte moved to or
from each memory level. Count keys a profile does not price are listed by :func:`unpriced`,
never silently dropped from a report.

Placement ("More than MACs", Olin-Ammentorp: memory traffic, not arithmetic, dominates): the
weights live in the smallest level whose capacity holds the model's weight footprint (on-chip
SRAM if they fit, else DRAM); neuron/SSM state and activations stream through ``profile.local``.

The built-in profiles are ``cmos45`` (45 nm CMOS, eq. (68)) and ``loihi`` (eq. (69)), the ``[profile]``
tables of the chip files ``hardware/chips/digital_accelerator.toml`` and ``loihi.toml``, where each
figure sits beside its source. User profiles come from TOML (:func:`load_profile`)::

    name = "mychip"
    source = "datasheet, table 3"
    local = "sram"
    [ops_pj]
    macs = 4.6
    acs = 0.9
    [[levels]]            # smallest first; leave capacity_bytes out for an unbounded level
    name = "sram"
    capacity_bytes = 65536
    pj_per_byte = 2.5
    [[levels]]
    name = "dram"
    pj_per_byte = 160.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .. import _checks
from .._registry import Registry

BYTE_CLASSES = ("weight_bytes", "state_bytes", "act_bytes", "spike_bytes")
PJ = 1e-12
CHIP_FILES = Path(__file__).resolve().parents[1] / "hardware" / "chips"  # the built-in profiles' figures


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level: what it holds (bytes, inf when unbounded) and what a byte moved costs (pJ)."""

    name: str
    capacity_bytes: float
    pj_per_byte: float


@dataclass(frozen=True)
class Profile:
    """Per-op energies ``ops_pj`` (pJ), memory ``levels`` smallest first, the ``local`` level for state
    and activations, and the ``source`` of the figures."""

    name: str
    ops_pj: Mapping[str, float]
    levels: tuple[MemoryLevel, ...]
    local: str
    source: str = ""

    def __post_init__(self):
        if not self.levels or not math.isinf(self.levels[-1].capacity_bytes):
            raise ValueError(f"profile {self.name!r}: levels must end with an unbounded level (capacity inf)")
        _checks.choice("local", self.local, (lv.name for lv in self.levels))
        for key, pj in self.ops_pj.items():
            _checks.number(f"ops_pj[{key!r}]", pj, low=0.0)
        object.__setattr__(self, "ops_pj", MappingProxyType(dict(self.ops_pj)))

    def weight_level(self, footprint_bytes: float) -> MemoryLevel:
        """The smallest level holding the whole weight footprint."""
        return next(lv for lv in self.levels if footprint_bytes <= lv.capacity_bytes)


PROFILES: Registry[Profile] = Registry("profile")  # filled below load_profile, from CHIP_FILES


def _field(data: Mapping, key: str, kind: type | tuple[type, ...], where: str):
    if key not in data:
        raise ValueError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")
    return value


def profile_from_dict(data: Mapping, where: str = "profile", source: str = "") -> Profile:
    """A Profile from parsed TOML tables (format in the module docstring; ``source`` when it has
    none); errors name the key."""
    ops = _field(data, "ops_pj", dict, where)
    for key in ops:
        _field(ops, key, (int, float), f"{where} [ops_pj]")
    levels = []
    for i, lv in enumerate(_field(data, "levels", list, where)):
        at = f"{where} levels[{i}]"
        if not isinstance(lv, dict):
            raise ValueError(f"{at}: must be a table, got {type(lv).__name__}")
        cap = _field(lv, "capacity_bytes", (int, float), at) if "capacity_bytes" in lv else math.inf
        levels.append(MemoryLevel(_field(lv, "name", str, at), float(cap),
                                  float(_field(lv, "pj_per_byte", (int, float), at))))
    try:
        return Profile(_field(data, "name", str, where), {k: float(v) for k, v in ops.items()},
                       tuple(levels), _field(data, "local", str, where), data.get("source", source))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def load_profile(path: str | Path) -> Profile:
    """A user profile from a TOML file (format in the module docstring); errors name the key."""
    return profile_from_dict(_checks.toml_file("profile file", path), f"profile file {path}", str(path))


def _builtin(chip: str) -> Profile:
    """The ``[profile]`` table of a built-in chip file: each figure lives there, beside its source."""
    path = CHIP_FILES / f"{chip}.toml"
    data = _checks.toml_file("chip file", path)["profile"]
    return profile_from_dict(data, f"chip file {path} [profile]")


for _profile in map(_builtin, ("digital_accelerator", "loihi")):  # "cmos45" and "loihi"
    PROFILES.register(_profile.name)(_profile)


def get_profile(profile: str | Path | Profile) -> Profile:
    """A Profile object, a registered name (see ``PROFILES.names()``) or a path to a ``.toml`` file."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, Path) or (isinstance(profile, str) and profile.endswith(".toml")):
        return load_profile(profile)
    if isinstance(profile, str):
        return PROFILES.get(profile)
    raise TypeError(f"profile must be a name, a .toml path or a Profile, got {type(profile).__name__}")


def level_bytes(counts: Mapping[str, float], profile: Profile, weight_footprint_bytes: float) -> dict[str, float]:
    """Bytes moved per memory level, ``{"bytes_<level>": n}``: weights at ``weight_level(footprint)``,
    state, activations and spikes at ``profile.local``."""
    out = {f"bytes_{lv.name}": 0 for lv in profile.levels}
    out[f"bytes_{profile.weight_level(weight_footprint_bytes).name}"] += counts.get("weight_bytes", 0)
    out[f"bytes_{profile.local}"] += sum(counts.get(k, 0) for k in BYTE_CLASSES[1:])
    return out


def energy_j(counts: Mapping[str, float], profile: Profile) -> float:
    """Eq. (67): E = sum_k n_k e_k + sum_level bytes_level e_level (joules); counts carry ``bytes_<level>`` keys."""
    ops = sum(n * profile.ops_pj[k] for k, n in counts.items() if k in profile.ops_pj)
    mem = sum(counts.get(f"bytes_{lv.name}", 0) * lv.pj_per_byte for lv in profile.levels)
    return (ops + mem) * PJ


def unpriced(counts: Mapping[str, float], profile: Profile, op_keys) -> list[str]:
    """Operation keys among ``op_keys`` that occurred (non-zero) but that the profile does not price."""
    return sorted(k for k in op_keys if counts.get(k, 0) and k not in profile.ops_pj)
