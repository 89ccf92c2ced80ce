"""Honest baselines: the bit-matched int8 twin and the break-even spike rate.

An fp32 SNN against an fp32 network flatters the SNN (an fp32 MAC costs 5x an fp32 add, eq. (68)); the fair
opponent is the conventional twin quantised to int8 weights and activations, priced under the same
profile and dataflow with its memory traffic. The SNN is quantised the same way (int8 weights into
an int32 membrane), so both sides are bit-matched. (:mod:`.quantise` measures the accuracy of both.)

Break-even spike rate, eq. (72). Let ``r`` be the synaptic event rate, the fraction of AC capacity that fires
(``acs / ac_capacity``: non-zero discrete inputs, weighted by fan-out; r_obs as observed). Only the
counts in ``Counter.event_totals`` scale with r (the ACs and, under the ``"event_driven"`` dataflow,
one weight read and one accumulator read-modify-write per event); everything else (dense
first-layer MACs, neuron updates and their state traffic, spike maps, biases) is fixed. With
E_events the energy of the observed event counts and E_fixed = E_snn - E_events,

    E_snn(r) = E_fixed + (r / r_obs) E_events,    r* = r_obs (E_twin - E_fixed) / E_events.

Below r* the SNN is cheaper. r* <= 0: the fixed costs alone exceed the twin (never cheaper);
r* >= 1: cheaper even if every input fired.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import energy as _energy
from .energy import Profile

INT8_KEYS = ("macs", "acs", "neuron_updates")


def quantise_int8(counts: Mapping[str, float], profile: Profile, weight_footprint_params: float) -> dict[str, float]:
    """Counts of the int8 twin (eq. (73)) of the model that produced ``counts``, re-placed under ``profile``.

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


def break_even_rate(snn: Mapping[str, float], events: Mapping[str, float], twin_energy_j: float,
                    profile: Profile) -> float:
    """r* of the module docstring for placed SNN counts ``snn`` (fp32 or int8) whose event-scaled
    part is ``events`` (placed the same way), against a twin energy at the same normalisation."""
    key = "acs_int8" if "acs_int8" in snn else "acs"
    if key not in profile.ops_pj:
        raise ValueError(f"profile {profile.name!r} does not price {key!r}; no break-even rate")
    if not snn.get("ac_capacity"):
        raise ValueError("snn counts have no AC capacity (no discrete input reached a synaptic layer)")
    if not events.get(key):
        raise ValueError("events hold no synaptic event: the energy per event is not observed")
    e_events = _energy.energy_j(events, profile)
    fixed = _energy.energy_j(snn, profile) - e_events
    return events[key] / snn["ac_capacity"] * (twin_energy_j - fixed) / e_events


def rates(totals: Mapping[str, float]) -> dict[str, float]:
    """Observed ``firing_rate`` (spikes / neuron updates) and ``event_rate`` (ACs / AC capacity), nan if none."""
    return {"firing_rate": totals["spikes"] / totals["neuron_updates"] if totals["neuron_updates"] else float("nan"),
            "event_rate": totals["acs"] / totals["ac_capacity"] if totals["ac_capacity"] else float("nan")}


def _per_inference(counts: Mapping[str, float], n: int) -> dict[str, float]:
    return {k: v / n for k, v in counts.items()}


def compare(snn, twin) -> dict[str, float]:
    """Per-inference energies (J) of an SNN and its conventional twin, both as counted (fp32) and
    bit-matched int8, the int8 SNN's event-scaled part (E_events), the observed event and firing
    rates and the break-even rate (int8 vs int8).

    ``snn`` and ``twin`` are :class:`~neurotoken.accounting.counter.Counter` s of the two models on
    the same inputs, profile and dataflow.
    """
    if snn.profile != twin.profile:
        raise ValueError(f"snn and twin must be counted under one profile, got {snn.profile.name!r} "
                         f"and {twin.profile.name!r}")
    if snn.dataflow != twin.dataflow:
        raise ValueError(f"snn and twin must be counted under one dataflow, got {snn.dataflow!r} "
                         f"and {twin.dataflow!r}")
    p = snn.profile
    s8 = quantise_int8(snn.per_inference, p, snn.weight_footprint_params)
    ev8 = quantise_int8(_per_inference(snn.event_totals, snn.inferences), p, snn.weight_footprint_params)
    t8 = quantise_int8(twin.per_inference, p, twin.weight_footprint_params)
    twin8_j = _energy.energy_j(t8, p)
    return {
        "snn_j": snn.energy_j / snn.inferences, "twin_j": twin.energy_j / twin.inferences,
        "snn_int8_j": _energy.energy_j(s8, p), "twin_int8_j": twin8_j, "snn_int8_event_j": _energy.energy_j(ev8, p),
        **rates(snn.totals), "break_even_rate": break_even_rate(s8, ev8, twin8_j, p),
    }
