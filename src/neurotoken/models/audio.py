"""Keyword spotting: a recurrent SNN over the frames of audio features or of spike inputs (SHD).

The frame axis is the NPEs' time axis (eq. 9): log-mel features ``[B, frames, mels]`` enter as
currents, spike trains ``[B, T, channels]`` as events. An optional resonate-and-fire front end
(eq. 26) is a bank of resonators tuned over ``freq_hz``, responding to the modulation of each
projected feature at frame rate ``1000 / dt_ms`` Hz.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..layers import SpikingRecurrent, TimeBatchNorm
from ..neurons import ResonateFire
from ._common import _check_features, _sizes


class KeywordSpotter(nn.Module):
    """Recurrent SNN classifier over frames: [input BN], [resonator bank], recurrent LIF layers
    (:class:`~neurotoken.layers.SpikingRecurrent`, eq. (80)), logits = mean_t (W_out s_t + b_out) (eq. 31).

    ``resonators`` > 0 adds a bank of that many :class:`~neurotoken.neurons.ResonateFire` NPEs with
    frequencies spread linearly over ``freq_hz`` (Hz, below the frame rate's Nyquist 500 / dt_ms),
    decay ``tau_ms``. ``norm="bn"`` standardises real features per channel (use "none" for spike
    input, which then stays events). ``time_first``: x is [T, B, F] instead of [B, T, F].
    ``neuron`` (an NPE or its config dict) or LIF ``options`` configure the recurrent layers;
    ``spiking=False`` is the conventional twin (same leaks, ReLU for spikes).
    """

    def __init__(self, in_features: int = 40, classes: int = 12, hidden=(64,), recurrent: bool = True,
                 resonators: int = 0, freq_hz=(2.0, 20.0), tau_ms: float = 100.0, dt_ms: float = 10.0,
                 norm: str = "bn", time_first: bool = False, spiking: bool = True, neuron=None, **options):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        self.time_first = _checks.flag("time_first", time_first)
        self.spiking = _checks.flag("spiking", spiking)
        sizes = [self.in_features]
        self.norm = TimeBatchNorm(self.in_features) if _checks.choice("norm", norm, ("none", "bn")) == "bn" else None
        layers = []
        if _checks.positive_int("resonators", resonators, low=0):
            band = _checks.increasing("freq_hz", freq_hz, min_len=2)
            if len(band) != 2:
                raise ValueError(f"freq_hz must be a (low, high) pair in Hz, got {freq_hz!r}")
            lo, hi = band
            device = torch.get_default_device()  # ResonateFire reads its frequencies: not on meta
            with torch.device("cpu" if device.type == "meta" else device):
                freqs = torch.linspace(lo, hi, resonators)  # tau_ms per channel too: both follow model.to(dtype)
                bank = ResonateFire(freq_hz=freqs, tau_ms=torch.full_like(freqs, tau_ms), dt_ms=dt_ms)
            bank.to(device)
            layers.append(SpikingRecurrent(self.in_features, resonators, False, bank, spiking))
            sizes.append(resonators)
        for n in _sizes("hidden", hidden):
            layers.append(SpikingRecurrent(sizes[-1], n, recurrent, neuron, spiking, **options))
            sizes.append(n)
        self.body = nn.ModuleList(layers)
        self.readout = nn.Linear(sizes[-1], _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, in_features] (``time_first``: [T, B, in_features]) -> logits [B, classes]."""
        _check_features("x", x, self.in_features, self, min_dim=3)
        if x.dim() != 3:
            raise ValueError(f"x must be [B, T, {self.in_features}] (or [T, B, ...] with time_first), "
                             f"got shape {tuple(x.shape)}")
        x = x if self.time_first else x.transpose(0, 1)
        if self.norm is not None:
            x = self.norm(x)
        for layer in self.body:
            x = layer.run(x)
        return self.readout(x).mean(0)


__all__ = ["KeywordSpotter"]
