"""RWKV (RWKV-4) time-mix and channel-mix, and SpikeGPT's spiking RWKV block, on token sequences [B, L, D].

RWKV mixes value vectors element-wise with a recurrent per-channel decay w > 0 and a bonus u for
the current token (the WKV operator), then gates by the receptance and projects:

    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t)
          / (sum_{i<t} e^{-(t-1-i) w + k_i}     + e^{u + k_t})

a ratio of two linear recurrences, num_t = e^{-w} num_{t-1} + e^{k_t} v_t and the same for den
with v = 1, held as (num, den, max) with num_true = e^max num (running max, as RWKV-4's kernel),
so no exp overflows however large k or L. :class:`SpikeGPTBlock` makes the activations that feed
each mixer's output projection discrete spikes (memoryless NPEs); :class:`~.blocks.SpikingOutput`
instead puts an NPE along the tokens after a mixer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .. import _checks
from ..kernels.event_linear import EventLinear
from ..scan import METHODS, linear_scan
from .base import DEFAULT, Mixer, check_state, check_tokens, is_memoryless, legacy_neuron, memoryless, resolve_neuron
from .blocks import Residual, SpikingOutput

INIT_MAX = -1e38  # the running max of an empty history (finite, so states stay checkable)


class WKVState(NamedTuple):
    num: torch.Tensor  # sum_i e^{k_i - (t-i) w - max} v_i   [B, D]
    den: torch.Tensor  # sum_i e^{k_i - (t-i) w - max}       [B, D]
    max: torch.Tensor  # the shared exponent offset           [B, D]


class TimeMixState(NamedTuple):
    shift: torch.Tensor  # the last token x_{t-1} [B, D] for the token shift
    wkv: WKVState


# ---- the WKV operator -------------------------------------------------------------------------

def _check_wkv(w, u, k, v, state) -> WKVState:
    """Shapes only: the decay w > 0 is a value (a host sync), trusted as the modules make it, exp(.)."""
    check_tokens(k, name="k")
    if v.shape != k.shape:
        raise ValueError(f"v must have k's shape {tuple(k.shape)}, got {tuple(v.shape)}")
    _checks.tensor("v", v)
    B, _, D = k.shape
    for name, t in (("w", w), ("u", u)):
        check_state(name, t, (D,))
    if state is None:
        zeros = k.new_zeros(B, D)
        return WKVState(zeros, zeros, torch.full_like(zeros, INIT_MAX))
    return _check_wkv_state(state, k[:, 0])


def _check_wkv_state(state, like: torch.Tensor) -> WKVState:
    """Require a (num, den, max) state, each of the shape, dtype and device of ``like`` [B, D]."""
    if not isinstance(state, tuple) or len(state) != 3:
        raise TypeError(f"state must be a WKVState (num, den, max), got {type(state).__name__}")
    return WKVState(*(check_state(f"state.{n}", t, like.shape, like=like) for n, t in zip(WKVState._fields, state)))


def _wkv_read(num, den, m, u, k, v) -> torch.Tensor:
    """wkv_t from the state after t-1 and the bonus term: q = max(m, u + k) keeps every exp <= 1."""
    q = torch.maximum(m, u + k)
    e1, e2 = torch.exp(m - q), torch.exp(u + k - q)
    return (e1 * num + e2 * v) / (e1 * den + e2)


def wkv_step(w: torch.Tensor, u: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, state: WKVState
             ) -> tuple[torch.Tensor, WKVState]:
    """One token of WKV (RWKV-4's recurrent form): wkv_t, then num <- e^{-w} num + e^{k_t} v_t,
    den <- e^{-w} den + e^{k_t}, both rescaled by the new max m_t = max(m_{t-1} - w, k_t)."""
    num, den, m = _check_wkv_state(state, k_t)
    y = _wkv_read(num, den, m, u, k_t, v_t)
    m_new = torch.maximum(m - w, k_t)
    e1, e2 = torch.exp(m - w - m_new), torch.exp(k_t - m_new)
    return y, WKVState(e1 * num + e2 * v_t, e1 * den + e2, m_new)


def wkv_sequential(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   state: WKVState | None = None) -> tuple[torch.Tensor, WKVState]:
    """WKV token by token (the reference): w > 0, u [D]; k, v [B, L, D]; returns wkv [B, L, D] and
    the state after the last token."""
    state = _check_wkv(w, u, k, v, state)
    ys = []
    for k_t, v_t in zip(k.unbind(1), v.unbind(1)):
        y, state = wkv_step(w, u, k_t, v_t, state)
        ys.append(y)
    return torch.stack(ys, 1), state


def running_max(k: torch.Tensor, w: torch.Tensor, m0: torch.Tensor) -> torch.Tensor:
    """m_t = max(m_{t-1} - w, k_t), m_{-1} = m0, along dim 1 by a max-plus Hillis-Steele scan
    (after shift s: m_t = max over the last 2s tokens of k_i - (t - i) w)."""
    m = torch.cat([torch.maximum(m0 - w, k[:, 0]).unsqueeze(1), k[:, 1:]], 1)
    shift = 1
    while shift < m.shape[1]:
        m = torch.cat([m[:, :shift], torch.maximum(m[:, shift:], m[:, :-shift] - shift * w)], 1)
        shift *= 2
    return m


def wkv_parallel(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 state: WKVState | None = None, method: str = "auto") -> tuple[torch.Tensor, WKVState]:
    """WKV for all tokens at once, equal to :func:`wkv_sequential`: the running max m_t by
    :func:`running_max` (outside autograd: the outputs do not depend on m, the exponentials cancel it), then (num, den) by one :func:`neurotoken.scan.linear_scan` (``method``) of
    h_t = e^{m_{t-1} - w - m_t} h_{t-1} + e^{k_t - m_t} (v_t, 1): gains and inputs are <= 1."""
    num0, den0, m0 = _check_wkv(w, u, k, v, state)
    _checks.choice("method", method, METHODS.names())
    with torch.no_grad():  # a stabiliser only: its gradient contributions cancel exactly
        m = running_max(k, w, m0)
    m_prev = torch.cat([m0.unsqueeze(1), m[:, :-1]], 1)
    e = torch.exp(k - m)
    h = linear_scan(torch.exp(m_prev - w - m).unsqueeze(-1), torch.stack([e * v, e], -1),
                    h0=torch.stack([num0, den0], -1), dim=1, method=method)
    h_prev = torch.cat([torch.stack([num0, den0], -1).unsqueeze(1), h[:, :-1]], 1)
    y = _wkv_read(h_prev[..., 0], h_prev[..., 1], m_prev, u, k, v)
    return y, WKVState(h[:, -1, :, 0], h[:, -1, :, 1], m[:, -1])


WKV_METHODS = ("recurrent", *METHODS.names())


def wkv(w, u, k, v, state=None, method: str = "auto") -> tuple[torch.Tensor, WKVState]:
    """:func:`wkv_sequential` for ``method="recurrent"``, else :func:`wkv_parallel` with that scan."""
    _checks.choice("method", method, WKV_METHODS)
    return wkv_sequential(w, u, k, v, state) if method == "recurrent" else wkv_parallel(w, u, k, v, state, method)


def token_shift(x: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """x_{t-1} for every t: the sequence moved one token later, ``last`` (or zeros) in front."""
    first = x.new_zeros(x[:, :1].shape) if last is None else last.unsqueeze(1)
    return torch.cat([first, x[:, :-1]], 1)


def _ramp(d_model: int, power: float) -> torch.Tensor:
    """(i / D)^power for channel i: RWKV-4's initial token-shift mixing ratios."""
    return (torch.arange(d_model, dtype=torch.float32) / d_model) ** power


spiking_neuron = memoryless  # the name before mixers.base


def _memoryless(neuron):
    """None, or the mixer's own copy of a memoryless NPE (applied to [B, L, D] at once, no state)."""
    neuron = resolve_neuron(neuron, None)
    if neuron is not None and not is_memoryless(neuron):
        raise TypeError(f"neuron must be None or a memoryless NPE (beta = 0, no subtractive reset: "
                        f"mixers.base.memoryless), got {neuron!r}")
    return neuron


def _fire(neuron, x: torch.Tensor) -> torch.Tensor:
    """A memoryless NPE on every element of x at once: one time step (so no value, NaN included,
    reaches another sequence of the batch through the reset)."""
    return neuron(x.unsqueeze(0)).squeeze(0)


def _check_layer(layer: int, layers: int) -> None:
    _checks.positive_int("layers", layers)
    if _checks.positive_int("layer", layer, low=0) >= layers:
        raise ValueError(f"layer must be < layers ({layers}), got {layer}")


# ---- modules --------------------------------------------------------------------------------

class RWKVTimeMix(Mixer):
    """RWKV-4 time-mix: with x'_t = mu x_t + (1 - mu) x_{t-1} (token shift, one mu per branch),
    k = W_k x'_t, v = W_v x'_t, r = W_r x'_t, output W_o (sigmoid(r) * wkv(k, v)) with decay
    w = exp(time_decay) and bonus u = time_first per channel. ``layer``/``layers`` set RWKV-4's
    depth-dependent initialisation; ``method`` as in :func:`wkv` ("recurrent" is the token loop).
    ``neuron`` (a memoryless NPE, :func:`~neurotoken.mixers.base.memoryless`; None: the conventional
    form): W_o reads its spikes, W_o spike(sigmoid(r) * wkv).
    State: :class:`TimeMixState` (last token, WKV state).
    """

    def __init__(self, d_model: int, layer: int = 0, layers: int = 1, method: str = "auto",
                 neuron=None):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        _check_layer(layer, layers)
        self.method = _checks.choice("method", method, WKV_METHODS)
        deep, shallow = layer / max(1, layers - 1), 1.0 - layer / layers  # 0 -> 1, 1 -> ~0
        channel = torch.arange(d_model, dtype=torch.float32) / max(1, d_model - 1)
        self.time_decay = nn.Parameter(-5 + 8 * channel ** (0.7 + 1.3 * deep))
        zigzag = 0.5 * (torch.arange(1, d_model + 1) % 3 - 1)
        self.time_first = nn.Parameter(math.log(0.3) + zigzag.float())
        self.mix_k = nn.Parameter(_ramp(d_model, shallow))
        self.mix_v = nn.Parameter(_ramp(d_model, shallow) + 0.3 * deep)
        self.mix_r = nn.Parameter(_ramp(d_model, 0.5 * shallow))
        neuron = _memoryless(neuron)
        self.key, self.value, self.receptance = (nn.Linear(d_model, d_model, bias=False) for _ in range(3))
        self.output = (nn.Linear if neuron is None else EventLinear)(d_model, d_model, bias=False)  # spikes in
        self.neuron = neuron

    def forward(self, x: torch.Tensor, state: TimeMixState | None = None, return_state: bool = False):
        self.check_input(x)
        if state is not None and not isinstance(state, TimeMixState):
            raise TypeError(f"state must be a TimeMixState, got {type(state).__name__}")
        last = None if state is None else check_state("state.shift", state.shift, (x.shape[0], self.d_model), like=x)
        prev = token_shift(x, last)
        k, v, r = (f(prev + mu * (x - prev)) for f, mu in
                   ((self.key, self.mix_k), (self.value, self.mix_v), (self.receptance, self.mix_r)))
        y, S = wkv(self.time_decay.exp(), self.time_first, k, v, None if state is None else state.wkv, self.method)
        y = torch.sigmoid(r) * y
        y = self.output(y if self.neuron is None else _fire(self.neuron, y))
        return (y, TimeMixState(x[:, -1], S)) if return_state else y

    def initial_state(self, batch: int) -> TimeMixState:
        """No token before the first (zeros) and an empty WKV history."""
        zeros = self._zeros(batch, self.d_model)
        return TimeMixState(zeros, WKVState(zeros, zeros.clone(), torch.full_like(zeros, INIT_MAX)))

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """Own counts of the recurrent form on x [B, L, D] (k, v, r, W_o are nn.Linear children):

        macs = 13 B L D (6 token-shift mixes, 3 WKV read-out, 3 num/den updates, 1 receptance gate)
        nonlinear_ops = 6 B L D (4 exp, 1 division, 1 sigmoid)
        state_updates = 3 B L D (num, den, max);  state_bytes = 4 B D * element size (+ last token).
        """
        x = inputs[0]
        B, L, D = x.shape
        return {"macs": 13 * B * L * D, "nonlinear_ops": 6 * B * L * D, "state_updates": 3 * B * L * D,
                "state_bytes": 4 * B * D * x.element_size()}


class RWKVChannelMix(Mixer):
    """RWKV-4 channel-mix: with the token shift as in :class:`RWKVTimeMix`,
    y = sigmoid(W_r x'_t) * W_v relu(W_k x''_t)^2, hidden size ``hidden_ratio`` * D; ``neuron``
    (a memoryless NPE; None: the conventional form): W_v reads the spikes of the hidden layer,
    spike(relu(W_k x''_t)^2).
    State: the last token [B, D]."""

    def __init__(self, d_model: int, hidden_ratio: int = 4, layer: int = 0, layers: int = 1,
                 neuron=None):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("hidden_ratio", hidden_ratio) * d_model
        _check_layer(layer, layers)
        self.mix_k = nn.Parameter(_ramp(d_model, 1.0 - layer / layers))
        self.mix_r = nn.Parameter(_ramp(d_model, 1.0 - layer / layers))
        neuron = _memoryless(neuron)
        self.key = nn.Linear(d_model, hidden, bias=False)
        self.value = (nn.Linear if neuron is None else EventLinear)(hidden, d_model, bias=False)  # spikes in
        self.receptance = nn.Linear(d_model, d_model, bias=False)
        self.neuron = neuron

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        self.check_input(x)
        if state is not None:
            check_state("state", state, (x.shape[0], self.d_model), like=x)
        prev = token_shift(x, state)
        k = torch.relu(self.key(prev + self.mix_k * (x - prev))).square()
        k = k if self.neuron is None else _fire(self.neuron, k)
        y = torch.sigmoid(self.receptance(prev + self.mix_r * (x - prev))) * self.value(k)
        return (y, x[:, -1]) if return_state else y

    def initial_state(self, batch: int) -> torch.Tensor:
        """No token before the first: zeros [B, D]."""
        return self._zeros(batch, self.d_model)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """Own counts on x [B, L, D], hidden H (W_k, W_v, W_r are nn.Linear children):
        macs = 4 B L D (2 token-shift mixes) + B L H (square) + B L D (gate);
        nonlinear_ops = B L H (ReLU) + B L D (sigmoid); state_bytes = B D * element size."""
        x = inputs[0]
        B, L, D = x.shape
        H = self.key.out_features
        return {"macs": 5 * B * L * D + B * L * H, "nonlinear_ops": B * L * (H + D),
                "state_bytes": B * D * x.element_size()}


class RWKVBlock(Residual):
    """RWKV-4 block (the conventional twin of :class:`SpikeGPTBlock`):
    x <- x + TimeMix(LN_1 x);  x <- x + ChannelMix(LN_2 x)."""

    def __init__(self, d_model: int, layer: int = 0, layers: int = 1, hidden_ratio: int = 4,
                 method: str = "auto"):
        super().__init__(d_model, [RWKVTimeMix(d_model, layer, layers, method),
                                   RWKVChannelMix(d_model, hidden_ratio, layer, layers)])


def _spikegpt_neurons(threshold: float = 0.1, hidden_threshold: float = 0.05, spike="ternary",
                      hidden_spike="multilevel", **options) -> tuple:
    """SpikeGPTBlock's two memoryless neurons from its former keyword arguments (learned thresholds)."""
    options = {"learn_threshold": True, **options}
    return memoryless(threshold, spike, **options), memoryless(hidden_threshold, hidden_spike, **options)


class SpikeGPTBlock(Residual):
    """SpikeGPT-style block: an RWKV block (the twin, :class:`RWKVBlock`) whose output projections
    read discrete spikes instead of real activations,

        x <- x + W_o spike_1(sigmoid(r) * wkv);   x <- x + sigmoid(W_r x') * W_v spike_2(relu(W_k x'')^2),

    spike_1 by ``neuron`` (default ternary at +-0.1: the gated WKV is signed), spike_2 by
    ``hidden_neuron`` (default 4-level at 0.05, 0.1, 0.15: the squared ReLU is not), both memoryless
    NPEs with learned thresholds, so W_o and W_v do event-driven accumulates and the residual stream
    stays real as in SpikeGPT.
    """

    def __init__(self, d_model: int, layer: int = 0, layers: int = 1, hidden_ratio: int = 4,
                 method: str = "auto", neuron=DEFAULT, hidden_neuron=DEFAULT, **legacy):
        if legacy:
            given = neuron if hidden_neuron is DEFAULT else hidden_neuron
            neuron, hidden_neuron = legacy_neuron("SpikeGPTBlock", given, legacy, _spikegpt_neurons)
        defaults = _spikegpt_neurons()
        neuron, hidden_neuron = (resolve_neuron(n, lambda: d) for n, d in zip((neuron, hidden_neuron), defaults))
        super().__init__(d_model, [RWKVTimeMix(d_model, layer, layers, method, neuron),
                                   RWKVChannelMix(d_model, hidden_ratio, layer, layers, hidden_neuron)])


__all__ = ["WKVState", "TimeMixState", "wkv_step", "wkv_sequential", "wkv_parallel", "wkv", "running_max",
           "token_shift", "spiking_neuron", "RWKVTimeMix", "RWKVChannelMix", "Residual", "RWKVBlock",
           "SpikingOutput", "SpikeGPTBlock"]
