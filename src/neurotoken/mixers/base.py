"""The contract every inter-token mixer follows, and the boundary checks the mixers share.

A mixer maps token sequences [B, L, D] -> [B, L, D] with ``forward(x, state=None, return_state=False)``
over a whole sequence, ``step(x_t, state) -> (y_t, state)`` for one token (exactly the next
position of ``forward``) and ``initial_state(batch)``, the state before the first token. A mixer
that does work of its own (beyond its Linear and NPE children, which the counter observes)
defines ``accounting(inputs, output) -> dict[str, int]``, computed from that call's inputs,
output and shapes only. A spiking mixer takes ``neuron=``: an NPE (copied per use), its config
dict, or None for the conventional form (:func:`resolve_neuron`).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import _checks
from .. import neurons as _neurons


# ---- boundary checks shared by the mixers ---------------------------------------------------

def check_tokens(x, d_model: int | None = None, name: str = "x") -> torch.Tensor:
    """Require a token sequence [B, L, D] with L >= 1 (and D = d_model when given)."""
    _checks.tensor(name, x, min_dim=3, max_dim=3)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token (L >= 1), got shape {tuple(x.shape)}")
    if d_model is not None and x.shape[2] != d_model:
        raise ValueError(f"{name} must have {d_model} channels last, got shape {tuple(x.shape)}")
    return x


def check_state(name: str, state, shape) -> torch.Tensor:
    """Require a state tensor of exactly ``shape``."""
    _checks.tensor(name, state)
    if tuple(state.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(state.shape)}")
    return state


def check_mask(mask, L: int | None = None, S: int | None = None, name: str = "mask") -> torch.Tensor:
    """Require a boolean [..., L, S] mask in which every query row attends at least one key."""
    _checks.tensor(name, mask, min_dim=2)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a boolean tensor, got dtype {mask.dtype}")
    want = (mask.shape[-2] if L is None else L, mask.shape[-1] if S is None else S)
    if tuple(mask.shape[-2:]) != want:
        raise ValueError(f"{name} must have shape [..., {want[0]}, {want[1]}] (queries x keys), "
                         f"got {tuple(mask.shape)}")
    empty = ~mask.any(-1)
    if bool(empty.any()):
        where = tuple(empty.nonzero()[0].tolist())
        raise ValueError(f"{name} row {where} attends no key: every query needs at least one "
                         "attended key (the softmax of an empty row is undefined)")
    return mask


def check_qkv(q, k, v, lead: int = 0) -> None:
    """Require q [..., L, d], k [..., S, d], v [..., S, dv] with equal leading dims (``lead`` of them at least)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        _checks.tensor(name, t, min_dim=2 + lead, finite=False)
    if q.shape[:-2] != k.shape[:-2] or q.shape[:-2] != v.shape[:-2] or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q, k, v must be [..., L, d], [..., S, d], [..., S, dv] with equal leading "
                         f"dims; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")


# ---- the neuron of a spiking mixer ----------------------------------------------------------

class _Default:
    """Marks ``neuron=`` left out: the mixer builds its own default neuron."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


def resolve_neuron(neuron, default) -> _neurons.NPE | None:
    """The NPE a mixer owns: a deep copy of an NPE instance (one instance may configure several
    places), one built from its config dict, ``default()`` for :data:`DEFAULT`, None as is."""
    if neuron is DEFAULT:
        return default()
    if neuron is None:
        return None
    if isinstance(neuron, (_neurons.NPE, dict)):
        return _neurons.build_neuron(neuron)
    raise TypeError(f"neuron must be an NPE (e.g. neurotoken.LIF(...)), its config dict or None, "
                    f"got {type(neuron).__name__}")


def is_memoryless(neuron: _neurons.NPE) -> bool:
    """True when the NPE keeps nothing between steps (decay 0, no subtractive reset): s = spike(x)
    element-wise, eq. (9) with beta = 0, whatever axis is taken as time."""
    p = neuron.params()
    return (p.reset != "subtract" and p.feedback is None and not isinstance(p.decay, torch.Tensor)
            and p.decay == 0)


def memoryless(threshold=1.0, spike="binary", **options) -> _neurons.LIF:
    """A memoryless LIF (beta = 0, reset "zero": h_t = x_t, eq. 9), i.e. s = spike(x) at ``threshold``
    element-wise; ``options`` go to :class:`~neurotoken.neurons.LIF`."""
    return _neurons.LIF(beta=0.0, threshold=threshold, reset="zero", spike=spike, **options)


def legacy_neuron(owner: str, neuron, legacy: dict, build):
    """``neuron``, or (with a DeprecationWarning) ``build(**legacy)`` from the keyword arguments
    that ``neuron=`` replaces; both at once is a TypeError."""
    if not legacy:
        return neuron
    if neuron is not DEFAULT:
        raise TypeError(f"{owner}: pass either neuron= or the deprecated {', '.join(sorted(legacy))}, not both")
    warnings.warn(f"{owner}({', '.join(f'{k}=' for k in legacy)}...) is deprecated: pass "
                  "neuron=neurotoken.LIF(...) instead", DeprecationWarning, stacklevel=3)
    return build(**legacy)


class Fire(nn.Module):
    """Spikes of a memoryless NPE, s = spike(x - theta) element-wise on any x (eq. 9 with beta = 0).

    Observed by the counter: one neuron update per element and ``spikes`` its nonzero outputs
    (a multi-level spike is one event). Subclasses running a stateful NPE pass ``memoryless_only=False``.
    """

    def __init__(self, neuron: _neurons.NPE, memoryless_only: bool = True):
        super().__init__()
        self.memoryless = is_memoryless(neuron)
        if memoryless_only and not self.memoryless:
            raise TypeError(f"neuron must be memoryless here (beta = 0, no subtractive reset), got {neuron!r}")
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.neuron.params()
        return p.spike(x, p.threshold, p.surrogate)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        s = output[0] if isinstance(output, tuple) else output  # (spikes, state) with return_state
        return {"neuron_updates": s.numel(), "spikes": int(torch.count_nonzero(s))}


# ---- the base class ---------------------------------------------------------------------------

class Mixer(nn.Module):
    """Base of the inter-token mixers: ``forward(x [B, L, D], state=None, return_state=False)``
    over a whole sequence, ``step(x_t [B, D], state) -> (y_t, state)``, one token of it, and
    ``initial_state(batch)``, the state before the first token."""

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, state=None):
        """One token for streaming/generation: exactly the next token of ``forward``."""
        _checks.tensor("x_t", x_t, min_dim=2, finite=False)
        y, state = self(x_t.unsqueeze(-2), state, return_state=True)
        return y.squeeze(-2), state

    def initial_state(self, batch: int):
        """The state before the first token of ``batch`` sequences (what ``state=None`` means)."""
        raise NotImplementedError(f"{type(self).__name__} defines no initial_state")

    def _zeros(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Zeros on the device (and by default the dtype) of this mixer's parameters; the sizes come
        from ``initial_state(batch)``, so only ``batch`` can be wrong."""
        for n in shape:
            _checks.positive_int("batch", n, low=0)
        p = next(self.parameters())
        return torch.zeros(shape, device=p.device, dtype=p.dtype if dtype is None else dtype)


__all__ = ["Mixer", "Fire", "DEFAULT", "resolve_neuron", "is_memoryless", "memoryless",
           "legacy_neuron", "check_tokens", "check_state", "check_mask", "check_qkv"]
