"""Self-attention mixers, eq. (21)-(23), and their spiking forms.

Conventional: y_l = sum_l' alpha_{l,l'} v_l', alpha_{l,.} the softmax of q_l . k_l' / sqrt(d_k)
over the keys with M_{l,l'} = 1. Spiking: q, k, v are binary trains along a virtual time axis tau
(leading, [T, ...]) and scores count coincidences: AND (both spike), XNOR (equal bits), or
stochastic computing (the AND of independent Bernoulli streams has rate q k).

Every mixer maps [B, L, D] -> [B, L, D], is multi-head, has ``step(x_t, state)`` (a KV cache,
causal masks) equal to the full pass, and ``accounting(inputs, output)``: the op counts of one
forward call as {"macs", "acs", "bit_ops", "active_pairs", "spikes", "state_bytes"} ints (absent = 0).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
from torch import nn

from .. import _checks
from ..kernels import bitpack
from ..kernels.event_linear import EventLinear
from ..neurons import LIF
from .base import DEFAULT, Mixer, check_mask, check_qkv, check_state, legacy_neuron, resolve_neuron
from .blocksparse import BlockPlan, _block_sparse
from .sparse import CSR, events, sparse_attention, sparse_spike_attention

MASKS = ("causal", "full")
SCORES = ("and", "xnor", "stochastic")
METHODS = ("dense", "bitpack")


class KVCache(NamedTuple):
    """Keys and values of the tokens so far, per head: [B, H, S, d_head] ([T, ...] when spiking)."""

    k: torch.Tensor
    v: torch.Tensor


def causal_mask(L: int, S: int | None = None, device=None) -> torch.Tensor:
    """M[i, j] = j <= i + S - L: query i is token S - L + i after S - L cached ones ([L, S])."""
    L = _checks.positive_int("L", L)
    S = L if S is None else _checks.positive_int("S", S, low=L)
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(S - L)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                      scale: float | None = None) -> torch.Tensor:
    """Eq. (21)-(23): alpha = softmax over M_{l,l'} = 1 of q_l . k_l' scale (default 1/sqrt(d_k)),
    y_l = sum_l' alpha_{l,l'} v_l'. q [..., L, d], k [..., S, d], v [..., S, dv] -> [..., L, dv]."""
    check_qkv(q, k, v)
    _check_mask_of(mask, q, k)
    return _softmax(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]) if scale is None else _checks.number("scale", scale))


def _check_mask_of(mask, q: torch.Tensor, k: torch.Tensor) -> None:
    """A mask given to a public function: [..., L, S], every row attending a key (a value check, so
    the modules, whose masks are valid by construction, skip it in their forward passes)."""
    if mask is not None:
        check_mask(mask, q.shape[-2], k.shape[-2])


def _softmax(q, k, v, mask, scale: float) -> torch.Tensor:
    """Eq. (21)-(23) on trusted inputs."""
    s = (q @ k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf)
    return torch.softmax(s, -1) @ v


def _bits(s: torch.Tensor) -> torch.Tensor:
    """Spikes [T, ..., L, d] -> [..., L, T d]: each token's tau x d bits in one row."""
    return s.movedim(0, -2).flatten(-2)


def _check_spikes(name: str, s) -> torch.Tensor:
    _checks.tensor(name, s, min_dim=3)
    if not bool(((s == 0) | (s == 1)).all()):
        raise ValueError(f"{name} must hold binary spikes (0 or 1)")
    return s


def _scores(qs: torch.Tensor, ks: torch.Tensor, op: str, method: str) -> torch.Tensor:
    """Scores of binary spikes, shapes checked (the values are trusted: no host sync)."""
    _checks.tensor("qs", qs, min_dim=3)
    _checks.tensor("ks", ks, min_dim=3)
    if qs.shape[:-2] != ks.shape[:-2] or qs.shape[-1] != ks.shape[-1]:
        raise ValueError(f"qs and ks must be [T, ..., L, d] and [T, ..., S, d] with equal T, leading "
                         f"dims and d; got {tuple(qs.shape)} and {tuple(ks.shape)}")
    _checks.choice("method", method, METHODS)
    qf, kf = _bits(qs), _bits(ks)
    if method == "bitpack":
        if torch.is_grad_enabled() and (qs.requires_grad or ks.requires_grad):
            raise ValueError("method='bitpack' has no gradient: use method='dense' to train, "
                             "or call it under torch.no_grad()")
        why = bitpack.unsupported(qf)
        if why is None:
            return bitpack.packed_scores(qf, kf, op)
        warnings.warn(f"{why}: bit-packed scores fall back to the dense float reference", RuntimeWarning,
                      stacklevel=3)
    ones = qf @ kf.transpose(-1, -2)
    return ones if op == "and" else ones + (1 - qf) @ (1 - kf).transpose(-1, -2)


def and_scores(qs: torch.Tensor, ks: torch.Tensor, method: str = "dense") -> torch.Tensor:
    """AND coincidences C[l, l'] = sum_{t, d} q_t[l, d] k_t[l', d] of spikes [T, ..., L, d] -> [..., L, S].
    method="dense" is the float matmul reference, "bitpack" the popcount kernel (no gradient)."""
    return _scores(_check_spikes("qs", qs), _check_spikes("ks", ks), "and", method)


def xnor_scores(qs: torch.Tensor, ks: torch.Tensor, method: str = "dense") -> torch.Tensor:
    """XNOR agreements C[l, l'] = sum_{t, d} [q_t[l, d] = k_t[l', d]] (ones and zeros) -> [..., L, S]."""
    return _scores(_check_spikes("qs", qs), _check_spikes("ks", ks), "xnor", method)


SCORE_FUNCTIONS = {"and": and_scores, "xnor": xnor_scores}


def _mix_spikes(qs, ks, vs, mask, scale: float, score: str, method: str) -> torch.Tensor:
    """scale (M * C) vs on trusted inputs: C the ``score`` scores, or per-step products qs_t ks_t^T
    for "stochastic"."""
    c = qs @ ks.transpose(-1, -2) if score == "stochastic" else _scores(qs, ks, score, method)
    return scale * ((c if mask is None else c.masked_fill(~mask, 0)) @ vs)


def spike_attention(qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor, mask: torch.Tensor | None = None,
                    scale: float = 1.0, score: str = "and", method: str = "dense") -> torch.Tensor:
    """Spike-driven attention (no softmax, fixed scale): y_t = scale (M * C) vs_t with C the
    "and" or "xnor" scores of qs, ks. Binary spikes [T, ..., L, d] -> currents [T, ..., L, dv]; the
    spike values are not checked (a forward pass: NaN propagates), :func:`and_scores` checks them."""
    check_qkv(qs, ks, vs, lead=1)
    _check_mask_of(mask, qs, ks)
    score = _checks.choice("score", score, SCORE_FUNCTIONS)
    return _mix_spikes(qs, ks, vs, mask, _checks.number("scale", scale), score, method)


def stochastic_attention(qs: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor,
                         mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
    """Stochastic computing, per step: y_t = scale (M * (qs_t ks_t^T)) vs_t. For independent
    Bernoulli streams of rates q, k, v, E[y_t] = scale (M * q k^T) v: the mean over tau converges
    to the exact product (error ~ 1/sqrt(T)). [T, ..., L, d] -> [T, ..., L, dv]."""
    check_qkv(qs, ks, vs, lead=1)
    _check_mask_of(mask, qs, ks)
    return _mix_spikes(qs, ks, vs, mask, _checks.number("scale", scale), "stochastic", "dense")


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.unflatten(-1, (heads, -1)).transpose(-3, -2)  # [..., L, D] -> [..., H, L, D / H]


def _merge_heads(y: torch.Tensor) -> torch.Tensor:
    return y.transpose(-3, -2).flatten(-2)  # [..., H, L, d] -> [..., L, H d]


def _pairs_per_head(mask, L: int, S: int) -> int:
    if mask is None:
        return L * S
    return mask.nnz if isinstance(mask, (CSR, BlockPlan)) else int(mask.sum())


def _dense(mask):
    """A CSR pattern or block plan as its boolean mask (None and tensors unchanged)."""
    return mask.to_mask() if isinstance(mask, (CSR, BlockPlan)) else mask


def _bytes(*ts: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


class _Attention(Mixer):
    """Shell shared by the attention mixers: fused q/k/v projection, heads, mask, KV cache, output."""

    _lead: tuple = ()  # leading axes of the cached keys (the virtual time axis of a spiking mixer)
    _out_layer = nn.Linear  # the output projection's class

    def __init__(self, d_model: int, heads: int, mask, bias: bool):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.heads = _checks.positive_int("heads", heads)
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=_checks.flag("bias", bias))
        self.out = self._out_layer(d_model, d_model, bias=bias)
        self._store_mask(mask)

    def _store_mask(self, mask) -> None:
        if isinstance(mask, str):
            self.mask_kind = _checks.choice("mask", mask, MASKS)
        elif isinstance(mask, CSR):
            check_mask(mask.to_mask())
            self.mask_kind, self.pattern_shape = "csr", tuple(mask.shape)
            self.register_buffer("pattern_indptr", mask.indptr.clone(), persistent=False)
            self.register_buffer("pattern_indices", mask.indices.clone(), persistent=False)
        elif isinstance(mask, BlockPlan):
            self.mask_kind, self.pattern_plan = "blocks", mask
            for i, t in enumerate(mask.flat()):
                self.register_buffer(f"pattern_tiles{i}", t.clone(), persistent=False)
        elif isinstance(mask, torch.Tensor):
            check_mask(mask)
            if mask.dim() != 2:
                raise ValueError(f"mask must be one [L, L] pattern, got shape {tuple(mask.shape)}")
            self.mask_kind = "tensor"
            self.register_buffer("pattern_mask", mask.clone(), persistent=False)
        else:
            raise TypeError("mask must be 'causal', 'full', a boolean [L, L] tensor, a sparse.CSR or a "
                            f"blocksparse.BlockPlan, got {type(mask).__name__}")

    def _mask(self, L: int, S: int, device):
        if self.mask_kind == "full":
            return None
        if self.mask_kind == "causal":
            return causal_mask(L, S, device)
        if self.mask_kind == "csr":
            m = CSR(self.pattern_indptr, self.pattern_indices, self.pattern_shape)
        elif self.mask_kind == "blocks":
            m = self.pattern_plan.rebuild([getattr(self, f"pattern_tiles{i}")
                                           for i in range(len(self.pattern_plan.flat()))])
        else:
            m = self.pattern_mask
        if tuple(m.shape) != (L, S):
            raise ValueError(f"the mask was built for L = {m.shape[0]} tokens but the input has L = {L}")
        return m

    def forward(self, x: torch.Tensor, state: KVCache | None = None, return_state: bool = False):
        """x [B, L, D] -> y [B, L, D]; with return_state also the KV cache (mask='causal' only)."""
        self.check_input(x)
        if (state is not None or return_state) and self.mask_kind != "causal":
            raise ValueError(f"a KV cache (state, step) needs mask='causal', got a {self.mask_kind!r} mask")
        q, k, v = (_split_heads(t, self.heads) for t in self._project(x).chunk(3, -1))
        if state is not None:
            if not isinstance(state, KVCache):
                raise TypeError(f"state must be a KVCache, got {type(state).__name__}")
            cached = _checks.tensor("state.k", state.k, min_dim=2).shape[-2]  # any number of cached tokens
            for name, t in zip(("state.k", "state.v"), state):
                check_state(name, t, (*k.shape[:-2], cached, k.shape[-1]), like=k)
            k, v = torch.cat([state.k, k], -2), torch.cat([state.v, v], -2)
        mixed = self._mix(q, k, v, self._mask(q.shape[-2], k.shape[-2], x.device))
        y = self.out(self._out_input(mixed, x))
        return (y, KVCache(k, v)) if return_state else y

    def step(self, x_t: torch.Tensor, state: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """One token x_t [B, D] attending the cached ones: (y_t [B, D], state); equals the causal forward."""
        return super().step(x_t, state)

    def initial_state(self, batch: int) -> KVCache:
        """An empty KV cache: keys and values [..., B, H, 0, d_head]."""
        empty = self._zeros(*self._lead, batch, self.heads, 0, self.d_model // self.heads)
        return KVCache(empty, empty.clone())

    def _out_input(self, mixed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _merge_heads(mixed)


class SoftmaxAttention(_Attention):
    """Multi-head softmax attention, eq. (21)-(23). ``mask``: "causal", "full", a boolean [L, L]
    tensor, a :class:`~neurotoken.mixers.sparse.CSR` pattern (evaluated event-driven, pairs only) or a
    :class:`~neurotoken.mixers.blocksparse.BlockPlan` (evaluated on the pattern's non-zero tiles)."""

    def __init__(self, d_model: int, heads: int = 1, mask="causal", bias: bool = True):
        super().__init__(d_model, heads, mask, bias)

    def _project(self, x):
        return self.qkv(x)

    def _mix(self, q, k, v, mask):
        if isinstance(mask, CSR):
            return sparse_attention(q, k, v, mask)
        if isinstance(mask, BlockPlan):
            return _block_sparse(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]))
        return _softmax(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]))

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own op counts for the forward call on ``inputs`` (x[, state]); the q/k/v and
        output projections are nn.Linear children, counted on their own. MACs: 2 d_head per attended
        pair and head (scores, values); attended pairs over batch and heads; bytes of the keys and
        values held (the KV cache)."""
        x = inputs[0]
        state = inputs[1] if len(inputs) > 1 else None
        L = x.shape[-2]
        S = L + (0 if state is None else state.k.shape[-2])
        d_head, rows = self.d_model // self.heads, x.shape[:-2].numel() * self.heads
        pairs = rows * _pairs_per_head(self._mask(L, S, x.device), L, S)
        return {"macs": 2 * pairs * d_head, "active_pairs": pairs,
                "state_bytes": 2 * rows * S * d_head * x.element_size()}


class SpikeScores(nn.Module):
    """Scores and values of spiking attention, observed on its own spikes: q, k, v [T, B, H, L|S, d]
    and the mask -> currents [T, B, H, L, d] (see :func:`spike_attention`, :func:`stochastic_attention`)."""

    def __init__(self, score: str, scale: float, method: str):
        super().__init__()
        self.score, self.scale, self.method = score, scale, method

    def forward(self, q, k, v, mask):
        if isinstance(mask, CSR) and self.score == "and":
            return sparse_spike_attention(q, k, v, mask, self.scale)
        return _mix_spikes(q, k, v, _dense(mask), self.scale, self.score, self.method)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """Scores: T d_head bit ops (AND / XNOR) per evaluated pair and head; scores x values: one AC
        per pair and value spike. active_pairs: evaluated pairs over batch and heads (events only, for
        a CSR mask with score="and"); spikes: the Bernoulli q, k, v streams of score="stochastic" (the
        LIF spikes of "and"/"xnor" are counted by the neurons); state_bytes: K/V tensors held."""
        q, k, v, mask = inputs
        L, S, T = q.shape[-2], k.shape[-2], q.shape[0]
        v_spikes = (v != 0).sum((0, -1))  # [B, H, S]: value spikes per key token
        if isinstance(mask, CSR) and self.score == "and":
            n, _, cols = events(mask, q, k)
            pairs, value_acs = n.numel(), int(v_spikes.flatten(0, -2)[n, cols].sum())
        else:
            m = torch.ones(L, S, device=q.device) if mask is None else _dense(mask).float()
            pairs = q.shape[1:-2].numel() * _pairs_per_head(mask, L, S)
            value_acs = int((m @ v_spikes.unsqueeze(-1).float()).sum())
        counts = {"acs": value_acs, "bit_ops": pairs * T * q.shape[-1], "active_pairs": pairs,
                  "state_bytes": _bytes(k, v)}
        if self.score == "stochastic":
            new = (t[..., S - L:, :] for t in (k, v))
            counts["spikes"] = sum(int(torch.count_nonzero(t)) for t in (q, *new))
        return counts


class SpikingAttention(_Attention):
    """Spiking multi-head attention over T virtual steps, eq. (21)-(23) with spike scores.

    score="and" / "xnor": q, k, v = neuron(W x) along tau; C counts AND coincidences / XNOR
    agreements; y_t = neuron(scale (M * C) v_t) (Spikformer / Spike-driven Transformer: no softmax,
    fixed scale, default 1 / (T d_head)). score="stochastic": rates q, k, v = clamp(W x, 0, 1) (an
    integrate-and-fire neuron's rate: silent below zero, so scores depend on the query) Bernoulli-
    encoded with independent streams (straight-through gradient of the rates, eq. (57)); y_t the
    per-step AND products (default scale 1 / d_head). x [B, L, D] (real, repeated over tau) -> [B, L, D]
    (rate-decoded, then projected), or spikes [T, B, L, D] -> [T, B, L, D]. A CSR mask with
    score="and" is evaluated event-driven on active pairs only. ``neuron``: the NPE (default
    :class:`~neurotoken.neurons.LIF`), copied for the q/k/v and the output spikes.
    """

    _out_layer = EventLinear  # W_o reads spikes (their mean over T on tokens), eq. (93)

    def __init__(self, d_model: int, heads: int = 1, T: int = 4, score: str = "and", mask="full",
                 scale: float | None = None, method: str = "dense", bias: bool = True, neuron=DEFAULT, **legacy):
        super().__init__(d_model, heads, mask, bias)
        self.T = _checks.positive_int("T", T)
        self._lead = (self.T,)
        self.score = _checks.choice("score", score, SCORES)
        self.method = _checks.choice("method", method, METHODS)
        d_head = d_model // heads
        default = 1.0 / d_head if score == "stochastic" else 1.0 / (T * d_head)
        scale = default if scale is None else _checks.number("scale", scale, low=0.0, low_open=True)
        if neuron is None:
            raise TypeError("SpikingAttention needs a neuron (an NPE); its conventional form is SoftmaxAttention")
        self.neuron = resolve_neuron(legacy_neuron("SpikingAttention", neuron, legacy, LIF), LIF)
        if self.score != "stochastic" and self.neuron.params().spike.bits != 1:
            raise TypeError(f"score={score!r} needs a neuron firing binary spikes (0/1), got "
                            f"{type(self.neuron.params().spike).__name__} spikes")
        self.out_neuron = resolve_neuron(self.neuron, LIF)
        self.mix = SpikeScores(self.score, scale, self.method)

    @property
    def scale(self) -> float:
        return self.mix.scale

    ranks = (3, 4)

    def check_input(self, x, name: str = "x", step: bool = False) -> torch.Tensor:
        """Also x [B, L, D] or spikes [T, B, L, D] with this mixer's T leading."""
        super().check_input(x, name, step)
        if x.dim() == 4 - step and x.shape[0] != self.T:
            raise ValueError(f"{name} must be real tokens or spikes with T = {self.T} leading, "
                             f"got shape {tuple(x.shape)}")
        return x

    def _project(self, x):
        cur = self.qkv(x)
        if x.dim() == 3:
            cur = cur.expand(self.T, *cur.shape)
        if self.score != "stochastic":
            return self.neuron(cur)
        p = cur.clamp(0.0, 1.0)
        return p + ((torch.rand_like(p) < p).to(p.dtype) - p).detach()

    def _mix(self, q, k, v, mask):
        mixed = self.mix(q, k, v, mask)
        return mixed if self.score == "stochastic" else self.out_neuron(mixed)

    def _out_input(self, mixed, x):
        merged = _merge_heads(mixed)
        return merged.mean(0) if x.dim() == 3 else merged


__all__ = ["MASKS", "SCORES", "METHODS", "KVCache", "causal_mask", "softmax_attention", "and_scores",
           "xnor_scores", "spike_attention", "stochastic_attention", "SoftmaxAttention", "SpikingAttention",
           "SpikeScores"]
