"""Intra-token NPU: an SNN classifier along a virtual time axis and its conventional twin."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _checks
from .. import encoding as _encoding
from ..layers import EventLinear, SpikingMLP
from ._common import _check_features, _sizes


class SNNClassifier(nn.Module):
    """Intra-token classifier (eq. 13): encode x along tau, LIF layers, rate-decoded linear readout.

    logits = mean_t (W_out s_t + b_out), s_t the spikes of the last hidden layer. With
    ``spiking=False`` it is the conventional twin: the same Linear layers with ReLU and no tau.
    ``encoding`` names an encoder of :mod:`neurotoken.encoding` ("direct" feeds x as a current).
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (128,), classes: int = 10, T: int = 8,
                 encoding: str = "direct", spiking: bool = True, **neuron):
        super().__init__()
        self.T = _checks.positive_int("T", T)
        self.encoding = encoding
        self.spiking = _checks.flag("spiking", spiking)
        _encoding.ENCODERS.get(encoding)  # fail early on unknown names
        self.in_features = _checks.positive_int("in_features", in_features)
        sizes = [self.in_features, *_sizes("hidden", hidden)]
        if spiking:
            self.body = SpikingMLP(sizes, **neuron)
        else:
            layers = []
            for a, b in zip(sizes, sizes[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.body = nn.Sequential(*layers)
        self.readout = (EventLinear if spiking else nn.Linear)(sizes[-1], _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in_features] (values in [0, 1] for spike encoders) -> logits [B, classes]."""
        _checks.tensor("x", x, min_dim=2, max_dim=2)
        _check_features("x", x, self.in_features, self)
        if not self.spiking:
            return self.readout(self.body(x))
        s = _encoding.encode(self.encoding, x, self.T)
        return self.readout(self.body(s)).mean(0)


__all__ = ["SNNClassifier"]
