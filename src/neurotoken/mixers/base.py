"""The contract every inter-token mixer follows, and the boundary checks the mixers share.

A mixer maps token sequences [B, L, D] -> [B, L, D] with ``forward(x, state=None, return_state=False)``
over a whole sequence, ``step(x_t, state) -> (y_t, state)`` for one token (exactly the next
position of ``forward``) and ``initial_state(batch)``, the state before the first token. A mixer
that does work of its own (beyond its Linear and NPE children, which the counter observes)
defines ``accounting(inputs, output) -> dict[str, int]``, computed from that call's inputs,
output and shapes only. A spiking mixer takes ``neuron=``: an NPE (copied per use), its config
dict, or None for the conventional form (:func:`resolve_neuron`).

Inputs are checked at each forward by metadata only (no host sync, so NaN propagates): rank,
channels, no empty axis, a real floating dtype equal to the parameters' (``model.to(dtype)``
converts a model; under autocast any floating dtype) and the parameters' device.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import _checks
from .. import neurons as _neurons


# ---- boundary checks shared by the mixers ---------------------------------------------------

def check_tokens(x, d_model: int | None = None, name: str = "x", like: nn.Module | None = None) -> torch.Tensor:
    """Require a token sequence [B, L, D] with L >= 1 (and D = d_model when given); with ``like``, also
    B >= 1 and the device and dtype of like's parameters (:func:`check_dtype`)."""
    _checks.tensor(name, x, min_dim=3, max_dim=3)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token (L >= 1), got shape {tuple(x.shape)}")
    if d_model is not None and x.shape[2] != d_model:
        raise ValueError(f"{name} must have {d_model} channels last, got shape {tuple(x.shape)}")
    if like is None:
        return x
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sequence (B >= 1), got shape {tuple(x.shape)}")
    return check_dtype(name, x, like)


def _parameter(module: nn.Module) -> torch.Tensor | None:
    return next((p for p in module.parameters() if p.is_floating_point()), None)


def check_device(name: str, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """Require x on the device of ``module``'s parameters (metadata only)."""
    p = _parameter(module)
    if p is not None and x.device != p.device:
        raise ValueError(f"{name} is on {x.device} but the parameters are on {p.device}: "
                         f"move one to the other ({name}.to(device) or model.to(device))")
    return x


def check_dtype(name: str, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """Require a real floating x on the device of ``module``'s parameters and of their dtype (any
    floating dtype under autocast). Metadata only: no host sync, so forward passes may call it.
    Policy: a model computes in its parameters' dtype; convert the model (``model.to(dtype)``) or x."""
    check_device(name, x, module)
    p = _parameter(module)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point tensor, got {x.dtype}")
    if p is not None and x.dtype != p.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} has dtype {x.dtype} but the parameters are {p.dtype}: pass "
                        f"{name}.to({p.dtype}) or convert the model with model.to({x.dtype})")
    return x


def check_state(name: str, state, shape, like: torch.Tensor | None = None) -> torch.Tensor:
    """Require a state tensor of exactly ``shape`` (and, given ``like``, on its device with its dtype)."""
    _checks.tensor(name, state)
    if tuple(state.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(state.shape)}")
    if like is not None and (state.device != like.device or state.dtype != like.dtype):
        raise TypeError(f"{name} must be a {like.dtype} tensor on {like.device}, got {state.dtype} on {state.device}")
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
    ``initial_state(batch)``, the state before the first token. ``d_model`` is D; ``ranks`` the
    (min, max) ranks of x that forward takes (None: any leading axes, e.g. a virtual time axis)."""

    d_model: int
    ranks: tuple = (3, 3)

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        raise NotImplementedError

    def check_input(self, x, name: str = "x", step: bool = False) -> torch.Tensor:
        """Require tokens [..., B, L, d_model] (a token [..., B, d_model] with ``step``), none of the
        sizes 0, on the parameters' device and of their dtype (:func:`check_dtype`): metadata only."""
        low, high = (r if r is None else r - step for r in self.ranks)
        _checks.tensor(name, x, min_dim=low, max_dim=high)
        want = "[B" + ("" if step else ", L") + f", {self.d_model}]"
        if x.shape[-1] != self.d_model:
            raise ValueError(f"{name} must have {self.d_model} channels last ({want}), got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"{name} must hold at least one token of one sequence ({want}, no size 0), "
                             f"got shape {tuple(x.shape)}")
        return check_dtype(name, x, self)

    def step(self, x_t: torch.Tensor, state=None):
        """One token for streaming/generation: exactly the next token of ``forward``."""
        self.check_input(x_t, "x_t", step=True)
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
           "legacy_neuron", "check_tokens", "check_state", "check_mask", "check_qkv", "check_device",
           "check_dtype"]
