"""Intra-token vision NPUs on channels-last images: a convolutional SNN classifier and a spiking U-Net.

Both take real images ``[B, H, W, C]`` (encoded along tau by an encoder of
:mod:`neurotoken.encoding`; "direct" repeats the image as a current) or frames that already spike,
``[T, B, H, W, C]`` (event frames, used as they are), and rate-decode their readout (eq. 31).
``spiking=False`` builds the conventional twin: the same convolutions with ReLU, one step for an
image, every frame for a frame stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .. import encoding as _encoding
from ..layers import NORMS, POOLS, MSBlock, SEWBlock, SpikingConv2d, activation, conv_steps, pool2d
from ..mixers.base import check_dtype
from ._common import _sizes

BLOCKS = ("none", "sew", "ms")


class _Images(nn.Module):
    """Shared boundary of the vision models: options, and images or frames as [T, B, H, W, C]."""

    def __init__(self, in_channels, channels, T, encoding, norm, spiking, neuron, options):
        super().__init__()
        self.in_channels = _checks.positive_int("in_channels", in_channels)
        self.channels = _sizes("channels", channels)
        if not self.channels:
            raise ValueError("channels must hold at least one size")
        self.T = _checks.positive_int("T", T)
        self.encoding = encoding
        _encoding.ENCODERS.get(encoding)  # fail early on unknown names
        self.spiking = _checks.flag("spiking", spiking)
        self.act = {"neuron": neuron, "spiking": spiking, **options}
        self.unit = {**self.act, "norm": _checks.choice("norm", norm, NORMS)}
        self.divisor = 1  # H and W must be multiples of it

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, H, W, C] encoded over T (the twin: one step), frames [T, B, H, W, C] as they are."""
        _checks.tensor("x", x, min_dim=4, max_dim=5)
        H, W, C = x.shape[-3:]
        if C != self.in_channels or x.numel() == 0 or H % self.divisor or W % self.divisor:
            raise ValueError(f"x must be [B, H, W, {self.in_channels}] images or [T, B, H, W, {self.in_channels}] "
                             f"frames, no size 0, H and W multiples of {self.divisor}; got shape {tuple(x.shape)}")
        check_dtype("x", x, self)
        if x.dim() == 5:
            return x
        return _encoding.encode(self.encoding, x, self.T) if self.spiking else x.unsqueeze(0)


class SpikingCNN(_Images):
    """Convolutional SNN classifier (eq. 13 with convolutions, readout eq. 31).

    Stage i is a 3x3 :class:`~neurotoken.layers.SpikingConv2d` to ``channels[i]`` (from stage 1 on,
    pooled by ``pool`` over 2x2 windows) followed by ``blocks`` residual blocks (``block``: "sew" adds
    spikes, eq. (78); "ms" carries membrane currents, eq. (79); "none"); ``norm`` "bn" or "tdbn", eq. (77).
    logits = mean_t W_out mean_{H,W} s_t + b_out.
    ``neuron`` (an NPE or its config dict) or LIF ``options`` configure every NPE.
    """

    def __init__(self, in_channels: int = 1, classes: int = 10, channels=(16, 32), T: int = 4,
                 encoding: str = "direct", norm: str = "bn", pool: str = "avg", block: str = "none",
                 blocks: int = 1, spiking: bool = True, neuron=None, **options):
        super().__init__(in_channels, channels, T, encoding, norm, spiking, neuron, options)
        self.block = _checks.choice("block", block, BLOCKS)
        pool = _checks.choice("pool", pool, POOLS[1:])
        blocks = _checks.positive_int("blocks", blocks, low=0) if block != "none" else 0
        layers, c_in = [], self.in_channels
        for i, c in enumerate(self.channels):
            layers.append(SpikingConv2d(c_in, c, 3, padding=1, pool=pool if i else "none", **self.unit))
            layers += [SEWBlock(c, **self.unit) if block == "sew" else MSBlock(c, **self.unit) for _ in range(blocks)]
            if block == "ms" and blocks:  # back from membrane currents to spikes
                layers.append(activation(**self.act))
            c_in = c
        self.body = nn.Sequential(*layers)
        self.readout = nn.Linear(c_in, _checks.positive_int("classes", classes))
        self.divisor = 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, H, W, C] images or [T, B, H, W, C] frames -> logits [B, classes]."""
        s = self.frames(x)
        for layer in self.body:  # checked once above: each layer's unchecked path
            s = getattr(layer, "run", layer)(s)
        return self.readout(s.mean((-3, -2))).mean(0)


class SpikingSegmenter(_Images):
    """Spiking U-Net: per-pixel logits [B, H, W, classes] (eq. 13 with convolutions, readout eq. 31).

    Encoder level i: 2x2 max pooling of the spikes of level i - 1 (from level 1 on), then a 3x3
    :class:`~neurotoken.layers.SpikingConv2d` to ``channels[i]``. Decoder: nearest-neighbour
    upsampling (spikes stay spikes), concatenated with the encoder's spikes at that level (skip
    connection), a 3x3 unit; a 1x1 convolution reads the logits out, averaged over time.
    """

    def __init__(self, in_channels: int = 3, classes: int = 5, channels=(8, 16), T: int = 4,
                 encoding: str = "direct", norm: str = "bn", spiking: bool = True, neuron=None, **options):
        super().__init__(in_channels, channels, T, encoding, norm, spiking, neuron, options)
        cs = self.channels
        self.down = nn.ModuleList(SpikingConv2d(a, b, 3, padding=1, **self.unit)
                                  for a, b in zip([self.in_channels, *cs], cs))
        self.up = nn.ModuleList(SpikingConv2d(b + a, a, 3, padding=1, **self.unit) for a, b in zip(cs, cs[1:]))
        self.head = nn.Conv2d(cs[0], _checks.positive_int("classes", classes), 1)
        self.divisor = 2 ** (len(cs) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, H, W, C] images or [T, B, H, W, C] frames -> logits [B, H, W, classes]."""
        s, skips = self.frames(x), []
        for i, unit in enumerate(self.down):
            s = unit.run(pool2d(s, "max", 2) if i else s)
            skips.append(s)
        for unit, skip in zip(reversed(self.up), reversed(skips[:-1])):
            s = unit.run(torch.cat([s.repeat_interleave(2, -3).repeat_interleave(2, -2), skip], -1))
        return conv_steps(self.head, s).mean(0)


def pixel_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel cross-entropy of logits [B, H, W, classes] against class masks [B, H, W]."""
    return F.cross_entropy(logits.flatten(0, -2), masks.flatten())


__all__ = ["SpikingCNN", "SpikingSegmenter", "pixel_loss", "BLOCKS"]
