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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .. import _checks


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
