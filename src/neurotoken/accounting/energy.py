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

The built-in profiles are ``cmos45`` (45 nm CMOS, eq. (68)) and ``loihi`` (eq. (69)). User profiles come from
TOML (:func:`load_profile`)::

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
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .. import _checks
from .._registry import Registry

BYTE_CLASSES = ("weight_bytes", "state_bytes", "act_bytes", "spike_bytes")
PJ = 1e-12


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


PROFILES: Registry[Profile] = Registry("profile")

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9
# (45 nm, 0.9 V). Composite figures are sums of the published ones, stated beside each key.
_FP32_ADD, _FP32_MULT = 0.9, 3.7  # Horowitz 2014: 32-bit float add / mult, pJ
_INT8_MULT, _INT32_ADD = 0.2, 0.1  # Horowitz 2014: 8-bit int mult / 32-bit int add, pJ
_DRAM_PJ_PER_64BIT = 1300.0  # Horowitz 2014: DRAM 1.3-2.6 nJ per 64-bit access; the low end
PROFILES.register("cmos45")(Profile(
    name="cmos45",
    ops_pj={
        "macs": _FP32_MULT + _FP32_ADD,  # fp32 mult + fp32 add = 4.6
        "acs": _FP32_ADD,  # a spike adds an fp32 weight into the membrane: one fp32 add
        # LIF eq. (9): beta*h (fp32 mult) + x (add) - theta*s (add; a select for s in {0,1}) + compare (add)
        "neuron_updates": _FP32_MULT + 3 * _FP32_ADD,  # = 6.4
        "state_updates": _FP32_MULT + _FP32_ADD,  # SSM h = a*h + b: one fp32 mult + add
        "macs_int8": _INT8_MULT + _INT32_ADD,  # int8 x int8 product into an int32 accumulator = 0.3
        "acs_int8": _INT32_ADD,  # int8 weight into an int32 membrane
        "neuron_updates_int8": _INT8_MULT + 3 * _INT32_ADD,  # fixed-point beta*h + 3 int32 adds = 0.5
    },
    levels=(
        MemoryLevel("sram_8k", 8 * 1024, 5.0 / 4),  # Horowitz 2014: 32-bit read from 8 KB SRAM, 5 pJ
        MemoryLevel("sram_32k", 32 * 1024, 10.0 / 4),  # Horowitz 2014: 32 KB SRAM, 10 pJ
        MemoryLevel("sram_1m", 1024 * 1024, 20.0 / 4),  # Horowitz 2014: 1 MB SRAM, 20 pJ
        MemoryLevel("dram", math.inf, _DRAM_PJ_PER_64BIT / 8),
    ),
    local="sram_32k",  # assumption: state and activations stream through a 32 KB local buffer
    source="Horowitz, ISSCC 2014 (45 nm)",
))

# Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning", IEEE Micro 38(1),
# 2018, Table 1. Synaptic memory sits in each core and its access is included in these per-op
# figures, so bytes moved are priced at 0; Loihi has no multiplier, so "macs" stay unpriced.
PROFILES.register("loihi")(Profile(
    name="loihi",
    ops_pj={
        "acs": 23.6,  # Davies 2018: synaptic spike op, 23.6 pJ
        "neuron_updates": 52.0,  # Davies 2018: neuron update, 52 pJ
        "spikes": 1.7,  # Davies 2018: within-tile spike energy, 1.7 pJ
        # Loihi stores synaptic weights at 1 to 9 bits (Davies 2018): its per-op figures already are int8 prices
        "acs_int8": 23.6,
        "neuron_updates_int8": 52.0,
    },
    levels=(MemoryLevel("core", math.inf, 0.0),),  # included in the per-op figures (Davies 2018)
    local="core",
    source="Davies et al., IEEE Micro 2018 (Loihi, 14 nm)",
))


def _field(data: Mapping, key: str, kind: type | tuple[type, ...], where: str):
    if key not in data:
        raise ValueError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")
    return value


def load_profile(path: str | Path) -> Profile:
    """A user profile from a TOML file (format in the module docstring); errors name the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"profile file {path}: not valid TOML ({e})") from None
    where = f"profile file {path}"
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
                       tuple(levels), _field(data, "local", str, where), data.get("source", str(path)))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


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
