"""Generic blocks every sequence model is built from: the stateful pre-norm :class:`Residual` and
:class:`SpikingOutput` (an NPE along the tokens after a mixer)."""

from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..neurons import NPE, NPEState
from .base import Mixer, resolve_neuron

# parameter names of the two-sublayer block before Residual (files saved by neurotoken 0.1.0)
_OLD_NAMES = {"norm1.": "norms.0.", "mixer.": "sublayers.0.", "norm2.": "norms.1.", "mlp.": "sublayers.1."}


class Residual(Mixer):
    """Pre-norm residual stack: x <- x + drop(f_i(LN_i x)) for each sublayer f_i in turn. Sublayers
    that are :class:`Mixer` s carry a state (the block's state is the tuple of theirs); others (an
    MLP) are stateless (None in the tuple). ``norm``: the factory of each LN_i, called with d_model
    (default LayerNorm). The residual additions are not counted."""

    ranks = (3, None)  # [..., B, L, D]: leading axes (a virtual time axis) pass through

    def __init__(self, d_model: int, sublayers, dropout: float = 0.0, norm=nn.LayerNorm):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.sublayers = nn.ModuleList(sublayers)
        if not callable(norm):
            raise TypeError(f"norm must be a callable taking d_model (a norm layer class), got {type(norm).__name__}")
        self.norms = nn.ModuleList(norm(d_model) for _ in self.sublayers)
        self.drop = nn.Dropout(_checks.number("dropout", dropout, low=0.0, high=1.0, high_open=True))

    def forward(self, x: torch.Tensor, state: tuple | None = None, return_state: bool = False):
        self.check_input(x)
        if state is not None and (not isinstance(state, tuple) or len(state) != len(self.sublayers)):
            raise ValueError(f"state must be a tuple of {len(self.sublayers)} sublayer states, "
                             f"got {type(state).__name__}")
        carry = state is not None or return_state
        states = []
        for norm, f, s in zip(self.norms, self.sublayers, state or (None,) * len(self.sublayers)):
            if carry and isinstance(f, Mixer):
                y, s = f(norm(x), s, return_state=True)
            else:
                y = f(norm(x))
            x = x + self.drop(y)
            states.append(s)
        return (x, tuple(states)) if return_state else x

    def initial_state(self, batch: int) -> tuple:
        """The tuple of the sublayers' initial states (None for a stateless sublayer)."""
        return tuple(f.initial_state(batch) if isinstance(f, Mixer) else None for f in self.sublayers)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Also load the parameter names of the former two-sublayer block (norm1, mixer, norm2, mlp)."""
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            old = next((o for o in _OLD_NAMES if rest.startswith(o)), None)
            if old is not None:
                state_dict[prefix + _OLD_NAMES[old] + rest[len(old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SpikingOutput(Mixer):
    """A mixer whose output y [B, L, D] drives an NPE along the tokens: s_t = neuron(y_t), eq. (9).
    State: (the mixer's state, the neuron's :class:`NPEState`).

    SpikeGPT's own placement (binary spikes into the residual stream) is :class:`Residual` of
    SpikingOutput(RWKVTimeMix, LIF(0.5, 2.0, reset="zero")) and the same for RWKVChannelMix:
    spikingjelly's tau = 2, v_th = 1, hard-reset LIF (h_t = h_{t-1} + (x_t - h_{t-1}) / 2 fires at
    h_t >= 1) is eq. (9) with beta = 0.5, threshold 2."""

    def __init__(self, mixer: Mixer, neuron: NPE):
        super().__init__()
        if not isinstance(mixer, Mixer):
            raise TypeError(f"mixer must be a Mixer, got {type(mixer).__name__}")
        if not isinstance(neuron, (NPE, dict)):
            raise TypeError(f"neuron must be an NPE or its config dict, got {type(neuron).__name__}")
        self.mixer, self.neuron = mixer, resolve_neuron(neuron, None)

    @property
    def d_model(self) -> int:
        return self.mixer.d_model

    def forward(self, x: torch.Tensor, state: tuple | None = None, return_state: bool = False):
        if state is not None and (not isinstance(state, tuple) or len(state) != 2):
            raise TypeError(f"state must be a (mixer state, NPEState) pair, got {type(state).__name__}")
        inner, npe = (None, None) if state is None else state
        if npe is not None and not isinstance(npe, NPEState):
            raise TypeError(f"state[1] must be an NPEState, got {type(npe).__name__}")
        y, inner = self.mixer(x, inner, return_state=True)
        s, npe = self.neuron(y.transpose(0, 1), npe, return_state=True)
        s = s.transpose(0, 1)
        return (s, (inner, npe)) if return_state else s

    def initial_state(self, batch: int) -> tuple:
        zeros = self._zeros(batch, self.mixer.d_model)
        return self.mixer.initial_state(batch), NPEState(zeros, zeros.clone())


__all__ = ["Residual", "SpikingOutput"]
