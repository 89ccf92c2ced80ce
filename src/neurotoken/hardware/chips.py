"""Chips as data: cores, capacities, mesh, per-event energies and timings, each with its source.

A chip is a TOML file (the built-ins live in ``hardware/chips/``); every section carries a
``source`` string. Sections and keys (``?`` marks an optional one)::

    name, kind ("neuromorphic" | "analog" | "digital"), source
    [cores]    count, neurons?, synapse_bytes, weight_bits, source
    [mesh]     x, y, cores_per_node?, hop_pj = [east-west, north-south], hop_ns?, source
    [timing]?  ns_per_op? = {count key: ns}, spike_ns?, source
    [learning]? weight_update_pj, weight_update_ns?, source        (chips that learn on chip)
    [analog]?  tile_rows, tile_cols, dac_bits, adc_bits, adc_pj?, dac_pj?, source
    [profile]  the accounting profile of eq. (67): name, local, source, [profile.ops_pj], [[profile.levels]]

Unknown sections or keys and missing required keys are refused by name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .. import _checks
from ..accounting.energy import Profile, profile_from_dict

CHIP_DIR = Path(__file__).with_name("chips")
KINDS = ("neuromorphic", "analog", "digital")

_INT, _NUM, _STR, _PAIR, _TABLE, _LIST = "int", "number", "str", "pair", "table", "list"
# section -> {key: (kind, required)}; None is the top level
_SCHEMA: dict[str | None, dict[str, tuple[str, bool]]] = {
    None: {"name": (_STR, True), "kind": (_STR, True), "source": (_STR, True)},
    "cores": {"count": (_INT, True), "neurons": (_INT, False), "synapse_bytes": (_INT, True),
              "weight_bits": (_INT, True), "source": (_STR, True)},
    "mesh": {"x": (_INT, True), "y": (_INT, True), "cores_per_node": (_INT, False), "hop_pj": (_PAIR, True),
             "hop_ns": (_PAIR, False), "source": (_STR, True)},
    "timing": {"ns_per_op": (_TABLE, False), "spike_ns": (_NUM, False), "source": (_STR, True)},
    "learning": {"weight_update_pj": (_NUM, True), "weight_update_ns": (_NUM, False), "source": (_STR, True)},
    "analog": {"tile_rows": (_INT, True), "tile_cols": (_INT, True), "dac_bits": (_INT, True),
               "adc_bits": (_INT, True), "adc_pj": (_NUM, False), "dac_pj": (_NUM, False), "source": (_STR, True)},
    "profile": {"name": (_STR, True), "local": (_STR, True), "source": (_STR, True), "ops_pj": (_TABLE, True),
                "levels": (_LIST, True)},
}
_REQUIRED_SECTIONS = ("cores", "mesh", "profile")


@dataclass(frozen=True)
class AnalogTiles:
    """Crossbar geometry and converters of an analog in-memory chip (energies in pJ, None when unpublished)."""

    tile_rows: int
    tile_cols: int
    dac_bits: int
    adc_bits: int
    adc_pj: float | None = None
    dac_pj: float | None = None


@dataclass(frozen=True)
class Chip:
    """One chip: ``cores`` of ``neurons_per_core`` neurons (None: not a limit) and ``synapse_bytes_per_core``
    of weights at ``weight_bits``, ``cores_per_node`` of them at each node (a tile sharing a router)
    of a ``mesh`` = (x, y) grid with ``hop_pj`` = (east-west, north-south) per hop; ``profile``
    prices the counted operations and bytes (eq. (67)); timings in ns; ``weight_update_pj`` None
    on chips that do not learn; ``analog`` None on digital chips."""

    name: str
    kind: str
    cores: int
    neurons_per_core: int | None
    synapse_bytes_per_core: int
    weight_bits: int
    mesh: tuple[int, int]
    hop_pj: tuple[float, float]
    profile: Profile
    hop_ns: tuple[float, float] | None = None
    cores_per_node: int = 1
    ns_per_op: Mapping[str, float] = field(default_factory=dict)
    spike_ns: float | None = None
    weight_update_pj: float | None = None
    weight_update_ns: float | None = None
    analog: AnalogTiles | None = None
    source: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.mesh[0] * self.mesh[1] * self.cores_per_node < self.cores:
            raise ValueError(f"chip {self.name!r}: mesh {self.mesh[0]} x {self.mesh[1]} x {self.cores_per_node} "
                             f"cores per node has fewer places than its {self.cores} cores")
        object.__setattr__(self, "ns_per_op", MappingProxyType(dict(self.ns_per_op)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def learns(self) -> bool:
        """Whether the chip updates synaptic weights on chip (has a weight-update energy)."""
        return self.weight_update_pj is not None

    @property
    def synapses_per_core(self) -> int:
        """Weights a core holds: synaptic memory bits / weight bits."""
        return self.synapse_bytes_per_core * 8 // self.weight_bits


def _value(where: str, key: str, kind: str, value):
    """Check one TOML value against its schema kind; errors name the key."""
    bad = isinstance(value, bool)
    if kind == _INT:
        bad = bad or not isinstance(value, int) or value < 1
        expected = "an integer >= 1"
    elif kind == _NUM:
        bad = bad or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0
        expected = "a finite number >= 0"
    elif kind == _STR:
        bad = not isinstance(value, str)
        expected = "a string"
    elif kind == _PAIR:
        bad = not isinstance(value, list) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0 for v in value)
        expected = "a list of two finite numbers >= 0 (east-west, north-south)"
    elif kind == _TABLE:
        bad = not isinstance(value, dict)
        expected = "a table"
    else:
        bad = not isinstance(value, list)
        expected = "a list of tables"
    if bad:
        raise ValueError(f"{where}: key {key!r} must be {expected}, got {value!r}")
    return tuple(float(v) for v in value) if kind == _PAIR else value


def _section(data: Mapping, section: str | None, where: str) -> dict:
    """The keys of one section, checked: unknown keys and missing required keys refused by name."""
    schema = _SCHEMA[section]
    at = where if section is None else f"{where} [{section}]"
    table = {k: v for k, v in data.items() if section is not None or k not in _SCHEMA}
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise ValueError(f"{at}: unknown key(s) {', '.join(map(repr, unknown))}; expected: {', '.join(schema)}")
    missing = [k for k, (_, required) in schema.items() if required and k not in table]
    if missing:
        raise ValueError(f"{at}: missing key(s) {', '.join(map(repr, missing))}")
    return {k: _value(at, k, schema[k][0], v) for k, v in table.items()}


def _numbers(table: Mapping, where: str) -> dict[str, float]:
    return {k: float(_value(where, k, _NUM, v)) for k, v in table.items()}


def chip_from_dict(data: Mapping, where: str = "chip") -> Chip:
    """A :class:`Chip` from the parsed TOML tables (format in the module docstring); errors name the key."""
    unknown = sorted(k for k, v in data.items() if isinstance(v, dict) and k not in _SCHEMA)
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {', '.join(map(repr, unknown))}; expected: "
                         f"{', '.join(s for s in _SCHEMA if s)}")
    top = _section(data, None, where)
    if top["kind"] not in KINDS:
        raise ValueError(f"{where}: key 'kind' must be one of {', '.join(map(repr, KINDS))}; got {top['kind']!r}")
    for s in _REQUIRED_SECTIONS:
        if s not in data:
            raise ValueError(f"{where}: missing section [{s}]")
    for s in _SCHEMA:
        if s is not None and s in data and not isinstance(data[s], dict):
            raise ValueError(f"{where}: [{s}] must be a table, got {data[s]!r}")
    sec = {s: _section(data[s], s, where) for s in _SCHEMA if s is not None and s in data}
    cores, mesh = sec["cores"], sec["mesh"]
    timing, learning = sec.get("timing", {}), sec.get("learning", {})
    analog = AnalogTiles(**{k: v for k, v in sec["analog"].items() if k != "source"}) if "analog" in sec else None
    return Chip(
        name=top["name"], kind=top["kind"], cores=cores["count"], neurons_per_core=cores.get("neurons"),
        synapse_bytes_per_core=cores["synapse_bytes"], weight_bits=cores["weight_bits"],
        mesh=(mesh["x"], mesh["y"]), cores_per_node=mesh.get("cores_per_node", 1), hop_pj=mesh["hop_pj"],
        hop_ns=mesh.get("hop_ns"),
        profile=profile_from_dict(sec["profile"], f"{where} [profile]"),
        ns_per_op=_numbers(timing.get("ns_per_op", {}), f"{where} [timing.ns_per_op]"),
        spike_ns=timing.get("spike_ns"), weight_update_pj=learning.get("weight_update_pj"),
        weight_update_ns=learning.get("weight_update_ns"), analog=analog, source=top["source"],
        sources={s: t["source"] for s, t in sec.items()})


def chips() -> tuple[str, ...]:
    """Names of the built-in chips (files in ``hardware/chips/``)."""
    return tuple(sorted(p.stem for p in CHIP_DIR.glob("*.toml")))


def load_chip(chip: str | Path | Chip) -> Chip:
    """A built-in chip by name (see :func:`chips`), a path to a ``.toml`` chip file, or a Chip (returned as is)."""
    if isinstance(chip, Chip):
        return chip
    if isinstance(chip, str) and not chip.endswith(".toml"):
        if chip not in chips():
            raise ValueError(f"chip must be one of {', '.join(map(repr, chips()))} or a .toml path; got {chip!r}")
        path = CHIP_DIR / f"{chip}.toml"
    elif isinstance(chip, (str, Path)):
        path = Path(chip)
    else:
        raise TypeError(f"chip must be a name, a .toml path or a Chip, got {type(chip).__name__}")
    return chip_from_dict(_checks.toml_file("chip file", path), f"chip file {path}")
