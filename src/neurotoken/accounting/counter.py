"""Observe what a forward pass really did: ops, spikes, sparsity and bytes moved, per layer.

    with nt.accounting.count(model, profile="cmos45") as c:
        model(x)
    c.totals["acs"], c.layers["body.0.linear"]["macs"], c.energy_j, c.to_dict()
    print(c.report())  # the table as text, per inference, a unit in every column

Forward hooks go on the modules of ``model`` only inside the ``with`` block (none before, none
after, also after an exception), so an uncounted model pays nothing. Counts are ints:

* ``nn.Linear`` / ``nn.Conv2d``: an input holding only small integers (``|k| <= MAX_LEVEL``: binary,
  ternary, multi-level spikes, recognised by value) is event-driven: ``acs`` = sum over non-zero
  inputs of their fan-out (Linear: out_features; Conv2d: out_channels/groups x the kernel
  positions that land inside the output at that input position, so borders and strides count
  right). A multi-level payload k is **one** AC (one synaptic event adding k*w, the sign of a
  ternary spike is free); ``ac_payload`` also counts it as |k| ACs, what a binary-only chip needs.
  ``ac_capacity`` is the AC count if every input fired. Any other input is real: ``macs`` = the
  dense products (output elements x fan-in, padding included). ``dense_ops`` is the dense count
  in both cases. Biases are not counted.
* NPEs (any subclass of ``neurons.NPE``): ``neuron_updates`` = output elements (one per neuron per
  step), ``spikes`` = non-zero outputs (a multi-level spike counts once); sparsity = 1 - spikes /
  neuron_updates.
* Bytes moved, by class: ``weight_bytes`` (``weight_params`` counts the elements), ``state_bytes``
  (at the state dtype: complex for resonate-and-fire), ``act_bytes`` (real activations at their
  dtype; ``act_values`` counts elements), ``spike_bytes`` (discrete tensors at their bit width: the
  spike kind's ``bits`` for NPE outputs, ceil(log2(max - min + 1)) of the observed values for
  discrete inputs). ``bytes`` is their sum and ``bytes_<level>`` its split over the profile's memory
  levels (:func:`energy.level_bytes`). Which bytes move depends on the ``dataflow``:

**Dataflows** (``count(model, profile, dataflow=...)``): the two ends of data reuse. (Dampfhoffer et
al., "Are SNNs really more energy-efficient than ANNs?", IEEE TETCI 7(3), 2023, count memory the
same way, per synaptic event for the SNN and up to maximal reuse for the ANN; the rules below are
derived from first principles, not copied from their model.)

* ``"dense_state"`` (default; maximal reuse): every module reads its input and writes its output once
  (no fusion) and its parameters once per forward, so weight traffic is amortised over the batch
  and the time steps; an NPE reads and writes its state once per neuron per step, the synaptic
  events of a step having been summed in a register first (an output-stationary SNN).
* ``"event_driven"`` (no reuse across operations): a real-input layer is output-stationary, each MAC
  reading its weight and its input value, the sum kept in a register and each output (started from
  its bias, one read) written once; a discrete-input layer is event-driven, each synaptic event
  reading one weight and read-modify-writing its target's accumulator (2 x the output element:
  the membrane, when an NPE consumes the output as is, which then does not read it again), the
  input spike map read once, biases read once per output element. An NPE still reads and writes
  every state once per step (the leak and threshold pass of a leaky neuron).

``Counter.event_totals`` holds the counts that scale with the number of synaptic events (the ACs,
and under ``"event_driven"`` their weight reads and accumulator updates): what the break-even
rate of :mod:`.baselines` extrapolates.

**Mixer protocol.** Any module defining ``accounting(self, inputs: tuple, output) -> dict[str, int]``
(``inputs`` the positional forward arguments, ``output`` what forward returned) has the returned
ints added to its own row, e.g. ``{"macs": ..., "state_updates": ..., "bit_ops": ...,
"active_pairs": ..., "state_bytes": ...}``, computed from that call's inputs, output and shapes
only (counts that depend on internal tensors come from a child that receives them, as
``mixers.base.Fire`` does for a mixer's spikes). Report only work not done by hooked children
(Linear, Conv2d and NPE submodules are counted on their own) and bytes by class (``*_bytes`` keys
above), never ``bytes`` itself; the module's own parameters (``recurse=False``) are counted as
weight traffic for it. Keys a profile prices enter the energy, the others are listed as
unpriced.

Normalisation: ``inferences`` = batch size (dim 0) of the first tensor given to ``model``, summed
over calls; ``tokens`` = B*L for token sequences (a float [B, L, D] or an integer [B, L] input), else
one per inference. :attr:`Counter.per_inference` / :attr:`Counter.per_token` divide the totals;
:attr:`Counter.energy_j` is the whole batch (all calls), :attr:`Counter.energy_j_per_inference` and
:attr:`Counter.energy_j_per_token` divide it.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from .. import _checks
from ..neurons import NPE
from . import energy as _energy

MAX_LEVEL = 15  # largest |k| read as a spike payload; wider integers are quantised reals (MACs)
# counts that describe rather than cost (a spike's cost is its spike_bytes, unless a profile prices it)
INFO_KEYS = frozenset({"spikes", "ac_payload", "ac_capacity", "dense_ops", "weight_params", "act_values"})
SYNAPTIC = (nn.Linear, nn.Conv2d)
DATAFLOWS = ("dense_state", "event_driven")
KEYS = ("macs", "acs", "spikes", "neuron_updates", "ac_payload", "ac_capacity", "dense_ops",
        "weight_params", "act_values", *_energy.BYTE_CLASSES)  # always present in a row


def _add(into: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    for k, n in counts.items():
        into[k] = into.get(k, 0) + n
    return into


def is_discrete(x: torch.Tensor) -> bool:
    """True when every entry is an integer with |k| <= MAX_LEVEL (spikes of any kind)."""
    if x.is_complex():
        return False
    if x.is_floating_point() and not torch.equal(x, torch.round(x)):
        return False
    return x.numel() == 0 or int(x.abs().max()) <= MAX_LEVEL


def value_bits(x: torch.Tensor) -> int:
    """Bits per entry of a discrete tensor: ceil(log2(levels)) over its observed range, at least 1."""
    if x.numel() == 0:
        return 1
    levels = int(x.max()) - int(x.min()) + 1
    return max(1, math.ceil(math.log2(levels)))


def _spike_bytes(numel: int, bits: int) -> int:
    return -(-numel * bits // 8)


def _read(x: torch.Tensor) -> dict[str, int]:
    """Traffic of reading (or writing) activation tensor x once."""
    if is_discrete(x):
        return {"spike_bytes": _spike_bytes(x.numel(), value_bits(x))}
    return {"act_values": x.numel(), "act_bytes": x.numel() * x.element_size()}


def _weights(m: nn.Module) -> dict[str, int]:
    ps = list(m.parameters(recurse=False))
    return {"weight_params": sum(p.numel() for p in ps), "weight_bytes": sum(p.numel() * p.element_size() for p in ps)}


def _synaptic(x: torch.Tensor, fan_out: torch.Tensor, dense: int) -> dict[str, int]:
    """ACs or MACs of one synaptic layer; fan_out broadcasts against x (per-input fan-out)."""
    if not is_discrete(x):
        return {"macs": dense, "dense_ops": dense}
    nz = x != 0
    return {"acs": int((nz * fan_out).sum()), "ac_payload": int((x.abs() * fan_out).sum()),
            "ac_capacity": int(fan_out.expand_as(x).sum()), "dense_ops": dense}


def linear_counts(m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> dict[str, int]:
    """y = W x + b over x [..., in]: fan-out out_features per input, dense MACs = rows x in x out."""
    fan_out = torch.tensor(m.out_features)
    return _synaptic(x, fan_out, y.numel() * m.in_features)


def conv_fan_out(m: nn.Conv2d, height: int, width: int) -> torch.Tensor:
    """[C_in, H, W]: outputs each input position feeds (out_channels/groups x kernel taps inside the
    output), as the input-gradient of the conv with unit weights and unit output gradients."""
    ones = m.weight.new_ones(1, m.in_channels, height, width).requires_grad_()
    with torch.enable_grad():
        m._conv_forward(ones, torch.ones_like(m.weight, requires_grad=False), None).sum().backward()
    return ones.grad[0].round().to(torch.int64)


def conv2d_counts(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> dict[str, int]:
    """Conv2d over NCHW (or CHW) x: per-position fan-out; dense MACs = output elements x C_in/groups x kh x kw."""
    taps = m.weight[0].numel()  # C_in/groups x kh x kw
    return _synaptic(x, conv_fan_out(m, *x.shape[-2:]), y.numel() * taps)


def synaptic_traffic(m: nn.Module, x: torch.Tensor, y: torch.Tensor, ops: dict[str, int],
                     dataflow: str) -> tuple[dict[str, int], dict[str, int]]:
    """(bytes moved, counts that scale with synaptic events) of one synaptic layer call under a
    dataflow of the module docstring; ``ops`` are its :func:`linear_counts` / :func:`conv2d_counts`."""
    n_acs = ops.get("acs", 0)
    if dataflow == "dense_state":
        return _add(_add(_weights(m), _read(x)), _read(y)), {"acs": n_acs}
    w_size = m.weight.element_size()
    bias = {} if m.bias is None else {"weight_params": y.numel(), "weight_bytes": y.numel() * m.bias.element_size()}
    if not is_discrete(x):  # output-stationary: a weight and an input value per MAC, one output write
        n = ops["macs"]
        per_mac = {"weight_params": n, "weight_bytes": n * w_size, "act_values": n, "act_bytes": n * x.element_size()}
        return _add(_add(per_mac, bias), _read(y)), {}
    per_event = {"weight_params": n_acs, "weight_bytes": n_acs * w_size, "state_bytes": 2 * n_acs * y.element_size()}
    return _add(_add(dict(per_event), bias), _read(x)), {"acs": n_acs, **per_event}


def npe_counts(m: NPE, x: torch.Tensor, s: torch.Tensor, read_input: bool = True) -> dict[str, int]:
    """An NPE over T steps: one update and one state read+write per neuron per step; spikes at spike.bits;
    its input current read once unless it already sits in the membrane (``read_input=False``)."""
    complex_state = torch.as_tensor(m.params().decay).is_complex()
    state_dtype = torch.promote_types(x.dtype, torch.complex64) if complex_state else x.dtype
    state_size = torch.empty((), dtype=state_dtype).element_size()
    counts = {"neuron_updates": s.numel(), "spikes": int(torch.count_nonzero(s)),
              "state_bytes": 2 * s.numel() * state_size, "spike_bytes": _spike_bytes(s.numel(), m.spike.bits)}
    return {**counts, "act_values": x.numel(), "act_bytes": x.numel() * x.element_size()} if read_input else counts


def _mixer_counts(m: nn.Module, inputs: tuple, output) -> dict[str, int]:
    counts = m.accounting(inputs, output)
    for key, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{type(m).__name__}.accounting must return ints; key {key!r} is {type(n).__name__}")
    return counts


def module_counts(m: nn.Module, inputs: tuple, output, dataflow: str = "dense_state",
                  in_membrane: bool = False) -> tuple[dict[str, int], dict[str, int]]:
    """(counts, the part that scales with synaptic events) of one call of an observed module under
    ``dataflow``: its ops and traffic, its own parameters read once unless a synaptic layer reads
    them per operation; ``in_membrane``: an NPE whose input current already sits in its membrane."""
    x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
    events: dict[str, int] = {}
    if isinstance(m, SYNAPTIC) and x is not None:
        ops = (linear_counts if isinstance(m, nn.Linear) else conv2d_counts)(m, x, output)
        tally, events = synaptic_traffic(m, x, output, ops, dataflow)
        _add(tally, ops)
    else:
        tally = _weights(m)
        if isinstance(m, NPE) and x is not None:
            _add(tally, npe_counts(m, x, output[0] if isinstance(output, tuple) else output, not in_membrane))
    if callable(getattr(m, "accounting", None)):
        _add(tally, _mixer_counts(m, inputs, output))
    return tally, events


def _observed(m: nn.Module) -> bool:
    return isinstance(m, (*SYNAPTIC, NPE)) or callable(getattr(m, "accounting", None))


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)


def _tokens(x: torch.Tensor) -> int:
    sequence = (x.dim() == 3 and x.is_floating_point()) or (x.dim() == 2 and not x.is_floating_point())
    return x.shape[0] * x.shape[1] if sequence else x.shape[0]


class Counter:
    """Collects per-layer counts while active (see the module docstring); use through :func:`count`."""

    def __init__(self, model: nn.Module, profile: str | Path | _energy.Profile = "cmos45",
                 dataflow: str = "dense_state"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.profile = _energy.get_profile(profile)
        self.dataflow = _checks.choice("dataflow", dataflow, DATAFLOWS)
        self.inferences = 0
        self.tokens = 0
        self._raw: dict[str, dict[str, int]] = {}
        self._events: dict[str, dict[str, int]] = {}  # the part of _raw that scales with synaptic events
        self._accumulated = None  # an event-driven layer's output, summed in its targets' membranes
        self._footprint: dict[str, dict[str, int]] = {}  # weights resident per observed layer
        self._handles: list = []

    # ---- hooks ---------------------------------------------------------------------------------
    def __enter__(self) -> Counter:
        if self._handles:
            raise RuntimeError("this counter is already active")
        self._handles.append(self.model.register_forward_pre_hook(self._on_root, with_kwargs=True))
        for name, m in self.model.named_modules():
            if _observed(m):
                self._handles.append(m.register_forward_hook(self._hook(name or type(m).__name__)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._accumulated = None

    def _on_root(self, module, args, kwargs):
        x = _first_tensor(args, kwargs)
        if x is not None and x.dim() > 0:
            self.inferences += x.shape[0]
            self.tokens += _tokens(x)

    def _hook(self, name: str):
        def hook(m, inputs, output):
            in_membrane = self._accumulated is not None and bool(inputs) and inputs[0] is self._accumulated
            with torch.no_grad():
                counts, events = module_counts(m, inputs, output, self.dataflow, in_membrane)
            if self.dataflow == "event_driven" and isinstance(m, SYNAPTIC):
                self._accumulated = output if events else None
            _add(self._raw.setdefault(name, {}), counts)
            _add(self._events.setdefault(name, {}), events)
            self._footprint[name] = _weights(m)
        return hook

    # ---- results -------------------------------------------------------------------------------
    @property
    def weight_footprint_bytes(self) -> int:
        """Bytes of the weights of the layers that ran (each once): what must stay resident."""
        return sum(w["weight_bytes"] for w in self._footprint.values())

    @property
    def weight_footprint_params(self) -> int:
        return sum(w["weight_params"] for w in self._footprint.values())

    def _row(self, raw) -> dict[str, int]:
        row = _add(dict.fromkeys(KEYS, 0), raw)
        row["bytes"] = sum(row.get(k, 0) for k in _energy.BYTE_CLASSES)
        row.update(_energy.level_bytes(row, self.profile, self.weight_footprint_bytes))
        return row

    @property
    def layers(self) -> dict[str, dict[str, int]]:
        """{module name: counts}, in the order the modules first ran."""
        return {name: self._row(raw) for name, raw in self._raw.items()}

    @property
    def totals(self) -> dict[str, int]:
        """Counts summed over layers, with ``bytes`` and ``bytes_<level>``."""
        return self._row(functools.reduce(_add, self._raw.values(), {}))

    @property
    def event_totals(self) -> dict[str, int]:
        """The part of :attr:`totals` that scales with the number of synaptic events (see Dataflows)."""
        return self._row(functools.reduce(_add, self._events.values(), {}))

    @staticmethod
    def _count(n: int, what: str) -> int:
        if n == 0:
            raise ValueError(f"no {what} observed: run the model inside the with block")
        return n

    def _per(self, n: int, what: str) -> dict[str, float]:
        n = self._count(n, what)
        return {k: v / n for k, v in self.totals.items()}

    @property
    def per_inference(self) -> dict[str, float]:
        """Totals / inferences (weight traffic thereby amortised over the batch)."""
        return self._per(self.inferences, "inferences")

    @property
    def per_token(self) -> dict[str, float]:
        return self._per(self.tokens, "tokens")

    @property
    def energy_j(self) -> float:
        """Energy of everything counted under the profile (the whole batch, every call), joules."""
        return _energy.energy_j(self.totals, self.profile)

    @property
    def energy_j_per_inference(self) -> float:
        """:attr:`energy_j` / inferences, joules (weight traffic amortised over the batch)."""
        return self.energy_j / self._count(self.inferences, "inferences")

    @property
    def energy_j_per_token(self) -> float:
        """:attr:`energy_j` / tokens, joules (per inference for models that do not read token sequences)."""
        return self.energy_j / self._count(self.tokens, "tokens")

    @property
    def layer_energy_j(self) -> dict[str, float]:
        return {name: _energy.energy_j(row, self.profile) for name, row in self.layers.items()}

    @property
    def sparsity(self) -> float:
        """Fraction of zeros among NPE outputs (nan when no NPE ran)."""
        t = self.totals
        return 1 - t["spikes"] / t["neuron_updates"] if t.get("neuron_updates") else float("nan")

    @property
    def unpriced(self) -> list[str]:
        """Operation keys that occurred but that the profile gives no energy for."""
        t = self.totals
        ops = [k for k in t if k not in INFO_KEYS and not k.startswith("bytes") and not k.endswith("bytes")]
        return _energy.unpriced(t, self.profile, ops)

    def to_dict(self) -> dict:
        """JSON-serialisable summary: totals, per inference/token, per-layer rows with energy."""
        energies = self.layer_energy_j
        return {
            "profile": self.profile.name, "dataflow": self.dataflow, "inferences": self.inferences,
            "tokens": self.tokens,
            "energy_j": self.energy_j,
            "energy_j_per_inference": self.energy_j_per_inference if self.inferences else None,
            "energy_j_per_token": self.energy_j_per_token if self.tokens else None,
            "sparsity": None if math.isnan(self.sparsity) else self.sparsity,
            "weight_footprint_bytes": self.weight_footprint_bytes, "unpriced": self.unpriced,
            "totals": self.totals,
            "per_inference": self.per_inference if self.inferences else None,
            "per_token": self.per_token if self.tokens else None,
            "layers": {name: {**row, "energy_j": energies[name]} for name, row in self.layers.items()},
        }

    def report(self, console=None) -> str:
        """The accounting as a plain-text table, returned (nothing is printed: ``print(c.report())``):
        one row per layer and the total, every count per inference with its unit in the column
        header, as wide as the numbers need (never cut to the terminal). ``console`` is deprecated
        (it prints the text there, as the former report did)."""
        from rich.console import Console
        from rich.table import Table

        n = self._count(self.inferences, "inferences")
        per_token = self.tokens != self.inferences
        table = Table(title=f"Accounting under profile {self.profile.name!r} ({self.dataflow}), per inference; "
                            f"{self.inferences} inferences, {self.tokens} tokens, batch total {self.energy_j:.4g} J")
        columns = ["layer", "MACs\n/ inference", "ACs\n/ inference", "spikes\n/ inference",
                   "sparsity (fraction\nof zero outputs)", "neuron updates\n/ inference", "bytes\n/ inference",
                   "energy (nJ)\n/ inference", *(["energy (nJ)\n/ token"] if per_token else [])]
        for col in columns:
            table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        rows = [(name, row, self.layer_energy_j[name]) for name, row in self.layers.items()]
        for i, (name, row, e) in enumerate([*rows, ("total", self.totals, self.energy_j)]):
            upd = row.get("neuron_updates", 0)
            sparsity = f"{1 - row.get('spikes', 0) / upd:.3f}" if upd else "-"
            table.add_row(name, *(f"{row.get(k, 0) / n:,.0f}" for k in ("macs", "acs", "spikes")), sparsity,
                          f"{upd / n:,.0f}", f"{row['bytes'] / n:,.0f}", f"{e / n * 1e9:,.3f}",
                          *([f"{e / self.tokens * 1e9:,.3f}"] if per_token else []),
                          end_section=i == len(rows) - 1)
        if self.unpriced:
            table.caption = f"not priced by {self.profile.name} (not in the energy): {', '.join(self.unpriced)}"
        out = io.StringIO()
        Console(file=out, width=100_000, color_system=None, highlight=False).print(table, crop=False)
        text = "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"
        if console is not None:
            warnings.warn("Counter.report(console=...) is deprecated: report() returns the text, print it yourself",
                          DeprecationWarning, stacklevel=2)
            console.print(text, markup=False, highlight=False, crop=False, soft_wrap=True)
        return text


def count(model: nn.Module, profile: str | Path | _energy.Profile = "cmos45",
          dataflow: str = "dense_state") -> Counter:
    """``with count(model, profile) as c: model(x)``; profile is a name, a .toml path or a Profile;
    ``dataflow`` one of :data:`DATAFLOWS` (module docstring)."""
    return Counter(model, profile, dataflow)
