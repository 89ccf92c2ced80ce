"""In-context symbol demodulation (Table II of Simeone 2026, after Xpikeformer), generated on the fly.

Each sequence shares one random flat-fading channel, eq. (75): r = h s + n with h ~ CN(0, 1) and
n ~ CN(0, 10^(-SNR/10)) (SNR per symbol; unit-energy constellations). It holds ``pilots`` tokens
(Re r, Im r, Re s, Im s, 0) and a final query token (Re r, Im r, 0, 0, 1); the task is the
transmitted symbol index of the query. Baseline: the least-squares channel estimate from the
pilots followed by the maximum-likelihood (nearest point) decision.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .. import _checks
from ..metrics import symbol_error_rate  # re-exported: the metric lives in neurotoken.metrics

CONSTELLATIONS = ("qpsk", "qam16")
FEATURES = 5  # Re r, Im r, Re s, Im s, is_query


def constellation(scheme: str) -> torch.Tensor:
    """Unit average-energy points [M] (complex64): QPSK (M = 4) or square 16-QAM (M = 16)."""
    levels = {"qpsk": [-1.0, 1.0], "qam16": [-3.0, -1.0, 1.0, 3.0]}[_checks.choice("scheme", scheme,
                                                                                 CONSTELLATIONS)]
    axis = torch.tensor(levels)
    points = torch.complex(axis.repeat_interleave(len(levels)), axis.repeat(len(levels)))
    return points / points.abs().square().mean().sqrt()


class Demodulation(NamedTuple):
    tokens: torch.Tensor    # [N, pilots + 1, FEATURES] float32: pilot tokens, then the query
    labels: torch.Tensor    # [N] int64: the query's transmitted symbol index
    received: torch.Tensor  # [N, pilots + 1] complex64: r = h s + n
    symbols: torch.Tensor   # [N, pilots + 1] int64: transmitted symbol indices (last = labels)
    gain: torch.Tensor      # [N] complex64: the channel h of each sequence
    scheme: str             # the constellation


def _complex_normal(shape, variance: float, g: torch.Generator) -> torch.Tensor:
    parts = torch.randn(2, *shape, generator=g) * math.sqrt(variance / 2)
    return torch.complex(parts[0], parts[1])


def demodulation(n: int, pilots: int = 8, snr_db: float = 10.0, scheme: str = "qpsk",
                 seed: int = 0) -> Demodulation:
    """n sequences of ``pilots`` known pairs and one query from one channel per sequence."""
    n = _checks.positive_int("n", n)
    pilots = _checks.positive_int("pilots", pilots)
    snr_db = _checks.number("snr_db", snr_db)
    points = constellation(scheme)
    g = torch.Generator().manual_seed(_checks.positive_int("seed", seed, low=0))
    symbols = torch.randint(len(points), (n, pilots + 1), generator=g)
    gain = _complex_normal((n,), 1.0, g)
    received = gain[:, None] * points[symbols] + _complex_normal(symbols.shape, 10 ** (-snr_db / 10), g)
    sent = points[symbols].clone()
    sent[:, -1] = 0
    query = torch.zeros(symbols.shape)
    query[:, -1] = 1
    tokens = torch.stack([received.real, received.imag, sent.real, sent.imag, query], -1)
    return Demodulation(tokens, symbols[:, -1], received, symbols, gain, scheme)


def ls_gain(received: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
    """Least-squares channel estimate from pilots [..., P], eq. (75): h = sum conj(s) r / sum |s|^2."""
    return (sent.conj() * received).sum(-1) / sent.abs().square().sum(-1)


def ml_detect(received: torch.Tensor, gain: torch.Tensor, scheme: str = "qpsk") -> torch.Tensor:
    """Maximum-likelihood decision under AWGN given the gain h, eq. (75): argmin_m |r - h c_m|^2 (indices)."""
    points = constellation(scheme)
    return (received[..., None] - gain[..., None] * points).abs().argmin(-1)


def ls_detect(data: Demodulation) -> torch.Tensor:
    """The baseline that knows the pilots: LS channel estimate, then the ML decision on the query."""
    points = constellation(data.scheme)
    h = ls_gain(data.received[:, :-1], points[data.symbols[:, :-1]])
    return ml_detect(data.received[:, -1], h, data.scheme)


__all__ = ["CONSTELLATIONS", "FEATURES", "constellation", "Demodulation", "demodulation", "ls_gain",
           "ml_detect", "ls_detect", "symbol_error_rate"]
