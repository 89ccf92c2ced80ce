"""Neuromorphic processing elements (NPEs), eq. (8)-(10), over a leading time axis.

One functional core serves every NPE: the general-W form of eq. (9)

    h_t = a * h_{t-1} + x_t - R s_{t-1},    s_t = spike(Re h_t, theta)

with ``x_t`` the synaptic current (W x_t computed by the layer in front), a real decay
``a = beta`` (LIF) or a complex one ``a = r e^{i omega}`` (resonate-and-fire: a rotation-and-
scaling of two state variables), and the reset term ``R s_{t-1}``:

* ``reset="subtract"``: R = theta I (eq. 10), or a user feedback matrix R;
  for ternary spikes s = -1 adds theta back, for multi-level spikes s = k removes k theta,
  so the reset always removes exactly the charge the spike reported;
* ``reset="zero"``: any non-zero spike (+1, -1 or k) clears the state: h_t = a h_{t-1} [s_{t-1} = 0] + x_t;
* ``reset="none"``: R = 0. The recurrence is then linear and the ``scan`` backend computes it
  exactly with :func:`neurotoken.scan.linear_scan`; it refuses the other resets.

The ``fused`` backend runs real-decay LIFs with deterministic spikes in one numba kernel per pass
(:mod:`neurotoken.kernels.lif`), the ``triton`` backend the same in Triton (CUDA, or the CPU under
``TRITON_INTERPRET=1``); ``auto`` takes Triton on CUDA and the numba kernel on the CPU whenever they apply.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import _checks, _spec
from . import surrogate as _surrogate
from ._registry import Registry
from .kernels import lif as fused_lif
from .scan import linear_scan
from .spikes import DEFAULT_SURROGATE, Binary, resolve_spike, spike_config
from .surrogate import Surrogate, resolve

RESETS = ("subtract", "zero", "none")
BACKENDS = ("auto", "sequential", "scan", "fused", "triton")
STATE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
NEURONS: Registry[type[NPE]] = Registry("neuron")


class NPEState(NamedTuple):
    h: torch.Tensor  # membrane / state after the step
    s: torch.Tensor  # spikes emitted at the step


@dataclass(frozen=True)
class NPEParams:
    """Parameters of eq. (9): decay a (real or complex), threshold theta, reset, spike kind, surrogate."""

    decay: float | complex | torch.Tensor = 0.9
    threshold: float | torch.Tensor = 1.0
    reset: str = "subtract"
    spike: object = Binary()
    surrogate: Surrogate = DEFAULT_SURROGATE
    feedback: torch.Tensor | None = None  # R as a [D, D] matrix (reset="subtract" only)


def _reset_term(s_prev: torch.Tensor, p: NPEParams):
    """R s_{t-1} for the subtractive reset: theta s or R s with a feedback matrix."""
    if p.feedback is not None:
        return s_prev @ p.feedback.transpose(-1, -2)
    return p.threshold * s_prev


def npe_step(h: torch.Tensor, x: torch.Tensor, s_prev: torch.Tensor, p: NPEParams) -> NPEState:
    """Eq. (9)-(10): h_t = a h_{t-1} + x_t - R s_{t-1};  s_t = spike(Re h_t, theta)."""
    if p.reset == "zero":
        h = p.decay * h * (s_prev == 0) + x
    elif p.reset == "subtract":
        h = p.decay * h + x - _reset_term(s_prev, p)
    else:
        h = p.decay * h + x
    v = h.real if h.is_complex() else h
    return NPEState(h, p.spike(v, p.threshold, p.surrogate))


def npe_multistep(x: torch.Tensor, p: NPEParams, state: NPEState | None = None,
                  backend: str = "sequential", all_states: bool = True,
                  state_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Run eq. (9) over the leading time axis of x; returns (spikes [T, ...], states h [T, ...]).

    With all_states=False the fused and triton backends return only the final state, as [1, ...];
    state_dtype is the dtype in which the fused and triton backends save states for backward.
    """
    if backend == "fused":  # a None state starts at zero inside the kernel's wrapper
        return fused_lif.lif_fused(x, p, *(state or (None, None)), all_states, state_dtype)
    complex_decay = torch.as_tensor(p.decay).is_complex()
    dtype = torch.promote_types(x.dtype, torch.complex64) if complex_decay else x.dtype
    if state is None:
        zeros = torch.zeros(x.shape[1:], dtype=dtype, device=x.device)
        state = NPEState(zeros, torch.zeros_like(x[0]))
    if backend == "scan":
        h = linear_scan(p.decay, x.to(dtype), h0=state.h, dim=0)
        v = h.real if h.is_complex() else h
        return p.spike(v, p.threshold, p.surrogate), h
    if backend == "triton":
        return fused_lif.lif_triton(x, p, state.h, state.s, all_states, state_dtype)
    hs, ss = [], []
    h, s = state
    for x_t in x.unbind(0):
        h, s = npe_step(h, x_t, s, p)
        hs.append(h)
        ss.append(s)
    return torch.stack(ss), torch.stack(hs)


def _as_param(name: str, value, learn: bool, low: float, high: float | None, low_open: bool):
    """A float (fixed scalar), buffer (fixed per-channel) or Parameter (learnable)."""
    if isinstance(value, (numbers.Real, bool)):
        value = _checks.number(name, value, low=low, high=high, low_open=low_open)
        return nn.Parameter(torch.tensor(value)) if learn else value
    try:
        t = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a real number or a 1-D tensor of them, got {type(value).__name__}") from None
    _checks.tensor(name, t, max_dim=1, finite=True)
    if bool((t < low).any() or (low_open and (t == low).any()) or (high is not None and (t > high).any())):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must lie in {bound}, got {t.tolist()}")
    return nn.Parameter(t.clone()) if learn else t.clone()


def _autocast(device_type: str) -> bool:
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def _json(value):
    """A parameter as JSON: a number, or a (nested) list for a per-channel tensor."""
    return value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else value


class NPE(nn.Module):
    """Public base of every neuromorphic processing element (the counter observes its subclasses):
    holds threshold, reset, spike kind, surrogate, backend; runs the core. Subclasses define ``params``."""

    def __init__(self, threshold, reset, spike, surrogate, backend, learn_threshold, state_dtype=torch.float32):
        super().__init__()
        if isinstance(state_dtype, str) and state_dtype in STATE_DTYPES:
            state_dtype = STATE_DTYPES[state_dtype]
        if state_dtype not in STATE_DTYPES.values():
            raise ValueError(f"state_dtype must be one of {sorted(STATE_DTYPES)} (or the torch dtype), "
                             f"got {state_dtype!r}")
        self.state_dtype = state_dtype
        self.reset = _checks.choice("reset", reset, RESETS)
        self.backend = _checks.choice("backend", backend, BACKENDS)
        if backend == "scan" and reset != "none":
            raise ValueError(f"backend='scan' is exact only for reset='none' (a linear recurrence); "
                             f"got reset={reset!r}: use backend='sequential'")
        self.spike = resolve_spike(spike)
        self.surrogate = resolve(surrogate)
        learn_threshold = _checks.flag("learn_threshold", learn_threshold)
        self._set("threshold", _as_param("threshold", threshold, learn_threshold, 0.0, None, True))

    def _set(self, name, value):
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            self.register_buffer(name, value)
        else:
            setattr(self, name, value)

    def _threshold(self):
        th = self.threshold
        return th.clamp_min(1e-6) if isinstance(th, nn.Parameter) else th

    def params(self) -> NPEParams:
        raise NotImplementedError

    def _options(self) -> dict:
        """The subclass's own constructor arguments, as JSON."""
        raise NotImplementedError

    def config(self) -> dict:
        """A JSON-able dict of this NPE (kind, current parameter values, spike and surrogate specs)
        that :func:`build_neuron` turns back into an equal NPE; a Bernoulli generator is not saved."""
        return {"kind": _spec.registered_name(NEURONS, self), "threshold": _json(self.threshold),
                "learn_threshold": isinstance(self.threshold, nn.Parameter), "reset": self.reset,
                "spike": spike_config(self.spike), "surrogate": _surrogate.config(self.surrogate),
                "backend": self.backend, **self._options()}

    def _backend(self, x: torch.Tensor, p: NPEParams) -> str:
        if self.backend in ("auto", "triton") and (self.backend == "triton" or x.device.type == "cuda"):
            why = fused_lif.triton_unsupported(x, p)
            if why is None:
                return "triton"
        elif self.backend in ("auto", "fused"):
            why = fused_lif.unsupported(x, p)
            if why is None:
                return "fused"
        else:
            return self.backend
        linear = p.reset == "none" and p.feedback is None  # then the scan computes it without a loop
        if self.backend != "auto":
            warnings.warn(f"backend={self.backend!r} cannot run: {why}; using the "
                          f"{'scan' if linear else 'sequential'} reference", RuntimeWarning, stacklevel=3)
        return "scan" if linear else "sequential"

    def forward(self, x: torch.Tensor, state: NPEState | None = None, return_state: bool = False):
        """Spikes [T, ...] for input currents x [T, ...] (time leading); optionally the final state.
        Values are not checked: a NaN membrane spikes NaN (``neurotoken.debug`` names the module)."""
        _checks.real("x", _checks.tensor("x", x, min_dim=1))
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one time step (got T = 0)")
        self._check_shapes(x, state)
        if x.dtype in (torch.float16, torch.bfloat16) and _autocast(x.device.type):
            x = x.float()  # under autocast the membrane still integrates in float32 (a 16-bit state drifts)
        p = self.params()
        s, h = npe_multistep(x, p, state, self._backend(x, p), all_states=False, state_dtype=self.state_dtype)
        return (s, NPEState(h[-1], s[-1])) if return_state else s

    def _check_shapes(self, x: torch.Tensor, state) -> None:
        """Per-channel parameters must match x's last dim, a state x's shape without time."""
        for name, t in (*self.named_parameters(recurse=False), *self.named_buffers(recurse=False)):
            if t.dim() == 1 and t.shape[0] not in (1, x.shape[-1]):
                raise ValueError(f"{name} has {t.shape[0]} channels but x has {x.shape[-1]} (its last dim)")
        if state is None:
            return
        if not (isinstance(state, tuple) and len(state) == 2 and all(isinstance(t, torch.Tensor) for t in state)):
            raise TypeError(f"state must be an NPEState (h, s) of tensors, got {type(state).__name__}")
        for name, t in zip(("state.h", "state.s"), state):
            if t.shape != x.shape[1:]:
                raise ValueError(f"{name} must have shape {tuple(x.shape[1:])} (x without time), got {tuple(t.shape)}")

    def step(self, x_t: torch.Tensor, state: NPEState | None = None) -> tuple[torch.Tensor, NPEState]:
        """One time step for streaming: (s_t, state)."""
        s, state = self.forward(x_t.unsqueeze(0), state, return_state=True)
        return s[0], state


@NEURONS.register("LIF")
class LIF(NPE):
    """Leaky integrate-and-fire NPE, eq. (9)-(10): h_t = beta h_{t-1} + x_t - R s_{t-1}.

    beta in [0, 1] and threshold > 0 are floats or per-channel 1-D tensors, fixed or learnable
    (``learn_beta``/``learn_threshold``). ``spike`` is "binary" | "bernoulli" | "ternary" |
    "multilevel" or a spike-kind object; ``feedback`` an optional [D, D] matrix R. ``state_dtype``
    (float32 or bfloat16) is the dtype in which the fused and triton backends keep states for backward.
    """

    def __init__(self, beta=0.9, threshold=1.0, reset: str = "subtract", spike="binary",
                 surrogate: Surrogate | str = DEFAULT_SURROGATE, backend: str = "auto",
                 learn_beta: bool = False, learn_threshold: bool = False,
                 feedback: torch.Tensor | None = None, state_dtype: torch.dtype | str = torch.float32):
        super().__init__(threshold, reset, spike, surrogate, backend, learn_threshold, state_dtype)
        why = fused_lif.no_formula(self.surrogate)
        if why is not None and backend == "auto":
            warnings.warn(f"{why}: the fused LIF kernel cannot run it, so this LIF takes the slower "
                          "reference path", RuntimeWarning, stacklevel=2)
        self._set("beta", _as_param("beta", beta, _checks.flag("learn_beta", learn_beta), 0.0, 1.0, False))
        if isinstance(feedback, (list, tuple)):
            feedback = torch.tensor(feedback, dtype=torch.float32)
        if feedback is not None:
            if reset != "subtract":
                raise ValueError(f"feedback (a matrix R) needs reset='subtract', got reset={reset!r}")
            _checks.tensor("feedback", feedback, min_dim=2, max_dim=2)
            if feedback.shape[0] != feedback.shape[1]:
                raise ValueError(f"feedback must be square [D, D], got shape {tuple(feedback.shape)}")
        self._set("feedback", feedback)

    def params(self) -> NPEParams:
        beta = self.beta.clamp(0.0, 1.0) if isinstance(self.beta, nn.Parameter) else self.beta
        return NPEParams(beta, self._threshold(), self.reset, self.spike, self.surrogate, self.feedback)

    def _options(self) -> dict:
        return {"beta": _json(self.beta), "learn_beta": isinstance(self.beta, nn.Parameter),
                "feedback": _json(self.feedback), "state_dtype": str(self.state_dtype).removeprefix("torch.")}


@NEURONS.register("ResonateFire")
class ResonateFire(NPE):
    """Resonate-and-fire NPE: a complex state z_t = lambda z_{t-1} + x_t - R s_{t-1}, s_t = spike(Re z_t).

    lambda = exp(dt (-1/tau + i 2 pi f)): a damped rotation of two state variables (Re z, Im z)
    that responds most to inputs oscillating near ``freq_hz``. ``freq_hz`` and ``tau_ms`` are
    floats or per-channel 1-D tensors (a resonator bank), learnable with ``learn_dynamics``.
    """

    def __init__(self, freq_hz=10.0, tau_ms=100.0, dt_ms: float = 1.0, threshold=1.0,
                 reset: str = "zero", spike="binary", surrogate: Surrogate | str = DEFAULT_SURROGATE,
                 backend: str = "auto", learn_dynamics: bool = False, learn_threshold: bool = False):
        super().__init__(threshold, reset, spike, surrogate, backend, learn_threshold)
        self.dt_ms = _checks.number("dt_ms", dt_ms, low=0.0, low_open=True)
        learn_dynamics = _checks.flag("learn_dynamics", learn_dynamics)
        # above Nyquist (500 / dt_ms Hz) the rotation would alias to a lower, negative frequency
        self._set("freq_hz", _as_param("freq_hz", freq_hz, learn_dynamics, 0.0, 500.0 / self.dt_ms, False))
        self._set("tau_ms", _as_param("tau_ms", tau_ms, learn_dynamics, 0.0, None, True))

    def decay(self):
        """lambda = exp(-dt/tau + i 2 pi f dt), as a complex tensor."""
        tau = torch.as_tensor(self.tau_ms)
        freq = torch.as_tensor(self.freq_hz)
        return torch.exp(torch.complex(-self.dt_ms / tau, 2 * math.pi * freq * self.dt_ms / 1000.0))

    def params(self) -> NPEParams:
        return NPEParams(self.decay(), self._threshold(), self.reset, self.spike, self.surrogate)

    def _options(self) -> dict:
        return {"freq_hz": _json(self.freq_hz), "tau_ms": _json(self.tau_ms), "dt_ms": self.dt_ms,
                "learn_dynamics": isinstance(self.freq_hz, nn.Parameter)}


def build_neuron(spec: dict | NPE) -> NPE:
    """A new NPE: a deep copy of an NPE instance, or the NPE an :meth:`NPE.config` dict describes."""
    if isinstance(spec, NPE):
        return copy.deepcopy(spec)
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be an NPE or its config dict, got {type(spec).__name__}")
    if "kind" not in spec:
        raise ValueError(f"spec needs a 'kind' ({', '.join(NEURONS.names())}), got keys {sorted(spec)}")
    cls = NEURONS.get(spec["kind"])
    options = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(options) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"spec: {spec['kind']} takes no option {', '.join(map(repr, unknown))}")
    return cls(**options)
