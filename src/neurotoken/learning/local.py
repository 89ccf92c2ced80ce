"""Local learning rules (no backpropagation): pair-based STDP and a three-factor rule.

STDP with exponential traces (one step of length 1, trace decays lambda = exp(-1/tau)):
    x_t = lambda_pre x_{t-1} + s_pre_t,   y_t = lambda_post y_{t-1} + s_post_t
    additive:       dW = eta_plus s_post (x - x_tar)^T - eta_minus y s_pre^T, then clip to [w_min, w_max]
    multiplicative: dW = eta_plus (w_max - W) * s_post (x - x_tar)^T - eta_minus (W - w_min) * y s_pre^T
x_tar = 0 is plain pair-based STDP; x_tar > 0 depresses inputs that were silent before a post
spike, so a winner-take-all neuron's weights converge to the inputs it sees (Diehl & Cook 2015).
Potentiation uses the pre trace including the current step, so a pre and post spike in the same
step potentiate; depression uses the post trace from before the step.

Three-factor rule for probabilistic neurons (eq. 5, p = sigma(W x - theta)):
    e_t = (s_t - p_t) xbar_t^T  (eligibility: post 'surprise' x presynaptic trace)
    dW  = eta * m * e           (m: global modulator, e.g. reward - baseline, or a per-neuron error)
which is the REINFORCE gradient of the log-likelihood of the emitted spikes.

Winner-take-all LIF layer (Diehl & Cook 2015): an LIF (eq. 9, reset to zero) in which only the
neuron with the highest h - theta_adapt may spike per step, and its spike resets the whole layer
(hard lateral inhibition); theta_adapt grows with each neuron's spikes (homeostasis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .. import _checks
from ..neurons import LIF, NPEState, npe_step


@dataclass(frozen=True)
class STDPParams:
    eta_plus: float = 1e-2
    eta_minus: float = 1e-2
    tau_pre: float = 20.0  # in steps
    tau_post: float = 20.0  # in steps
    w_min: float = 0.0
    w_max: float = 1.0
    multiplicative: bool = False
    x_target: float = 0.0  # pre-trace offset: potentiation uses (x - x_target) (Diehl & Cook 2015)

    def __post_init__(self):
        for name in ("eta_plus", "eta_minus"):
            _checks.number(name, getattr(self, name), low=0.0)
        for name in ("tau_pre", "tau_post"):
            _checks.number(name, getattr(self, name), low=0.0, low_open=True)
        if _checks.number("w_max", self.w_max) <= _checks.number("w_min", self.w_min):
            raise ValueError(f"w_max must exceed w_min, got w_min={self.w_min}, w_max={self.w_max}")


class Traces(NamedTuple):
    pre: torch.Tensor  # [B, N_in]
    post: torch.Tensor  # [B, N_out]


def stdp_step(w: torch.Tensor, s_pre: torch.Tensor, s_post: torch.Tensor, traces: Traces | None,
              p: STDPParams) -> tuple[torch.Tensor, Traces]:
    """One STDP step for weights w [N_out, N_in] and spikes [B, N_in], [B, N_out] (summed over B)."""
    if traces is None:
        traces = Traces(torch.zeros_like(s_pre), torch.zeros_like(s_post))
    pre = math.exp(-1 / p.tau_pre) * traces.pre + s_pre
    potentiation = s_post.T @ (pre - p.x_target)
    depression = traces.post.T @ s_pre * math.exp(-1 / p.tau_post)
    if p.multiplicative:
        dw = p.eta_plus * (p.w_max - w) * potentiation - p.eta_minus * (w - p.w_min) * depression
    else:
        dw = p.eta_plus * potentiation - p.eta_minus * depression
    post = math.exp(-1 / p.tau_post) * traces.post + s_post
    return (w + dw).clamp(p.w_min, p.w_max), Traces(pre, post)


def three_factor_update(w: torch.Tensor, s_post: torch.Tensor, p_post: torch.Tensor,
                        pre_trace: torch.Tensor, modulator: torch.Tensor | float, eta: float) -> torch.Tensor:
    """dW = eta * sum_b m_b (s_b - p_b) xbar_b^T: eligibility times a global (or per-neuron) modulator.

    s_post, p_post: [B, N_out]; pre_trace: [B, N_in]; modulator: scalar, [B] or [B, N_out].
    """
    m = torch.as_tensor(modulator, dtype=w.dtype)
    if m.dim() == 1:
        m = m[:, None]
    return w + eta * ((m * (s_post - p_post)).T @ pre_trace)


class WTALIF(nn.Module):
    """A layer of LIFs under hard lateral inhibition fed by input spikes through ``weight``
    [neurons, N_in], with an adaptive threshold offset ``theta_adapt`` [neurons]; both are
    buffers that the local rule updates."""

    def __init__(self, weight: torch.Tensor, beta: float = 0.8, threshold: float = 1.0):
        super().__init__()
        _checks.tensor("weight", weight, min_dim=2, max_dim=2)
        self.lif = LIF(beta=beta, threshold=threshold, reset="zero")
        self.register_buffer("weight", weight.clone())
        self.register_buffer("theta_adapt", weight.new_zeros(len(weight)))

    def step(self, s_in: torch.Tensor, state: NPEState | None = None) -> tuple[torch.Tensor, NPEState]:
        """Input spikes [B, N_in] -> (spikes [B, neurons], state); at most one spike per row."""
        p = self.lif.params()
        current = s_in @ self.weight.T
        if state is None:
            state = NPEState(torch.zeros_like(current), current.new_zeros(len(current), 1))
        h = npe_step(state.h, current, state.s, p).h  # state.s [B, 1]: a spike resets the whole layer
        v = h - self.theta_adapt
        winner = v.argmax(1, keepdim=True)
        fired = p.spike(v.gather(1, winner), p.threshold, p.surrogate)
        return torch.zeros_like(h).scatter(1, winner, fired), NPEState(h, fired)


@torch.no_grad()
def present_stdp(layer: WTALIF, x: torch.Tensor, T: int, input_rate: float, generator: torch.Generator,
                 stdp: STDPParams | None = None, theta_plus: float = 0.0) -> torch.Tensor:
    """Present x [B, N_in] (values in [0, 1]) as Bernoulli spikes of probability ``x * input_rate``
    for T steps to ``layer``; returns the spike counts [B, neurons].

    With ``stdp`` the layer's weights follow :func:`stdp_step` and each spike raises its neuron's
    ``theta_adapt`` by ``theta_plus`` (both in place).
    """
    counts, state, traces = x.new_zeros(len(x), len(layer.weight)), None, None
    for _ in range(T):
        s_pre = (torch.rand(x.shape, generator=generator, device=x.device) < x * input_rate).to(x.dtype)
        s_post, state = layer.step(s_pre, state)
        counts += s_post
        if stdp is not None:
            w, traces = stdp_step(layer.weight, s_pre, s_post, traces, stdp)
            layer.weight.copy_(w)
            layer.theta_adapt += theta_plus * s_post.sum(0)
    return counts
