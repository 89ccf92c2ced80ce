"""Place a model's neurons and synapses on a chip's cores and route its spikes on the mesh (eq. (89)).

:func:`map` runs a sample through the model with forward hooks and sees every layer that ran:
synaptic layers (``nn.Linear``: in x out synapses; ``nn.Conv2d``: its weights, fan-in C_in/groups x
kh x kw rows by C_out columns), NPEs (neurons per time step: the channels of a token, or every
element of one inference's step for intra-token models) and mixers (their own parameters and the
KV cache an attention mixer holds). Layers are placed greedily in the order they ran: a layer
that fits in what is left of the current core joins it, else it takes ``ceil(units)`` fresh cores,
``units = max(neurons / neurons_per_core, weight bytes / synapse_bytes_per_core)``; on an analog chip
a synaptic layer takes ``ceil(rows / tile_rows) x ceil(cols / tile_cols)`` crossbars of its own.
Cores past the chip's count are off chip: their weights spill to off-chip memory.

Core ``c`` sits at node ``n = c div cores_per_node``, at ``(n mod X, n div X)`` on the X x Y mesh; a
spike from core a to core b travels |x_a - x_b| east-west and |y_a - y_b| north-south hops
(dimension-order routing, X then Y; none within a node). A layer's spikes are multicast, one
message per core of the layer that consumes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..accounting.counter import SYNAPTIC
from ..neurons import NPE
from .chips import Chip, load_chip


@dataclass
class Layer:
    """What one observed module needs on chip (per inference) and what it did on the sample."""

    name: str
    module: nn.Module
    kind: str  # "synaptic" | "neurons" | "mixer"
    neurons: int = 0
    synapses: int = 0
    rows: int = 0  # fan-in of a synaptic layer (crossbar rows)
    cols: int = 0  # fan-out (crossbar columns)
    kv_bytes: int = 0  # bytes an attention mixer holds per inference (its KV cache)
    steps: int = 1  # time steps per inference (an NPE's updates / neurons)
    calls: list = field(default_factory=list, repr=False)  # (input, output) of each call


@dataclass(frozen=True)
class Placement:
    """One layer on the chip: the cores it occupies, its neurons, synapses, bytes held and bytes that spill."""

    name: str
    kind: str
    cores: tuple[int, ...]
    neurons: int
    synapses: int
    bytes: int
    spill_bytes: int
    kv_bytes: int = 0


@dataclass(frozen=True)
class Mapping:
    """A model on a chip: ``layers`` {name: Placement} in the order they ran, ``cores`` used,
    ``fits`` (every core on chip), ``position`` {core: (x, y) of its mesh node} of the on-chip cores."""

    chip: Chip
    layers: dict[str, Placement]
    cores: int
    fits: bool
    position: dict[int, tuple[int, int]]

    @property
    def spill_bytes(self) -> int:
        return sum(p.spill_bytes for p in self.layers.values())

    def hops(self, a: int, b: int) -> tuple[int, int]:
        """(east-west, north-south) hops of a spike from core a to core b under X-then-Y routing."""
        (xa, ya), (xb, yb) = self.position[a], self.position[b]
        return abs(xa - xb), abs(ya - yb)

    def multicast_hops(self, src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[float, float]:
        """Mean (east-west, north-south) hops of one spike sent from a core of ``src`` (spikes spread evenly
        over them) to every core of ``dst``; pairs with an off-chip core are not routed on the mesh."""
        on = [(a, b) for a in src for b in dst if a in self.position and b in self.position]
        if not on:
            return 0.0, 0.0
        ew = sum(self.hops(a, b)[0] for a, b in on) / len(src)
        ns = sum(self.hops(a, b)[1] for a, b in on) / len(src)
        return ew, ns


def _first_tensor(args) -> torch.Tensor | None:
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _is_sequence(x: torch.Tensor) -> bool:
    """A token sequence: float [B, L, D] or integer ids [B, L] (the counter's convention)."""
    return (x.dim() == 3 and x.is_floating_point()) or (x.dim() == 2 and not x.is_floating_point())


def _neurons(s: torch.Tensor, batch: int, tokens: bool) -> int:
    """Neurons of an NPE output: a token's channels in a sequence model; else one inference's
    elements per step (the step axis leads: [T, B, ...], or no step axis: [B, ...])."""
    if tokens:
        return s.shape[-1]
    if s.dim() >= 3 and s.shape[1] == batch:
        return s[0, 0].numel()
    return s[0].numel()


@contextmanager
def trace(model: nn.Module) -> Iterator[dict[str, Layer]]:
    """Record every synaptic layer, NPE and mixer (a module with ``accounting``) that runs inside the
    block, in the order each first ran, with its calls; hooks are removed on exit."""
    layers: dict[str, Layer] = {}
    handles = []

    def hook(name: str, m: nn.Module, kind: str):
        def record(module, inputs, output):
            layer = layers.setdefault(name, Layer(name, m, kind))
            layer.calls.append((inputs, output[0] if isinstance(output, tuple) else output))
        return record

    for name, m in model.named_modules():
        kind = ("synaptic" if isinstance(m, SYNAPTIC) else "neurons" if isinstance(m, NPE)
                else "mixer" if callable(getattr(m, "accounting", None)) else None)
        if kind is not None:
            handles.append(m.register_forward_hook(hook(name or type(m).__name__, m, kind)))
    try:
        yield layers
    finally:
        for h in handles:
            h.remove()


def describe(layers: dict[str, Layer], batch: int, tokens: bool) -> None:
    """Fill each traced layer's neurons, synapses, crossbar rows/columns, KV bytes and steps (per inference)."""
    for layer in layers.values():
        m, (_, y) = layer.module, layer.calls[0]
        if layer.kind == "synaptic":
            layer.rows = m.in_features if isinstance(m, nn.Linear) else m.weight[0].numel()
            layer.cols = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            layer.synapses = m.weight.numel()
            continue
        updates = sum(out.numel() for _, out in layer.calls)
        if layer.kind == "mixer":
            with torch.no_grad():
                counts = [m.accounting(inputs, out) for inputs, out in layer.calls]
            if any("active_pairs" in c for c in counts):
                layer.kv_bytes = max(c.get("state_bytes", 0) for c in counts) // batch
            layer.synapses = sum(p.numel() for p in m.parameters(recurse=False))
            updates = sum(c.get("neuron_updates", 0) for c in counts)  # a mixer that fires (mixers.base.Fire)
        if updates:
            layer.neurons = _neurons(y, batch, tokens)
            layer.steps = max(1, updates // (batch * layer.neurons))


def _units(layer: Layer, chip: Chip) -> tuple[float, bool]:
    """(cores a layer needs, whether it must own whole cores: a crossbar holds one layer's tile)."""
    if chip.analog is not None and layer.kind == "synaptic":
        a = chip.analog
        return math.ceil(layer.rows / a.tile_rows) * math.ceil(layer.cols / a.tile_cols), True
    held = _bytes(layer, chip)
    by_neurons = layer.neurons / chip.neurons_per_core if chip.neurons_per_core else 0.0
    return max(by_neurons, held / chip.synapse_bytes_per_core), False


def _bytes(layer: Layer, chip: Chip) -> int:
    """Bytes a layer holds in core memory: its weights at the chip's weight bits, plus its KV cache."""
    return math.ceil(layer.synapses * chip.weight_bits / 8) + layer.kv_bytes


def place(layers: dict[str, Layer], chip: Chip) -> Mapping:
    """Greedy placement in layer order (module docstring) -> :class:`Mapping`."""
    current, free = -1, 0.0  # the last core opened and the fraction of it still free
    placed = {}
    for name, layer in layers.items():
        units, whole = _units(layer, chip)
        if current >= 0 and not whole and units <= free + 1e-12:
            cores, free = (current,), free - units
        else:
            k = max(1, math.ceil(units - 1e-12))
            cores = tuple(range(current + 1, current + 1 + k))
            current, free = cores[-1], (0.0 if whole else k - units)
        held = _bytes(layer, chip)
        off = sum(c >= chip.cores for c in cores)
        placed[name] = Placement(name, layer.kind, cores, layer.neurons, layer.synapses, held,
                                 math.ceil(held * off / len(cores)), layer.kv_bytes)
    used = current + 1
    x_dim, per_node = chip.mesh[0], chip.cores_per_node
    position = {c: (c // per_node % x_dim, c // per_node // x_dim) for c in range(min(used, chip.cores))}
    return Mapping(chip, placed, used, used <= chip.cores, position)


def batch_of(sample) -> tuple[int, bool]:
    """(inferences in the sample, whether it is a token sequence)."""
    x = sample if isinstance(sample, torch.Tensor) else _first_tensor(sample)
    if x is None or x.dim() == 0 or x.shape[0] == 0:
        raise ValueError("sample must be a tensor (or a tuple starting with one) with a non-empty batch dimension")
    return x.shape[0], _is_sequence(x)


def map(model: nn.Module, chip, sample) -> Mapping:  # noqa: A001 (the public name)
    """Run ``sample`` through ``model`` and place its layers on ``chip`` (a name, .toml path or Chip)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    chip = load_chip(chip)
    batch, tokens = batch_of(sample)
    with trace(model) as layers, torch.no_grad():
        model(*(sample if isinstance(sample, tuple) else (sample,)))
    if not layers:
        raise ValueError("model ran no nn.Linear, nn.Conv2d, NPE or mixer: nothing to place")
    describe(layers, batch, tokens)
    return place(layers, chip)


__all__ = ["Mapping", "Placement", "map", "trace", "place", "describe"]
