"""Post-training int8 quantisation (fake-quant in torch): the bit-matched twin, measured.

Symmetric int8, eq. (73): q = clamp(round(x / s), -127, 127), x_hat = s q, with s = max|x| / 127, so
|x - x_hat| <= s / 2 for |x| <= 127 s. Weights get one scale per output channel; real inputs of
every synaptic layer (Linear, Conv2d) one scale per tensor, calibrated as the max over a
calibration set. Discrete inputs (spikes) are exact in int8 and pass unchanged. Biases stay float
(an int32 bias at scale s_w s_x is exact to far below the int8 rounding), and so does an SNN's
membrane (a wide fixed-point accumulator): what :func:`.baselines.quantise_int8` prices.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .. import _checks
from .counter import SYNAPTIC, is_discrete

QMAX = 127


def int8_scale(x: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """s = max|x| / 127 over the whole tensor, or per index of dim 0 (shaped to broadcast against x)."""
    dims = tuple(range(1, x.dim())) if per_channel else tuple(range(x.dim()))
    return (x.abs().amax(dim=dims, keepdim=per_channel) / QMAX).clamp_min(torch.finfo(x.dtype).tiny)


def fake_quant(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Eq. (73): x_hat = s clamp(round(x / s), -127, 127)."""
    return (x / scale).round().clamp(-QMAX, QMAX) * scale


def _input_max(model: nn.Module, calibration: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """max|x| of the real inputs each synaptic layer saw on the calibration set, by module name."""
    seen: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(m, inputs):
            x = inputs[0]
            if not is_discrete(x):
                seen[name] = torch.maximum(seen.get(name, torch.zeros(())), x.detach().abs().amax())
        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, SYNAPTIC)]
    try:
        with torch.no_grad():
            for xb in calibration.split(batch_size):
                model(xb)
    finally:
        for h in handles:
            h.remove()
    return seen


def quantised_copy(model: nn.Module, calibration: torch.Tensor, batch_size: int = 512) -> nn.Module:
    """An int8 fake-quant copy of ``model`` (in eval mode; ``model`` is left as it was): per-channel
    int8 weights, and per-tensor int8 real inputs with scales calibrated on ``calibration``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _checks.tensor("calibration", calibration, min_dim=1)
    q = copy.deepcopy(model).eval()
    act_scales = {name: peak / QMAX for name, peak in _input_max(q, calibration, batch_size).items()}
    for name, m in q.named_modules():
        if isinstance(m, SYNAPTIC):
            with torch.no_grad():
                m.weight.copy_(fake_quant(m.weight, int8_scale(m.weight, per_channel=True)))
            if name in act_scales:
                scale = act_scales[name].clamp_min(torch.finfo(m.weight.dtype).tiny)
                m.register_forward_pre_hook(lambda m, inputs, s=scale: (
                    inputs if is_discrete(inputs[0]) else (fake_quant(inputs[0], s), *inputs[1:])))
    return q
