"""Honest baselines: the bit-matched int8 twin and the break-even spike rate.

An fp32 SNN against an fp32 network flatters the SNN (an fp32 MAC costs 5x an fp32 add); the fair
opponent is the conventional twin quantised to int8 weights and activations, priced under the same
profile with its memory traffic. The SNN is quantised the same way (int8 weights into an int32
membrane), so both sides are bit-matched.

Break-even spike rate. Let ``r`` be the synaptic event rate, the fraction of AC capacity that fires
(``acs / ac_capacity``: non-zero discrete inputs, weighted by fan-out). Only ACs scale with r; all
else (dense first-layer MACs, neuron updates, state, weights, activations and spike maps in
memory) is fixed, so E_snn(r) = E_fixed + r * ac_capacity * e_ac and

    r* = (E_twin - E_fixed) / (ac_capacity * e_ac).

Below r* the SNN is cheaper. r* <= 0: the fixed costs alone exceed the twin (never cheaper);
r* >= 1: cheaper even if every input fired.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import energy as _energy
from .energy import PJ, Profile

INT8_KEYS = ("macs", "acs", "neuron_updates")


def quantise_int8(counts: Mapping[str, float], profile: Profile, weight_footprint_params: float) -> dict[str, float]:
    """Counts of the int8 twin of the model that produced ``counts``, re-placed under ``profile``.

    MACs, ACs and neuron updates become their ``*_int8`` keys; weights and real activations move
    one byte per value (``weight_params``, ``act_values``); spike maps and state (an int32
    membrane is as wide as fp32) keep their bytes. The weight footprint shrinks 4x too, so
    weights may now fit a cheaper memory level.
    """
    q = {k: v for k, v in counts.items() if not k.startswith("bytes")}
    for k in INT8_KEYS:
        q[f"{k}_int8"] = q.pop(k, 0)
    q["weight_bytes"] = q.get("weight_params", 0)
    q["act_bytes"] = q.get("act_values", 0)
    q["bytes"] = sum(q.get(k, 0) for k in _energy.BYTE_CLASSES)
    q.update(_energy.level_bytes(q, profile, weight_footprint_params))
    return q


def break_even_rate(snn: Mapping[str, float], twin_energy_j: float, profile: Profile) -> float:
    """r* of the module docstring for SNN counts ``snn`` (placed, fp32 or int8) against a twin energy
    at the same normalisation (both per inference, say)."""
    key = "acs_int8" if "acs_int8" in snn else "acs"
    if key not in profile.ops_pj:
        raise ValueError(f"profile {profile.name!r} does not price {key!r}; no break-even rate")
    if not snn.get("ac_capacity"):
        raise ValueError("snn counts have no AC capacity (no discrete input reached a synaptic layer)")
    e_ac = profile.ops_pj[key] * PJ
    fixed = _energy.energy_j(snn, profile) - snn[key] * e_ac
    return (twin_energy_j - fixed) / (snn["ac_capacity"] * e_ac)


def compare(snn, twin) -> dict[str, float]:
    """Per-inference energies (J) of an SNN and its conventional twin, both as counted (fp32) and
    bit-matched int8, with the observed event rate and the break-even rate (int8 vs int8).

    ``snn`` and ``twin`` are :class:`~neurotoken.accounting.counter.Counter` s of the two models on
    the same inputs and profile.
    """
    if snn.profile != twin.profile:
        raise ValueError(f"snn and twin must be counted under one profile, got {snn.profile.name!r} "
                         f"and {twin.profile.name!r}")
    p = snn.profile
    s8 = quantise_int8(snn.per_inference, p, snn.weight_footprint_params)
    t8 = quantise_int8(twin.per_inference, p, twin.weight_footprint_params)
    twin8_j = _energy.energy_j(t8, p)
    t = snn.totals
    return {
        "snn_j": snn.energy_j / snn.inferences, "twin_j": twin.energy_j / twin.inferences,
        "snn_int8_j": _energy.energy_j(s8, p), "twin_int8_j": twin8_j,
        "event_rate": t["acs"] / t["ac_capacity"] if t["ac_capacity"] else float("nan"),
        "firing_rate": t["spikes"] / t["neuron_updates"] if t["neuron_updates"] else float("nan"),
        "break_even_rate": break_even_rate(s8, twin8_j, p),
    }
