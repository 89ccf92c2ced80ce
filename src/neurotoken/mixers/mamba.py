"""The full Mamba block around the selective SSM of eq. (33), and its spiking form (SpikingMamba).

    [u, z] = W_in x,   c = SiLU(causal depthwise conv_k(u)),   y = selective SSM(c) (eq. 33)
    output W_out (y * SiLU(z))

The spiking form feeds both projections spikes of a memoryless NPE, s = spike(x - theta) (eq. 7
multi-level spikes by default), so W_in and W_out do accumulates only; the conv, the scan and the
gate stay real-valued. The conv keeps its last k - 1 inputs as state, so ``step`` continues ``forward``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .base import DEFAULT, Fire, check_state, memoryless, resolve_neuron
from .ssm import SelectiveSSM


class MambaState(NamedTuple):
    conv: torch.Tensor  # the last k - 1 inputs of the conv [B, k - 1, E]
    ssm: torch.Tensor   # selective SSM state S [B, E, N]


def multilevel_neuron() -> nn.Module:
    """SpikingMamba's default NPE: memoryless multi-level spikes 0..3 at theta = 0.5 (eq. 7)."""
    return memoryless(0.5, "multilevel")


class MambaBlock(SelectiveSSM):
    """Mamba block on x [B, L, D] with inner width E = ``expand`` D: W_in x -> [u, z] (2E), causal
    depthwise conv of ``d_conv`` taps on u, SiLU, the selective SSM of eq. (33) on E channels
    (:class:`SelectiveSSM`'s readout), gate y * SiLU(z), W_out -> D.

    ``neuron`` (a memoryless NPE or its config dict; None for this conventional form) spikes the
    inputs of W_in and W_out (:class:`SpikingMamba` defaults it to multi-level spikes).
    State: :class:`MambaState` (conv window, SSM state).
    """

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, neuron=None,
                 method: str = "auto", dt_range: tuple[float, float] = (1e-3, 1e-1)):
        d_model = _checks.positive_int("d_model", d_model)
        inner = _checks.positive_int("expand", expand) * d_model
        super().__init__(inner, d_state, method, dt_range)
        self.d_model, self.d_inner = d_model, inner
        self.d_conv = _checks.positive_int("d_conv", d_conv)
        self.in_proj = nn.Linear(d_model, 2 * inner)
        bound = 1 / math.sqrt(d_conv)  # nn.Conv1d's default init
        self.conv_weight = nn.Parameter(torch.empty(inner, d_conv).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(inner).uniform_(-bound, bound))
        self.out = nn.Linear(inner, d_model)  # W_out replaces the SSM's square output projection
        neuron = resolve_neuron(neuron, multilevel_neuron)
        self.fire_in = None if neuron is None else Fire(neuron)
        self.fire_out = None if neuron is None else Fire(resolve_neuron(neuron, None))

    @property
    def spiking(self) -> bool:
        return self.fire_in is not None

    def forward(self, x: torch.Tensor, state: MambaState | None = None, return_state: bool = False):
        self.check_input(x)
        B, L, _ = x.shape
        if state is None:
            past, S = x.new_zeros(B, self.d_conv - 1, self.d_inner), None
        else:
            if not isinstance(state, tuple) or len(state) != 2:
                raise TypeError(f"state must be a MambaState (conv window, SSM state), got {type(state).__name__}")
            past = check_state("state.conv", state[0], (B, self.d_conv - 1, self.d_inner), like=x)
            S = check_state("state.ssm", state[1], (B, self.d_inner, self.d_state), like=x)
        u, z = self.in_proj(x if self.fire_in is None else self.fire_in(x)).chunk(2, -1)
        window = torch.cat([past, u], 1)
        c = F.conv1d(window.transpose(1, 2), self.conv_weight.unsqueeze(1), self.conv_bias, groups=self.d_inner)
        y, S = self.readout(F.silu(c.transpose(1, 2)), S)
        g = y * F.silu(z)
        out = self.out(g if self.fire_out is None else self.fire_out(g))
        return (out, MambaState(window[:, L:], S)) if return_state else out

    def initial_state(self, batch: int) -> MambaState:
        """Conv window and S zero: ([B, k - 1, E], [B, E, N])."""
        return MambaState(self._zeros(batch, self.d_conv - 1, self.d_inner),
                          self._zeros(batch, self.d_inner, self.d_state))

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The block's own counts on x [B, L, D], E inner channels, conv of k taps (W_in, W_out and the
        SSM's Delta, k, q projections are nn.Linear children, the spikes Fire children):

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
    """SpikingMamba: :class:`MambaBlock` whose W_in and W_out read spikes of ``neuron`` (default
    memoryless multi-level spikes 0..3 at theta = 0.5, eq. 7); ``neuron=None`` is the conventional block."""

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, neuron=DEFAULT,
                 method: str = "auto", dt_range: tuple[float, float] = (1e-3, 1e-1)):
        super().__init__(d_model, d_state, expand, d_conv, neuron, method, dt_range)


__all__ = ["MambaState", "MambaBlock", "SpikingMamba", "multilevel_neuron"]
