"""Energy and latency of a model on a chip, from what it did on real inputs (eq. (67) plus routing).

:func:`estimate` runs the inputs once with the accounting counter (under the chip's profile) and
the mapping's hooks, places the layers (:func:`~neurotoken.hardware.mapping.place`) and prices:

* the counted operations at the profile's per-op energies (on an analog chip a synaptic layer
  runs its whole crossbar: its dense products are priced as MACs, whatever the input);
* every spike routed to the cores of the layer that consumes it: hops x per-hop energy;
* on a neuromorphic chip every attended pair of an attention mixer is a routed event (one spike
  message from the key's core to the query's, received as one synaptic op), so attention costs
  O(L^2) events dense and O(L k) under a local or strided mask;
* bytes moved per memory level; weights of layers that spill off a chip without off-chip memory
  are listed as unpriced ``dram_bytes``;
* ADC/DAC conversions on analog chips, counted by the crossbar tiles of :mod:`.analog` (those the
  model runs, or the chip's tiles in place of its digital layers): ``vectors x row tiles x
  columns`` ADC conversions, none on the DAC side for binary spikes, ``ceil(log2 K)`` bits for K-level ones;
* on-chip learning (``learning="stdp" | "three_factor"``) at the chip's weight-update energy (eq. (90)).

Latency: the slowest core's work (its share of every layer's operations x the chip's time per
operation) plus, per time step, the slowest route (mean hops x per-hop latency + spike latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import _checks
from ..accounting.counter import count
from .analog import AnalogConfig, AnalogConv2d, AnalogLinear
from .chips import Chip, load_chip
from .mapping import Layer, Mapping, batch_of, describe, place, trace

LEARNING_RULES = ("stdp", "three_factor")
COUNT_KEYS = ("synops", "neuron_updates", "spikes", "spike_hops", "dram_bytes", "sram_bytes",
              "adc_conversions", "dac_conversions", "dac_bits", "weight_updates", "active_pairs")
PJ, NS = 1e-12, 1e-9


@dataclass(frozen=True)
class Estimate:
    """A model on a chip: ``counts``, ``energy_breakdown_j`` and ``latency_s`` are per ``per``
    ("inference", or "token" for a model that outputs one prediction per token);
    ``kv_cache`` says where attention keys and values live ("core", "dram", None without attention)."""

    chip: str
    per: str
    mapping: Mapping
    counts: dict[str, float]
    energy_breakdown_j: dict[str, float]
    energy_j_per_inference: float
    energy_j_per_token: float
    latency_s: float
    kv_cache: str | None
    kv_cache_bytes: int
    unpriced: tuple[str, ...]
    untimed: tuple[str, ...]

    @property
    def energy_j(self) -> float:
        """Energy per ``per`` (joules)."""
        return sum(self.energy_breakdown_j.values())

    def to_dict(self) -> dict:
        """JSON-serialisable summary: the chip, fit, cores, energies, latency, counts and breakdown."""
        m = self.mapping
        return {"chip": self.chip, "per": self.per, "fits": m.fits, "cores": m.cores, "spill_bytes": m.spill_bytes,
                "energy_j": self.energy_j, "energy_j_per_inference": self.energy_j_per_inference,
                "energy_j_per_token": self.energy_j_per_token,
                "latency_s": None if math.isnan(self.latency_s) else self.latency_s,
                "kv_cache": self.kv_cache, "kv_cache_bytes": self.kv_cache_bytes, "counts": dict(self.counts),
                "energy_breakdown_j": dict(self.energy_breakdown_j), "unpriced": list(self.unpriced),
                "untimed": list(self.untimed)}


def _next_consumer(names: list[str], layers: dict[str, Layer], i: int) -> str | None:
    """The first layer after ``names[i]`` that takes spikes in: a synaptic layer or a mixer that does not fire."""
    return next((n for n in names[i + 1:] if layers[n].kind == "synaptic"
                 or (layers[n].kind == "mixer" and not layers[n].neurons)), None)


def _routing(mapping: Mapping, layers: dict[str, Layer], rows: dict[str, dict]) -> tuple[float, float, float]:
    """(east-west hops, north-south hops, slowest route in ns per step) of every spike and attended pair."""
    chip, names = mapping.chip, list(layers)
    ew = ns = worst = 0.0
    hop_ns = chip.hop_ns or (0.0, 0.0)
    for i, name in enumerate(names):
        routes = []
        dst = _next_consumer(names, layers, i)
        if rows[name].get("spikes") and layers[name].neurons and dst is not None:
            routes.append((rows[name]["spikes"], mapping.layers[name].cores, mapping.layers[dst].cores))
        if rows[name].get("active_pairs") and chip.kind == "neuromorphic":
            cores = mapping.layers[name].cores
            routes.append((rows[name]["active_pairs"] / len(cores), cores, cores))
        for n_events, src, to in routes:
            h_ew, h_ns = mapping.multicast_hops(src, to)
            ew, ns = ew + n_events * h_ew, ns + n_events * h_ns
            worst = max(worst, (h_ew * hop_ns[0] + h_ns * hop_ns[1]) / len(to))
    return ew, ns, worst + (chip.spike_ns or 0.0)


def conversions(layer: Layer, chip: Chip) -> dict[str, int]:
    """ADC and DAC conversions of a digital synaptic layer's calls had it run as the chip's crossbar
    tiles: the counts of :mod:`.analog`'s tile model, eq. (88) (per input vector, one ADC conversion per
    column and row tile; DAC conversions per row and column tile, none for binary spikes)."""
    tile = (AnalogLinear if isinstance(layer.module, nn.Linear) else AnalogConv2d).from_digital(
        layer.module, AnalogConfig.from_chip(chip))
    out: dict[str, int] = {}
    for inputs, y in layer.calls:
        for k, n in tile.accounting(inputs, y).items():
            out[k] = out.get(k, 0) + n
    return out


def weight_updates(rule: str, layers: dict[str, Layer], rows: dict[str, dict]) -> dict[str, int]:
    """Synapses a local rule updates (eq. (90)), per synaptic layer feeding a firing layer: pair-based STDP
    touches a post neuron's row per post spike (potentiation) and a pre input's column per pre
    spike (depression); the three-factor rule (s - p) xbar^T updates every synapse of every post
    neuron at each step (its presynaptic trace is dense)."""
    names, out = list(layers), {}
    for i, name in enumerate(names[:-1]):
        layer, post = layers[name], layers[names[i + 1]]
        if layer.kind != "synaptic" or not post.neurons:
            continue
        if rule == "stdp":
            pre = sum(int(torch.count_nonzero(inputs[0])) for inputs, _ in layer.calls)
            out[name] = rows[post.name]["spikes"] * layer.rows + pre * layer.cols
        else:
            out[name] = rows[post.name]["neuron_updates"] * layer.rows
    return out


def _offchip(chip: Chip) -> str | None:
    """The off-chip memory level: the unbounded last level, unless it is the chip's local memory."""
    last = chip.profile.levels[-1]
    return None if last.name == chip.profile.local else last.name


def estimate(model: nn.Module, chip, inputs, *, learning: str | None = None,
             dataflow: str = "dense_state") -> Estimate:
    """Run ``inputs`` through ``model`` and estimate its energy and latency on ``chip`` (a name, a
    .toml path or a Chip); ``learning`` prices on-chip weight updates of a local rule."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    chip = load_chip(chip)
    if learning is not None:
        _checks.choice("learning", learning, LEARNING_RULES)
        if not chip.learns:
            raise ValueError(f"learning={learning!r}: chip {chip.name!r} does not learn on chip "
                             "(its file has no [learning] section)")
    batch, tokens = batch_of(inputs)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    with trace(model) as layers, count(model, chip.profile, dataflow) as c, torch.no_grad():
        output = model(*args)
    if not layers:
        raise ValueError("model ran no nn.Linear, nn.Conv2d, NPE or mixer: nothing to estimate")
    describe(layers, batch, tokens)
    mapping = place(layers, chip)
    rows, t = c.layers, c.totals
    y = output[0] if isinstance(output, tuple) else output
    per = "token" if tokens and y.dim() >= 3 and y.shape[:2] == args[0].shape[:2] else "inference"
    units = c.tokens if per == "token" else c.inferences

    ops = dict(t)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    analog_counts = chip.analog is not None and not t.get("adc_conversions")
    for name, layer in layers.items():
        if layer.kind == "synaptic" and chip.analog is not None:
            row = rows[name]  # the crossbar computes every product, whatever the input
            ops["macs"] = ops.get("macs", 0) - row["macs"] + row["dense_ops"]
            ops["acs"] = ops.get("acs", 0) - row["acs"]
            if analog_counts:
                for k, n in conversions(layer, chip).items():
                    counts[k] += n
    for k in ("adc_conversions", "dac_conversions", "dac_bits", "active_pairs", "neuron_updates", "spikes"):
        counts[k] += t.get(k, 0)
    counts["synops"] = ops.get("acs", 0) + ops.get("macs", 0)
    ew, ns, route_ns = _routing(mapping, layers, rows)
    counts["spike_hops"] = ew + ns
    off = _offchip(chip)
    spilled = sum(rows[n]["weight_bytes"] * p.spill_bytes / p.bytes for n, p in mapping.layers.items() if p.spill_bytes)
    counts["dram_bytes"] = t[f"bytes_{off}"] if off else spilled
    counts["sram_bytes"] = t["bytes"] - counts["dram_bytes"]
    updates = weight_updates(learning, layers, rows) if learning else {}
    counts["weight_updates"] = sum(updates.values())

    pj = {f"op:{k}": ops[k] * e for k, e in chip.profile.ops_pj.items() if ops.get(k)}
    pj.update({f"memory:{lv.name}": t[f"bytes_{lv.name}"] * lv.pj_per_byte for lv in chip.profile.levels})
    pj["routing"] = ew * chip.hop_pj[0] + ns * chip.hop_pj[1]
    if chip.kind == "neuromorphic":  # an attended pair is one spike message, received as one synaptic op
        pair_pj = chip.profile.ops_pj.get("spikes", 0.0) + chip.profile.ops_pj.get("acs", 0.0)
        pj["attention_events"] = counts["active_pairs"] * pair_pj
    if chip.analog is not None:
        pj["adc"] = counts["adc_conversions"] * (chip.analog.adc_pj or 0.0)
        pj["dac"] = counts["dac_conversions"] * (chip.analog.dac_pj or 0.0)
    if learning:
        pj["weight_updates"] = counts["weight_updates"] * chip.weight_update_pj
    unpriced = sorted(k for k in ("macs", "acs", "neuron_updates", "state_updates", "bit_ops")
                      if ops.get(k) and k not in chip.profile.ops_pj)
    if spilled and not off:
        unpriced.append("dram_bytes")
    if chip.analog is None and counts["adc_conversions"]:
        unpriced += ["adc_conversions", "dac_conversions"]

    core_ns = [0.0] * max(mapping.cores, 1)
    untimed = set()
    for name, layer in layers.items():
        row = {**rows[name], **({"macs": rows[name]["dense_ops"]} if layer.kind == "synaptic" and chip.analog else {})}
        timed = {k: row.get(k, 0) for k in chip.profile.ops_pj if row.get(k)}
        untimed |= {k for k in timed if k not in chip.ns_per_op and not (k == "spikes" and chip.spike_ns)}
        work = sum(n * chip.ns_per_op.get(k, 0.0) for k, n in timed.items())
        work += updates.get(name, 0) * (chip.weight_update_ns or 0.0)
        for core in mapping.layers[name].cores:
            core_ns[core] += work / len(mapping.layers[name].cores)
    steps = max(layer.steps for layer in layers.values())
    latency = (max(core_ns) / batch + steps * route_ns) * NS if chip.ns_per_op else math.nan
    if per == "token":
        latency *= c.inferences / c.tokens

    kv = [p for p in mapping.layers.values() if p.kv_bytes]
    energy = sum(pj.values()) * PJ
    return Estimate(
        chip=chip.name, per=per, mapping=mapping, counts={k: n / units for k, n in counts.items()},
        energy_breakdown_j={k: e * PJ / units for k, e in pj.items()},
        energy_j_per_inference=energy / c.inferences, energy_j_per_token=energy / c.tokens, latency_s=latency,
        kv_cache=(("dram" if any(p.spill_bytes for p in kv) else "core") if kv else None),
        kv_cache_bytes=sum(p.kv_bytes for p in kv), unpriced=tuple(unpriced), untimed=tuple(sorted(untimed)))
