"""Spiking SSMs: the selective SSM of eq. (16)-(17) read out through NPEs with discrete outputs.

A reset-free LIF NPE is exactly eq. (16) with beta = a, input current k v and R = 0, so the
SSM state is a bank of reset-free membranes trained in parallel with the scan; spiking its
readout with probabilistic spikes (eq. 5) gives P-SpikeSSM. The reset-keeping variant feeds
the readout as input current to a LIF NPE with subtractive reset (eq. 9-10), trained either by
sequential BPTT or in parallel by fixed-point iteration of the spike train.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..neurons import NPEParams, NPEState, npe_multistep
from ..scan import METHODS, linear_scan
from ..spikes import DEFAULT_SURROGATE, Bernoulli, resolve_spike
from ..surrogate import Surrogate, resolve
from .ssm import Mixer, SelectiveSSM, check_state, check_tokens

RESET_BACKENDS = ("fixed_point", "sequential")


def lif_fixed_point(x: torch.Tensor, p: NPEParams, state: NPEState | None = None, max_iter: int | None = None,
                    method: str = "parallel") -> tuple[torch.Tensor, torch.Tensor, int]:
    """LIF with subtractive reset, eq. (9)-(10), over the leading time axis of x, in parallel.

    Given the spikes, h_t = beta h_{t-1} + x_t - theta s_{t-1} is linear: one scan. Starting from
    s = 0, iterate s <- spike(h(s)) until s stops changing; after i scans the first i steps are
    exact, so at most T + 1 scans reach the sequential loop's spikes (``max_iter`` may stop
    earlier, approximately). A last scan linearises the reset at the fixed point h*,
    h_t = (beta - theta s'_{t-1}) h_{t-1} + x_t - theta (s*_{t-1} - s'_{t-1} h*_{t-1}) with s' the
    surrogate slope at h* (and likewise in theta): the same values, and the gradients of
    sequential BPTT.
    Returns (spikes [T, ...], membranes h [T, ...], number of scans of the iteration).
    """
    if p.reset != "subtract" or p.feedback is not None or isinstance(p.spike, Bernoulli):
        raise ValueError("lif_fixed_point needs reset='subtract' with R = theta I and a deterministic spike kind, "
                         f"got reset={p.reset!r}, spike={type(p.spike).__name__}")
    limit = x.shape[0] + 1 if max_iter is None else _checks.positive_int("max_iter", max_iter)
    theta, beta = p.threshold, p.decay
    h0, s0 = (torch.zeros_like(x[0]), torch.zeros_like(x[0])) if state is None else state

    def previous(z, z0):
        return torch.cat([z0.unsqueeze(0), z[:-1]])

    with torch.no_grad():
        s = torch.zeros_like(x)
        for iterations in range(1, limit + 1):
            h = linear_scan(beta, x - theta * previous(s, s0), h0, dim=0, method=method)
            new = p.spike(h, theta, p.surrogate)
            if torch.equal(new, s):
                break
            s = new
    v, th = h.requires_grad_(), torch.as_tensor(theta).detach().expand_as(h).clone().requires_grad_()
    with torch.enable_grad():
        slopes = torch.autograd.grad(p.spike(v, th, p.surrogate).sum(), (v, th))
    slope_h, slope_theta = (previous(g, torch.zeros_like(s0)) for g in slopes)
    live = theta - theta.detach() if isinstance(theta, torch.Tensor) else 0.0  # zero, carries d/dtheta
    a = beta - theta * slope_h
    b = x - theta * (previous(new, s0) - slope_h * previous(h.detach(), h0) + slope_theta * live)
    h = linear_scan(a, b, h0, dim=0, method=method)
    z = p.spike(h, theta, p.surrogate)
    return z + (new - z).detach(), h, iterations


class SpikingSSMState(NamedTuple):
    ssm: torch.Tensor  # SSM state S [B, D, N]
    npe: NPEState      # state of the reset-keeping LIF ([B, D] each)


class SpikingSSM(SelectiveSSM):
    """P-SpikeSSM: the selective SSM whose readout y_t = q_t^T S_t + d x_t fires s_t = spike(y_t - theta),
    then W_o s_t. ``spike`` is "bernoulli" (eq. 5, default), "binary", "ternary", "multilevel" or a
    spike-kind object; ``spiking=False`` is the conventional twin (W_o y_t, i.e. a SelectiveSSM).

    ``reset="subtract"`` keeps the reset: y is the input current of a LIF NPE,
    h_t = beta h_{t-1} + y_t - theta s_{t-1}, trained by ``reset_backend`` "fixed_point"
    (:func:`lif_fixed_point`, parallel; the last count is in ``last_iterations``) or "sequential"
    (exact BPTT). State: S [B, D, N], or a :class:`SpikingSSMState` with the reset. The spikes of
    the last forward are kept in ``last_spikes`` for :meth:`accounting`.
    """

    def __init__(self, d_model: int, d_state: int = 16, spiking: bool = True, spike="bernoulli",
                 threshold: float = 1.0, surrogate: Surrogate | str = DEFAULT_SURROGATE, reset: str = "none",
                 beta: float = 0.9, reset_backend: str = "fixed_point", method: str = "auto",
                 max_iter: int | None = None, dt_range: tuple[float, float] = (1e-3, 1e-1)):
        super().__init__(d_model, d_state, method, dt_range)
        self.spiking = bool(spiking)
        self.spike = resolve_spike(spike)
        self.surrogate = resolve(surrogate)
        self.threshold = _checks.number("threshold", threshold, low=0.0, low_open=True)
        self.reset = _checks.choice("reset", reset, ("none", "subtract"))
        self.beta = _checks.number("beta", beta, low=0.0, high=1.0)
        self.reset_backend = _checks.choice("reset_backend", reset_backend, RESET_BACKENDS)
        self.max_iter = None if max_iter is None else _checks.positive_int("max_iter", max_iter)
        if reset == "subtract" and reset_backend == "fixed_point" and isinstance(self.spike, Bernoulli):
            raise ValueError("reset_backend='fixed_point' needs a deterministic spike (binary, ternary, "
                             "multilevel); use reset_backend='sequential' for bernoulli spikes")
        self.last_spikes: torch.Tensor | None = None
        self.last_iterations: int | None = None

    def _keeps_reset(self) -> bool:
        return self.spiking and self.reset == "subtract"

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        check_tokens(x, self.d_model)
        if self._keeps_reset() and state is not None and not isinstance(state, SpikingSSMState):
            raise ValueError(f"state must be a SpikingSSMState with reset='subtract', got {type(state).__name__}")
        y, S = self.readout(x, state.ssm if self._keeps_reset() and state is not None else state)
        if not self.spiking:
            s = y
        elif self.reset == "none":
            s = self.spike(y, self.threshold, self.surrogate)
        else:
            s, npe = self._reset_spikes(y, None if state is None else state.npe)
            S = SpikingSSMState(S, npe)
        self.last_spikes = s.detach() if self.spiking else None
        out = self.out(s)
        return (out, S) if return_state else out

    def _reset_spikes(self, y: torch.Tensor, npe: NPEState | None) -> tuple[torch.Tensor, NPEState]:
        """Spikes [B, L, D] of the reset-keeping LIF driven by y, and its last state."""
        if npe is not None:
            for name, t in zip(("state.npe.h", "state.npe.s"), npe):
                _checks.tensor(name, t)
                if t.shape != y[:, 0].shape:
                    raise ValueError(f"{name} must have shape {tuple(y[:, 0].shape)}, got {tuple(t.shape)}")
        p = NPEParams(self.beta, self.threshold, "subtract", self.spike, self.surrogate)
        current = y.transpose(0, 1)
        if self.reset_backend == "sequential":
            s, h = npe_multistep(current, p, npe, "sequential")
        else:
            s, h, self.last_iterations = lif_fixed_point(current, p, npe, self.max_iter, self.method)
        return s.transpose(0, 1), NPEState(h[-1], s[-1])

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D]: the SSM readout as in
        :meth:`SelectiveSSM.accounting`; when spiking, spikes = nonzero entries n of the spike train
        (a multi-level spike is one event). The output projection is an nn.Linear child: the counter
        prices it (ACs on these spikes, MACs for the twin). The reset-keeping LIF adds B L D macs
        (beta h), n acs (theta s), B L D state updates and B D elements of state_bytes.
        """
        x = inputs[0]
        counts = self._ssm_counts(x)
        B, L, D = x.shape
        if not self.spiking:
            return counts
        n = int(torch.count_nonzero(self.last_spikes))
        counts.update(spikes=n, acs=0)
        if self.reset == "subtract":
            counts["macs"] += B * L * D
            counts["acs"] += n
            counts["state_updates"] += B * L * D
            counts["state_bytes"] += B * D * x.element_size()
        return counts


class SpikingLRU(Mixer):
    """P-SpikeSSM on a linear recurrent unit (LRU, Orvieto et al. 2023): constant complex diagonal gains,

        h_t = lambda * h_{t-1} + gamma * (B x_t),   y_t = Re(C h_t) + d * x_t       (16)-(17), a = lambda

    with h_t in C^N shared by the D channels, lambda = exp(-e^nu + i e^phi) (|lambda| uniform in
    ``r_range`` on the squared scale, phase uniform in [0, ``max_phase``]) and gamma = (1 - |lambda|^2)^1/2
    normalising the state. Spiking: s_t = spike(y_t - theta) (``spike`` as in :class:`SpikingSSM`),
    output W_o s_t; ``spiking=False`` is the conventional twin, W_o GELU(y_t) (the smooth activation
    in place of the spike, as in the LRU block and :class:`~neurotoken.models.SpikingMLPBlock`). State: h [B, N] complex.
    ``method`` is the :func:`neurotoken.scan.linear_scan` method. Spikes of the last forward are
    kept in ``last_spikes``.
    """

    def __init__(self, d_model: int, d_state: int = 32, spiking: bool = True, spike="binary",
                 threshold: float = 1.0, surrogate: Surrogate | str = DEFAULT_SURROGATE,
                 r_range: tuple[float, float] = (0.9, 0.999), max_phase: float = math.pi / 10,
                 method: str = "auto"):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.d_state = N = _checks.positive_int("d_state", d_state)
        lo, hi = _checks.increasing("r_range", r_range, min_len=2)
        if len(r_range) != 2 or lo <= 0 or hi >= 1:
            raise ValueError(f"r_range must be (low, high) with 0 < low < high < 1, got {tuple(r_range)}")
        _checks.number("max_phase", max_phase, low=0.0, high=math.pi, low_open=True)
        self.method = _checks.choice("method", method, METHODS.names())
        self.spiking = bool(spiking)
        self.spike, self.surrogate = resolve_spike(spike), resolve(surrogate)
        self.threshold = _checks.number("threshold", threshold, low=0.0, low_open=True)
        nu = -0.5 * torch.log(torch.empty(N).uniform_(lo ** 2, hi ** 2))
        self.log_nu = nn.Parameter(nu.log())
        self.log_phase = nn.Parameter(torch.log(max_phase * torch.rand(N).clamp_min(1e-4)))
        self.log_gamma = nn.Parameter(0.5 * torch.log(-torch.expm1(-2 * nu)))
        self.B = nn.Parameter(torch.randn(N, d_model, 2) / math.sqrt(2 * d_model))  # complex as (re, im)
        self.C = nn.Parameter(torch.randn(d_model, N, 2) / math.sqrt(2 * N))
        self.skip = nn.Parameter(torch.randn(d_model))
        self.out = nn.Linear(d_model, d_model)
        self.last_spikes: torch.Tensor | None = None

    def decay(self) -> torch.Tensor:
        """lambda [N] = exp(-e^nu + i e^phi)."""
        return torch.exp(torch.complex(-self.log_nu.exp(), self.log_phase.exp()))

    def readout(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """y = Re(C h) + d x [B, L, D] before the spikes, and the last state h [B, N]."""
        B, C = torch.view_as_complex(self.B), torch.view_as_complex(self.C)
        u = (x.to(B.dtype) @ B.T) * self.log_gamma.exp()
        h = linear_scan(self.decay(), u, state, dim=1, method=self.method)
        return (h @ C.T).real + self.skip * x, h[:, -1]

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        check_tokens(x, self.d_model)
        if state is not None:
            check_state("state", state, (x.shape[0], self.d_state))
            if not state.is_complex():
                raise TypeError(f"state must be a complex tensor, got {state.dtype}")
        y, h = self.readout(x, state)
        s = self.spike(y, self.threshold, self.surrogate) if self.spiking else F.gelu(y)
        self.last_spikes = s.detach() if self.spiking else None
        out = self.out(s)
        return (out, h) if return_state else out

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D], N complex states (the output
        projection is an nn.Linear child, counted on its own), in real multiply-accumulates:

        macs = B L (2 N D + 2 N + 4 N + 2 D N + D)   B x, gamma, lambda h, Re(C h), skip d x
        state_updates = B L N;  state_bytes = B N * 2 element sizes (complex h);
        spiking: neuron_updates = the spike slots B L D, spikes = their nonzero entries (a
        multi-level spike is one event).
        """
        x = inputs[0]
        B, L, D = x.shape
        N = self.d_state
        counts = {"macs": B * L * (4 * N * D + 6 * N + D), "state_updates": B * L * N,
                  "state_bytes": 2 * B * N * x.element_size()}
        if self.spiking:
            counts.update(spikes=int(torch.count_nonzero(self.last_spikes)), neuron_updates=self.last_spikes.numel())
        return counts
