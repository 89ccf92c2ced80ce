"""The full Mamba block (eq. (81)) around the selective SSM of eq. (33), and its spiking form (SpikingMamba).

    [u, z] = W_in x,   c = SiLU(causal depthwise conv_k(u)),   y = selective SSM(c) (eq. 33)
    output W_out (y * SiLU(z))

The spiking form feeds both projections spikes of an NPE, s = spike(x - theta) element-wise for a
memoryless one (by default eq. 6 ternary spikes: both inputs are signed) or eq. (9)-(10) along the
tokens for a LIF, so
W_in and W_out do accumulates only; the conv, the scan and the gate stay real-valued. The conv keeps
its last k - 1 inputs as state (and a LIF its membrane), so ``step`` continues ``forward``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..kernels.event_linear import EventLinear
from ..neurons import NPE, NPEState
from .base import DEFAULT, check_state, memoryless, resolve_neuron
from .spiking_ssm import TokenFire
from .ssm import SelectiveSSM


class MambaState(NamedTuple):
    conv: torch.Tensor                 # the last k - 1 inputs of the conv [B, k - 1, E]
    ssm: torch.Tensor                  # selective SSM state S [B, E, N]
    fire_in: NPEState | None = None    # a stateful neuron's state before W_in ([B, D] each)
    fire_out: NPEState | None = None   # and before W_out ([B, E] each)


def multilevel_neuron() -> NPE:
    """Memoryless multi-level spikes 0..3 at theta = 0.5 (eq. 7): the negative inputs stay silent."""
    return memoryless(0.5, "multilevel")


def ternary_neuron() -> NPE:
    """SpikingMamba's default NPE: memoryless ternary spikes -1/0/+1 at a learned theta starting at 0.3
    (eq. 6), so the signed inputs of W_in (the normalised tokens) and W_out (the gated SSM output)
    keep their sign."""
    return memoryless(0.3, "ternary", learn_threshold=True)


class MambaBlock(SelectiveSSM):
    """Mamba block on x [B, L, D] with inner width E = ``expand`` D: W_in x -> [u, z] (2E), causal
    depthwise conv of ``d_conv`` taps on u, SiLU, the selective SSM of eq. (33) on E channels
    (:class:`SelectiveSSM`'s readout), gate y * SiLU(z), W_out -> D.

    ``neuron`` (an NPE or its config dict; None for this conventional form) spikes the inputs of
    W_in and W_out (:class:`SpikingMamba` defaults it to :func:`ternary_neuron`); a stateful one (a LIF)
    runs along the tokens with exact BPTT. State: :class:`MambaState` (conv window, SSM state, and
    the neurons' states with a stateful neuron).
    """

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, neuron=None,
                 method: str = "auto", dt_range: tuple[float, float] = (1e-3, 1e-1)):
        d_model = _checks.positive_int("d_model", d_model)
        inner = _checks.positive_int("expand", expand) * d_model
        super().__init__(inner, d_state, method, dt_range)
        self.d_model, self.d_inner = d_model, inner
        self.d_conv = _checks.positive_int("d_conv", d_conv)
        neuron = resolve_neuron(neuron, ternary_neuron)
        linear = nn.Linear if neuron is None else EventLinear  # the spiking form's projections read spikes
        self.in_proj = linear(d_model, 2 * inner)
        bound = 1 / math.sqrt(d_conv)  # nn.Conv1d's default init
        self.conv_weight = nn.Parameter(torch.empty(inner, d_conv).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(inner).uniform_(-bound, bound))
        self.out = linear(inner, d_model)  # W_out replaces the SSM's square output projection
        self.fire_in = None if neuron is None else TokenFire(neuron, "sequential")
        self.fire_out = None if neuron is None else TokenFire(resolve_neuron(neuron, None), "sequential")

    @property
    def spiking(self) -> bool:
        return self.fire_in is not None

    def forward(self, x: torch.Tensor, state: MambaState | None = None, return_state: bool = False):
        self.check_input(x)
        B, L, _ = x.shape
        E = self.d_inner
        if state is None:
            past, S = x.new_zeros(B, self.d_conv - 1, E), None
        else:
            if not isinstance(state, MambaState):
                raise TypeError(f"state must be a MambaState (conv window, SSM state), got {type(state).__name__}")
            past = check_state("state.conv", state.conv, (B, self.d_conv - 1, E), like=x)
            S = check_state("state.ssm", state.ssm, (B, E, self.d_state), like=x)
            for name, npe, width in (("fire_in", state.fire_in, self.d_model), ("fire_out", state.fire_out, E)):
                for part, t in zip(("h", "s"), npe or ()):
                    check_state(f"state.{name}.{part}", t, (B, width), like=x)
        s_in, fire_in = self._fire(self.fire_in, x, None if state is None else state.fire_in)
        u, z = self.in_proj(s_in).chunk(2, -1)
        window = torch.cat([past, u], 1)
        c = F.conv1d(window.transpose(1, 2), self.conv_weight.unsqueeze(1), self.conv_bias, groups=E)
        y, S = self.readout(F.silu(c.transpose(1, 2)), S)
        s_out, fire_out = self._fire(self.fire_out, y * F.silu(z), None if state is None else state.fire_out)
        out = self.out(s_out)
        return (out, MambaState(window[:, L:], S, fire_in, fire_out)) if return_state else out

    @staticmethod
    def _fire(fire: TokenFire | None, x: torch.Tensor, state: NPEState | None):
        """(spikes of x, the neuron's last state) through ``fire``; (x, None) without one."""
        return (x, None) if fire is None else fire(x, state, return_state=True)

    def initial_state(self, batch: int) -> MambaState:
        """Conv window, S and a stateful neuron's h and s zero: ([B, k - 1, E], [B, E, N], ...)."""
        npe = [None if f is None or f.memoryless else NPEState(self._zeros(batch, width), self._zeros(batch, width))
               for f, width in ((self.fire_in, self.d_model), (self.fire_out, self.d_inner))]
        return MambaState(self._zeros(batch, self.d_conv - 1, self.d_inner),
                          self._zeros(batch, self.d_inner, self.d_state), *npe)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The block's own counts on x [B, L, D], E inner channels, conv of k taps (W_in, W_out and the
        SSM's Delta, k, q projections are nn.Linear children, the spiking neurons Fire children):

        macs = the selective scan on [B, L, E] (:meth:`SelectiveSSM.accounting`)
             + B L E k                  depthwise causal conv
             + B L E                    gate y * SiLU(z)
        state_bytes adds the conv window B (k - 1) E * element size.
        """
        x = inputs[0]
        B, L, _ = x.shape
        E = self.d_inner
        counts = self._ssm_counts(x[..., :1].expand(B, L, E))
        counts["macs"] += B * L * E * (self.d_conv + 1)
        counts["state_bytes"] += B * (self.d_conv - 1) * E * x.element_size()
        return counts


class SpikingMamba(MambaBlock):
    """SpikingMamba: :class:`MambaBlock` whose W_in and W_out read spikes of ``neuron`` (a copy each;
    default :func:`ternary_neuron`, eq. 6, each projection learning its own threshold); ``neuron=None``
    is the conventional block."""

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, neuron=DEFAULT,
                 method: str = "auto", dt_range: tuple[float, float] = (1e-3, 1e-1)):
        super().__init__(d_model, d_state, expand, d_conv, neuron, method, dt_range)


__all__ = ["MambaState", "MambaBlock", "SpikingMamba", "multilevel_neuron", "ternary_neuron"]
