"""Assembled NPUs, each with a conventional twin (``spiking=False``) of the same layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import _checks
from . import encoding as _encoding
from .layers import SpikingMLP
from .mixers.spiking_ssm import SpikingSSM
from .mixers.ssm import check_tokens
from .spikes import DEFAULT_SURROGATE, resolve_spike
from .surrogate import resolve


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
        self.spiking = spiking
        _encoding.ENCODERS.get(encoding)  # fail early on unknown names
        sizes = [in_features, *hidden]
        if spiking:
            self.body = SpikingMLP(sizes, **neuron)
        else:
            layers = []
            for a, b in zip(sizes, sizes[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.body = nn.Sequential(*layers)
        self.readout = nn.Linear(sizes[-1], _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in_features] (values in [0, 1] for spike encoders) -> logits [B, classes]."""
        _checks.tensor("x", x, min_dim=2, max_dim=2)
        if not self.spiking:
            return self.readout(self.body(x))
        s = _encoding.encode(self.encoding, x, self.T)
        return self.readout(self.body(s)).mean(0)


class SpikingMLPBlock(nn.Module):
    """Channel MLP W_2 f(W_1 x): f = spike(. - theta) of a spike kind, or GELU for the twin."""

    def __init__(self, d_model: int, hidden: int, spiking: bool = True, spike="bernoulli", threshold: float = 1.0,
                 surrogate=DEFAULT_SURROGATE):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, hidden), nn.Linear(hidden, d_model)
        self.spiking = spiking
        self.spike, self.surrogate = resolve_spike(spike), resolve(surrogate)
        self.threshold = _checks.number("threshold", threshold, low=0.0, low_open=True)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(self.spike(h, self.threshold, self.surrogate) if self.spiking else self.act(h))


class SSMBlock(nn.Module):
    """Pre-norm residual block: x + mixer(LN x), then + MLP(LN x)."""

    def __init__(self, d_model: int, mixer: nn.Module, mlp: nn.Module):
        super().__init__()
        self.norm1, self.mixer, self.norm2, self.mlp = nn.LayerNorm(d_model), mixer, nn.LayerNorm(d_model), mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SpikingSSMClassifier(nn.Module):
    """Sequence classifier: embedding Linear(in -> D), ``layers`` blocks of :class:`SpikingSSM` +
    residual + LayerNorm + channel MLP, mean over tokens, linear readout. ``spiking=False`` is the
    conventional twin (real SSM readouts, GELU MLP). Further keyword arguments go to SpikingSSM.
    """

    def __init__(self, in_features: int = 1, d_model: int = 64, d_state: int = 16, layers: int = 2,
                 classes: int = 10, mlp_ratio: int = 2, spiking: bool = True, spike="bernoulli",
                 threshold: float = 1.0, **mixer):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        self.spiking = spiking
        self.embed = nn.Linear(in_features, d_model)
        nn.init.zeros_(self.embed.bias)  # blank pixels start as zero tokens (a random bias stalls training)
        self.blocks = nn.Sequential(*(
            SSMBlock(d_model, SpikingSSM(d_model, d_state, spiking, spike, threshold, **mixer),
                     SpikingMLPBlock(d_model, hidden, spiking, spike, threshold))
            for _ in range(_checks.positive_int("layers", layers))))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, in_features] -> logits [B, classes]."""
        check_tokens(x, self.in_features)
        return self.readout(self.norm(self.blocks(self.embed(x))).mean(1))
