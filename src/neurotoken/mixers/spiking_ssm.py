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
from ..kernels.event_linear import EventLinear
from ..neurons import LIF, NPEParams, NPEState, npe_multistep
from ..scan import METHODS, linear_scan
from ..spikes import DEFAULT_SURROGATE, Bernoulli
from ..surrogate import Surrogate
from .base import DEFAULT, Fire, Mixer, check_state, legacy_neuron, resolve_neuron
from .ssm import SelectiveSSM

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
    v, th = h.requires_grad_(), torch.as_tensor(theta, dtype=h.dtype, device=h.device).detach().expand_as(h).clone().requires_grad_()
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
    npe: NPEState      # state of the readout NPE along the tokens ([B, D] each)


def bernoulli_readout() -> LIF:
    """SpikingSSM's default readout NPE: reset-free Bernoulli spikes at threshold 1 (eq. 5), memoryless."""
    return LIF(0.0, 1.0, "none", "bernoulli")


def legacy_readout(spiking: bool = True, spike="bernoulli", threshold: float = 1.0,
                    surrogate: Surrogate | str = DEFAULT_SURROGATE, reset: str = "none", beta: float = 0.9):
    """The readout NPE of SpikingSSM's former keyword arguments (reset "none" ignored beta)."""
    if not spiking:
        return None
    _checks.choice("reset", reset, ("none", "subtract"))
    return LIF(0.0 if reset == "none" else beta, threshold, reset, spike, surrogate)


class TokenFire(Fire):
    """The readout NPE of a spiking SSM, driven by currents y [B, L, D] along the tokens: element-wise
    when memoryless, else eq. (9)-(10) token by token ("sequential") or by :func:`lif_fixed_point`."""

    def __init__(self, neuron, backend: str = "fixed_point", max_iter: int | None = None, method: str = "auto"):
        super().__init__(neuron, memoryless_only=False)
        self.backend, self.max_iter, self.method = backend, max_iter, method
        self.last_iterations: int | None = None  # scans of the last fixed-point solve

    def forward(self, y: torch.Tensor, state: NPEState | None = None, return_state: bool = False):
        if self.memoryless:
            s = super().forward(y)
            return (s, None) if return_state else s
        p = self.neuron.params()
        current = y.transpose(0, 1)
        if self.backend == "sequential":
            s, h = npe_multistep(current, p, state, "sequential")
        else:
            s, h, self.last_iterations = lif_fixed_point(current, p, state, self.max_iter, self.method)
        s = s.transpose(0, 1)
        return (s, NPEState(h[-1], s[:, -1])) if return_state else s


class SpikingSSM(SelectiveSSM):
    """P-SpikeSSM: the selective SSM whose readout y_t = q_t^T S_t + d x_t drives an NPE, s_t = neuron(y_t),
    then W_o s_t. Default ``neuron``: reset-free Bernoulli spikes at threshold 1 (eq. 5), element-wise;
    ``neuron=None`` is the conventional twin (W_o y_t, i.e. a SelectiveSSM).

    A neuron with a state (e.g. ``LIF(beta, reset="subtract")``) runs along the tokens,
    h_t = beta h_{t-1} + y_t - theta s_{t-1}, trained by ``reset_backend`` "fixed_point"
    (:func:`lif_fixed_point`, parallel; deterministic spikes and subtractive reset) or "sequential"
    (exact BPTT). State: S [B, D, N], or a :class:`SpikingSSMState` with such a neuron.
    """

    def __init__(self, d_model: int, d_state: int = 16, neuron=DEFAULT, reset_backend: str = "fixed_point",
                 method: str = "auto", max_iter: int | None = None, dt_range: tuple[float, float] = (1e-3, 1e-1),
                 **legacy):
        super().__init__(d_model, d_state, method, dt_range)
        self.reset_backend = _checks.choice("reset_backend", reset_backend, RESET_BACKENDS)
        max_iter = None if max_iter is None else _checks.positive_int("max_iter", max_iter)
        neuron = resolve_neuron(legacy_neuron("SpikingSSM", neuron, legacy, legacy_readout),
                                bernoulli_readout)
        self.fire = None if neuron is None else TokenFire(neuron, reset_backend, max_iter, self.method)
        if self.fire is not None:
            self.out = EventLinear.from_linear(self.out)  # W_o reads spikes, eq. (93)
        if self._stateful() and reset_backend == "fixed_point":
            p = neuron.params()
            if p.reset != "subtract" or p.feedback is not None or isinstance(p.spike, Bernoulli) \
                    or torch.as_tensor(p.decay).is_complex():
                raise ValueError("reset_backend='fixed_point' needs a real-decay neuron with reset='subtract' and a "
                                 "deterministic spike (binary, ternary, multilevel); use reset_backend='sequential'")

    @property
    def spiking(self) -> bool:
        return self.fire is not None

    @property
    def last_iterations(self) -> int | None:
        """Scans of the last fixed-point solve (None before one)."""
        return None if self.fire is None else self.fire.last_iterations

    def _stateful(self) -> bool:
        return self.fire is not None and not self.fire.memoryless

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        self.check_input(x)
        stateful = self._stateful()
        if stateful and state is not None and not isinstance(state, SpikingSSMState):
            raise TypeError(f"state must be a SpikingSSMState with a stateful neuron, got {type(state).__name__}")
        y, S = self.readout(x, state.ssm if stateful and state is not None else state)
        if self.fire is None:
            s = y
        elif not stateful:
            s = self.fire(y)
        else:
            npe = None if state is None else state.npe
            if npe is not None:
                for name, t in zip(("state.npe.h", "state.npe.s"), npe):
                    check_state(name, t, y[:, 0].shape, like=y)
            s, npe = self.fire(y, npe, return_state=True)
            S = SpikingSSMState(S, npe)
        out = self.out(s)
        return (out, S) if return_state else out

    def initial_state(self, batch: int):
        S = super().initial_state(batch)
        if not self._stateful():
            return S
        zeros = self._zeros(batch, self.d_model)
        return SpikingSSMState(S, NPEState(zeros, zeros.clone()))


def legacy_lru_readout(spiking: bool = True, spike="binary", threshold: float = 1.0,
                       surrogate: Surrogate | str = DEFAULT_SURROGATE):
    """SpikingLRU's readout NPE from its former keyword arguments."""
    return LIF(0.0, threshold, "none", spike, surrogate) if spiking else None


class SpikingLRU(Mixer):
    """P-SpikeSSM on a linear recurrent unit (LRU, Orvieto et al. 2023): constant complex diagonal gains,

        h_t = lambda * h_{t-1} + gamma * (B x_t),   y_t = Re(C h_t) + d * x_t       (16)-(17), a = lambda

    with h_t in C^N shared by the D channels, lambda = exp(-e^nu + i e^phi) (|lambda| uniform in
    ``r_range`` on the squared scale, phase uniform in [0, ``max_phase``]) and gamma = (1 - |lambda|^2)^1/2
    normalising the state. Spiking: s_t = neuron(y_t), a memoryless NPE (default binary at threshold
    1), output W_o s_t; ``neuron=None`` is the conventional twin, W_o GELU(y_t) (the smooth activation
    in place of the spike, as in the LRU block and :class:`~neurotoken.models.SpikingMLPBlock`).
    State: h [B, N] complex.
    ``method`` is the :func:`neurotoken.scan.linear_scan` method.
    """

    def __init__(self, d_model: int, d_state: int = 32, neuron=DEFAULT,
                 r_range: tuple[float, float] = (0.9, 0.999), max_phase: float = math.pi / 10,
                 method: str = "auto", **legacy):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.d_state = N = _checks.positive_int("d_state", d_state)
        lo, hi = _checks.increasing("r_range", r_range, min_len=2)
        if len(r_range) != 2 or lo <= 0 or hi >= 1:
            raise ValueError(f"r_range must be (low, high) with 0 < low < high < 1, got {tuple(r_range)}")
        _checks.number("max_phase", max_phase, low=0.0, high=math.pi, low_open=True)
        self.method = _checks.choice("method", method, METHODS.names())
        neuron = resolve_neuron(legacy_neuron("SpikingLRU", neuron, legacy, legacy_lru_readout),
                                lambda: LIF(0.0, 1.0, "none", "binary"))
        self.fire = None if neuron is None else Fire(neuron)
        nu = -0.5 * torch.log(torch.empty(N).uniform_(lo ** 2, hi ** 2))
        self.log_nu = nn.Parameter(nu.log())
        self.log_phase = nn.Parameter(torch.log(max_phase * torch.rand(N).clamp_min(1e-4)))
        self.log_gamma = nn.Parameter(0.5 * torch.log(-torch.expm1(-2 * nu)))
        self.B = nn.Parameter(torch.randn(N, d_model, 2) / math.sqrt(2 * d_model))  # complex as (re, im)
        self.C = nn.Parameter(torch.randn(d_model, N, 2) / math.sqrt(2 * N))
        self.skip = nn.Parameter(torch.randn(d_model))
        self.out = (nn.Linear if self.fire is None else EventLinear)(d_model, d_model)

    @property
    def spiking(self) -> bool:
        return self.fire is not None

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
        self.check_input(x)
        if state is not None:
            check_state("state", state, (x.shape[0], self.d_state), like=self.initial_state(0))
        y, h = self.readout(x, state)
        out = self.out(F.gelu(y) if self.fire is None else self.fire(y))
        return (out, h) if return_state else out

    def initial_state(self, batch: int) -> torch.Tensor:
        """h = 0 [B, N], complex."""
        return self._zeros(batch, self.d_state, dtype=torch.promote_types(self.B.dtype, torch.complex64))

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D], N complex states (the output
        projection is an nn.Linear child, counted on its own), in real multiply-accumulates:

        macs = B L (2 N D + 2 N + 4 N + 2 D N + D)   B x, gamma, lambda h, Re(C h), skip d x
        state_updates = B L N;  state_bytes = B N * 2 element sizes (complex h). The readout
        neuron is a child (:class:`~neurotoken.mixers.base.Fire`), counted on its own.
        """
        x = inputs[0]
        B, L, D = x.shape
        N = self.d_state
        return {"macs": B * L * (4 * N * D + 6 * N + D), "state_updates": B * L * N,
                "state_bytes": 2 * B * N * x.element_size()}


__all__ = ["RESET_BACKENDS", "lif_fixed_point", "SpikingSSMState", "bernoulli_readout", "TokenFire", "SpikingSSM",
           "SpikingLRU"]
