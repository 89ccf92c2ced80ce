"""Analog in-memory computing: Linear and Conv2d layers run as crossbar tiles of conductance pairs
(eq. (84)-(88)).

    chip = nt.hardware.analog(model, nt.hardware.AnalogConfig(adc_bits=8, t_inference_s=86400.0))
    nt.hardware.calibrate(chip, x_calibration)   # every tile's input and output range
    chip.eval()(x)                                # programmed, drifted, noisy, converted

Per layer, W [out, rows] (a Conv2d's rows are C_in x kh x kw) is scaled by w_max = max|W| onto
conductances in units of g_max: G+ = max(W, 0) / w_max and G- = max(-W, 0) / w_max, each rounded to
``levels`` levels. Programming noise adds ``prog_noise`` z per device (z ~ N(0, 1), drawn once by
:func:`program`); conductances then drift as G(t) = G(t0) (t/t0)^-nu, nu ~ N(drift_nu_mean,
drift_nu_std) per device (clamped at 0). Global drift compensation scales the layer's digital output by
sum|G(t0) 1| / sum|G(t) 1|, two all-ones reads of the array. Each device read adds N(0, read_noise)
(drawn per input vector, output-referred). Inputs reach the rows through a DAC of ``dac_bits`` over
their range (spike inputs calibrated as such keep their integer levels; a binary spike needs no DAC),
each tile's partial sums pass an ADC of ``adc_bits`` over its range, and the row tiles' partial sums
are added digitally. Conductances are not clipped, so the noise statistics are exactly the configured
ones. In training mode a layer is digital unless ``train_noise`` (hardware-aware training: fresh
programming noise, drift exponents and read noise per forward, from the global RNG) or ``train_quantisation`` (levels and
conversions, with straight-through gradients); the weights stay the digital parameters throughout.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..accounting.counter import is_discrete, value_bits
from .chips import load_chip

MAX_BITS = 24  # converters finer than fp32's mantissa are ideal


@dataclass(frozen=True)
class AnalogConfig:
    """A crossbar chip: tiles, conductance levels, device noise and drift, converters (see the module docstring).

    Noise standard deviations are relative to g_max; ``levels=None`` programs continuous conductances.
    """

    tile_rows: int = 256
    tile_cols: int = 256
    levels: int | None = None
    g_max_us: float = 25.0
    prog_noise: float = 0.0
    read_noise: float = 0.0
    drift_nu_mean: float = 0.0
    drift_nu_std: float = 0.0
    t0_s: float = 1.0
    t_inference_s: float = 1.0
    drift_compensation: bool = True
    dac_bits: int = 8
    adc_bits: int = 8
    train_noise: bool = False
    train_quantisation: bool = False
    seed: int = 0

    def __post_init__(self):
        for name in ("tile_rows", "tile_cols"):
            _checks.positive_int(name, getattr(self, name))
        if self.levels is not None:
            _checks.positive_int("levels", self.levels, low=2)
        for name in ("dac_bits", "adc_bits"):
            bits = _checks.positive_int(name, getattr(self, name))
            if bits > MAX_BITS:
                raise ValueError(f"{name} must be in [1, {MAX_BITS}], got {bits}")
        _checks.number("g_max_us", self.g_max_us, low=0.0, low_open=True)
        for name in ("prog_noise", "read_noise", "drift_nu_mean", "drift_nu_std"):
            _checks.number(name, getattr(self, name), low=0.0)
        t0 = _checks.number("t0_s", self.t0_s, low=0.0, low_open=True)
        _checks.number("t_inference_s", self.t_inference_s, low=t0)
        for name in ("drift_compensation", "train_noise", "train_quantisation"):
            _checks.flag(name, getattr(self, name))
        _checks.integer("seed", self.seed)

    @classmethod
    def from_chip(cls, chip, **changes) -> AnalogConfig:
        """The tile size and converter bits of an analog chip (a :class:`Chip` or a name or path for
        :func:`load_chip`), with ``changes`` to any field."""
        tiles_ = load_chip(chip).analog
        if tiles_ is None:
            raise ValueError(f"chip must be an analog chip (one with an [analog] section), got {load_chip(chip).name!r}")
        return cls(**{"tile_rows": tiles_.tile_rows, "tile_cols": tiles_.tile_cols, "dac_bits": tiles_.dac_bits,
                      "adc_bits": tiles_.adc_bits, **changes})


def level_steps(bits: int) -> int:
    """Levels per sign of a signed converter of ``bits`` bits: 2^(bits-1) - 1 (at least 1)."""
    return max(1, 2 ** (bits - 1) - 1)


def quantise(x: torch.Tensor, steps: int | torch.Tensor, straight_through: bool = False) -> torch.Tensor:
    """round(clamp(x, -1, 1) q) / q with q = ``steps`` levels per sign (eq. (73) at scale 1/q): the
    error is at most 1 / (2q) inside [-1, 1]; ``straight_through`` passes the clamp's gradient (eq. (57))."""
    x = x.clamp(-1.0, 1.0)
    q = torch.round(x * steps) / steps
    return x + (q - x).detach() if straight_through else q


def conductance_pair(w: torch.Tensor, levels: int | None, straight_through: bool = False) -> torch.Tensor:
    """[2, ...]: (G+, G-) of eq. (84) in units of g_max of weights w already scaled into [-1, 1], each rounded to
    ``levels`` levels in [0, 1] (``None``: continuous)."""
    g = torch.stack((w.clamp_min(0.0), (-w).clamp_min(0.0)))
    return g if levels is None else quantise(g, levels - 1, straight_through)


def drift(g: torch.Tensor, nu: torch.Tensor, t_s: float, t0_s: float) -> torch.Tensor:
    """G(t) = G(t0) (t / t0)^-nu, per device (eq. (86))."""
    return g * torch.pow(torch.as_tensor(t_s / t0_s, dtype=g.dtype, device=g.device), -nu)


def drift_scale(g_t0: torch.Tensor, g_t: torch.Tensor) -> torch.Tensor:
    """Global drift compensation, eq. (86): sum|(G+ - G-)(t0) 1| / sum|(G+ - G-)(t) 1| (two all-ones reads)."""
    read = lambda g: (g[0] - g[1]).sum(-1).abs().sum()  # noqa: E731
    return read(g_t0) / read(g_t).clamp_min(torch.finfo(g_t.dtype).tiny)


def tile_partials(x: torch.Tensor, w: torch.Tensor, tile_rows: int) -> torch.Tensor:
    """Partial sums [N, R, out] of x [N, rows] @ w[out, rows]^T, one per row tile of ``tile_rows`` (eq. (87))."""
    pad = -x.shape[-1] % tile_rows
    xr = F.pad(x, (0, pad)).unflatten(-1, (-1, tile_rows))
    wr = F.pad(w, (0, pad)).unflatten(-1, (-1, tile_rows))
    return torch.einsum("nrk,ork->nro", xr, wr)


def _tiles(n: int, size: int) -> int:
    return -(-n // size)


class _Crossbar:
    """The crossbar behind :class:`AnalogLinear` and :class:`AnalogConv2d`: W as ``_matrix()`` [out, rows]."""

    def _setup(self, config: AnalogConfig) -> None:
        if not isinstance(config, AnalogConfig):
            raise TypeError(f"config must be an AnalogConfig, got {type(config).__name__}")
        self.config = config
        w = self._matrix()
        like = dict(device=w.device, dtype=w.dtype)
        self.register_buffer("prog_z", torch.zeros(2, *w.shape, **like))
        self.register_buffer("nu", torch.zeros(2, *w.shape, **like))
        self.register_buffer("input_range", torch.ones((), **like))
        self.register_buffer("output_range", torch.ones(self.row_tiles, _tiles(w.shape[0], config.tile_cols), **like))
        self.inputs_calibrated = self.outputs_calibrated = False
        self.input_steps = level_steps(config.dac_bits)
        self._seed, self._generator = config.seed, None

    @property
    def rows(self) -> int:
        return self.weight[0].numel()

    @property
    def row_tiles(self) -> int:
        return _tiles(self.rows, self.config.tile_rows)

    @property
    def col_tiles(self) -> int:
        return _tiles(self.weight.shape[0], self.config.tile_cols)

    def _matrix(self) -> torch.Tensor:
        return self.weight.flatten(1)

    def get_extra_state(self) -> dict:
        """Calibration flags and the noise seed (JSON values: checkpoints store them beside the tensors)."""
        return {"inputs_calibrated": self.inputs_calibrated, "outputs_calibrated": self.outputs_calibrated,
                "input_steps": self.input_steps, "seed": self._seed}

    def set_extra_state(self, state: dict) -> None:
        """Restore :meth:`get_extra_state`; the read noise generator restarts from the seed."""
        self.inputs_calibrated, self.outputs_calibrated = state["inputs_calibrated"], state["outputs_calibrated"]
        self.input_steps = state["input_steps"]
        self._seed, self._generator = state.get("seed", self._seed), None

    def generator(self) -> torch.Generator | None:
        """The layer's noise generator on its weight's device (seeded by :meth:`program`; none on meta)."""
        device = self.weight.device
        if device.type == "meta":
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self._seed)
        return self._generator

    def _normal(self, shape, like: torch.Tensor, programming: bool = False) -> torch.Tensor:
        """N(0, 1) draws: a training forward takes the global RNG (like dropout, so a checkpoint's RNG
        states resume hardware-aware training draw for draw); programming and inference the layer's own."""
        generator = None if self.training and not programming else self.generator()
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)

    def program(self, seed: int) -> None:
        """Draw the programming noise and the drift exponents of every device (fixed until the next call)."""
        self._seed, self._generator = _checks.integer("seed", seed), None
        with torch.no_grad():
            self.prog_z.copy_(self._normal(self.prog_z.shape, self.prog_z, programming=True))
            self.nu.copy_(self._exponents(self.nu, programming=True))

    def _exponents(self, like: torch.Tensor, programming: bool = False) -> torch.Tensor:
        """Drift exponents nu ~ N(drift_nu_mean, drift_nu_std) per device, clamped at 0."""
        cfg = self.config
        return (cfg.drift_nu_mean + cfg.drift_nu_std * self._normal(like.shape, like, programming)).clamp_min(0.0)

    def _analog(self) -> bool:
        return not self.training or self.config.train_noise or self.config.train_quantisation

    def _noisy(self) -> bool:
        return not self.training or self.config.train_noise

    def _quantised(self) -> bool:
        return not self.training or self.config.train_quantisation

    def _adopt(self, m: nn.Module, config: AnalogConfig):
        self.weight, self.bias = m.weight, m.bias
        self._setup(config)
        return self.train(m.training)

    def conductances(self, t_s: float | None = None) -> torch.Tensor:
        """[2, out, rows]: programmed (G+, G-) in microsiemens at time ``t_s`` (the config's t_inference_s)."""
        w, _ = self._scaled()
        cfg = self.config
        g = conductance_pair(w, cfg.levels) + cfg.prog_noise * self.prog_z
        t = cfg.t_inference_s if t_s is None else _checks.number("t_s", t_s, low=cfg.t0_s)
        return drift(g, self.nu, t, cfg.t0_s) * cfg.g_max_us

    def _scaled(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._matrix()
        w_max = w.detach().abs().amax().clamp_min(torch.finfo(w.dtype).tiny)
        return w / w_max, w_max

    def _effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(G+ - G- [out, rows] in units of g_max, the digital output scale w_max x drift compensation);
        a training forward with ``train_noise`` programs a fresh chip (noise and drift exponents)."""
        cfg, training = self.config, self.training
        w, scale = self._scaled()
        g0 = conductance_pair(w, cfg.levels if self._quantised() else None, straight_through=training)
        if not self._noisy():
            return g0[0] - g0[1], scale
        if cfg.prog_noise:
            g0 = g0 + cfg.prog_noise * (self._normal(self.prog_z.shape, w) if training else self.prog_z)
        g = drift(g0, self._exponents(self.nu) if training else self.nu, cfg.t_inference_s, cfg.t0_s)
        if cfg.drift_compensation:
            scale = scale * drift_scale(g0, g).detach()
        return g[0] - g[1], scale

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x / s through the DAC, s): s the calibrated input range, else max|x| per vector."""
        s = self.input_range if self.inputs_calibrated else x.detach().abs().amax(-1, keepdim=True)
        s = s.clamp_min(torch.finfo(x.dtype).tiny)
        xn = x / s
        steps = self.input_steps if self.inputs_calibrated else level_steps(self.config.dac_bits)
        return (quantise(xn, steps, self.training) if self._quantised() else xn), s

    def _ranges(self, w: torch.Tensor) -> torch.Tensor:
        """ADC range per (row tile, column) [R, out]: calibrated, else each tile's worst case max sum|w|."""
        cfg, out = self.config, w.shape[0]
        ranges = self.output_range
        if not self.outputs_calibrated:
            col_sums = tile_partials(torch.ones_like(w[:1]), w.detach().abs(), cfg.tile_rows)[0]  # [R, out]
            ranges = F.pad(col_sums, (0, -out % cfg.tile_cols)).unflatten(-1, (-1, cfg.tile_cols)).amax(-1)
        return ranges.repeat_interleave(cfg.tile_cols, dim=-1)[:, :out].clamp_min(torch.finfo(w.dtype).tiny)

    def _partials(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(partial sums [N, R, out] before read noise and ADC, in units of g_max x input range; G+ - G-;
        the inputs after the DAC; their digital output scale)."""
        g, scale = self._effective()
        xn, s = self._inputs(x)
        return tile_partials(xn, g, self.config.tile_rows), g, xn, s * scale

    def crossbar(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, rows] -> W x [N, out] through the tiles: DAC, read noise, ADC per tile, digital sum."""
        cfg = self.config
        parts, g, xn, scale = self._partials(x)
        if cfg.read_noise and self._noisy():
            norms = tile_partials(xn.detach().square(), torch.ones_like(g[:1]), cfg.tile_rows).sqrt()  # [N, R, 1]
            parts = parts + (math.sqrt(2.0) * cfg.read_noise) * norms * self._normal(parts.shape, parts)
        if self._quantised():
            ranges = self._ranges(g)
            parts = quantise(parts / ranges, level_steps(cfg.adc_bits), self.training) * ranges
        return parts.sum(1) * scale

    def conversions(self, x: torch.Tensor, vectors: int) -> dict[str, int]:
        """ADC conversions (vectors x row tiles x columns) and DAC conversions (eq. (88): rows driven through a DAC
        in every column tile; none for binary spikes), with their total DAC bits."""
        adc = vectors * self.row_tiles * self.weight.shape[0]
        discrete = is_discrete(x)
        if discrete and (x.numel() == 0 or (int(x.min()) >= 0 and int(x.max()) <= 1)):
            return {"adc_conversions": adc, "dac_conversions": 0, "dac_bits": 0}
        dac = vectors * self.rows * self.col_tiles
        return {"adc_conversions": adc, "dac_conversions": dac,
                "dac_bits": dac * (value_bits(x) if discrete else self.config.dac_bits)}


class AnalogLinear(_Crossbar, nn.Linear):
    """nn.Linear as crossbar tiles (module docstring); digital bias; ideal devices until :meth:`program`.
    ``accounting`` adds the conversions to the counter's row."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, config: AnalogConfig = AnalogConfig(),
                 device=None, dtype=None):
        nn.Linear.__init__(self, _checks.positive_int("in_features", in_features),
                           _checks.positive_int("out_features", out_features), _checks.flag("bias", bias),
                           device=device, dtype=dtype)
        self._setup(config)

    @classmethod
    def from_digital(cls, m: nn.Linear, config: AnalogConfig) -> AnalogLinear:
        """The analog tile of ``m``, sharing its weight and bias Parameters."""
        new = cls(m.in_features, m.out_features, m.bias is not None, config, device="meta")
        return new._adopt(m, config)

    def vectors(self, x: torch.Tensor) -> torch.Tensor:
        """The crossbar input vectors [N, rows] of x [..., in_features]."""
        return x.reshape(-1, self.in_features)

    def forward(self, x: torch.Tensor, grad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [..., in_features] -> [..., out_features]. ``grad_mask`` is the event layer's (eq. (93)) and,
        as on its dense path, all of dL/dx is computed."""
        if not self._analog():
            return super().forward(x)
        y = self.crossbar(self.vectors(x)).unflatten(0, x.shape[:-1])
        return y if self.bias is None else y + self.bias

    def accounting(self, inputs: tuple, output: torch.Tensor) -> dict[str, int]:
        x = inputs[0]
        return self.conversions(x, x.numel() // self.in_features)


class AnalogConv2d(_Crossbar, nn.Conv2d):
    """nn.Conv2d (zero padding, one group) as crossbar tiles over its im2col rows; digital bias."""

    def __init__(self, *args, config: AnalogConfig = AnalogConfig(), **kwargs):
        nn.Conv2d.__init__(self, *args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError(f"an analog Conv2d needs groups=1, padding_mode='zeros' and numeric padding, got "
                             f"groups={self.groups}, padding_mode={self.padding_mode!r}, padding={self.padding!r}")
        self._setup(config)

    @classmethod
    def from_digital(cls, m: nn.Conv2d, config: AnalogConfig) -> AnalogConv2d:
        """The analog tiles of ``m``, sharing its weight and bias Parameters."""
        new = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                  m.bias is not None, m.padding_mode, config=config, device="meta")
        return new._adopt(m, config)

    def vectors(self, x: torch.Tensor) -> torch.Tensor:
        """The crossbar input vectors [N, rows] (im2col) of x [B, C_in, H, W] or [C_in, H, W]."""
        xb = x if x.dim() == 4 else x.unsqueeze(0)
        return F.unfold(xb, self.kernel_size, self.dilation, self.padding, self.stride).transpose(1, 2).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C_in, H, W] (or [C_in, H, W]) -> [B, C_out, H', W']."""
        if not self._analog():
            return super().forward(x)
        xb = x if x.dim() == 4 else x.unsqueeze(0)
        size = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                zip(xb.shape[-2:], self.padding, self.dilation, self.kernel_size, self.stride)]
        y = self.crossbar(self.vectors(xb)).unflatten(0, (xb.shape[0], -1))
        y = y.transpose(1, 2).unflatten(-1, size)
        y = y if self.bias is None else y + self.bias[:, None, None]
        return y if x.dim() == 4 else y[0]

    def accounting(self, inputs: tuple, output: torch.Tensor) -> dict[str, int]:
        return self.conversions(inputs[0], output.numel() // self.out_channels)


ANALOG = (AnalogLinear, AnalogConv2d)


def _swap(module: nn.Module, config: AnalogConfig) -> None:
    """Every nn.Linear and nn.Conv2d below ``module`` (subclasses such as EventLinear included) as crossbar tiles."""
    for name, child in module.named_children():
        if isinstance(child, ANALOG):
            continue
        if isinstance(child, nn.Linear):
            setattr(module, name, AnalogLinear.from_digital(child, config))
        elif isinstance(child, nn.Conv2d):
            setattr(module, name, AnalogConv2d.from_digital(child, config))
        else:
            _swap(child, config)


def tiles(model: nn.Module) -> dict[str, AnalogLinear | AnalogConv2d]:
    """The analog layers of ``model`` by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, ANALOG)}


def _model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def program(model: nn.Module, seed: int) -> nn.Module:
    """(Re-)program every analog layer of ``model``: fresh programming noise and drift exponents,
    deterministic in ``seed``; returns ``model``."""
    seed = _checks.integer("seed", seed)
    for i, m in enumerate(tiles(_model(model)).values()):
        m.program(seed * 1_000_003 + i)
    return model


def analog(model: nn.Module, config: AnalogConfig = AnalogConfig()) -> nn.Module:
    """A copy of ``model`` (left untouched) whose nn.Linear and nn.Conv2d layers are crossbar tiles,
    programmed with ``config.seed``."""
    if not isinstance(config, AnalogConfig):
        raise TypeError(f"config must be an AnalogConfig, got {type(config).__name__}")
    chip = copy.deepcopy(_model(model))
    if isinstance(chip, (nn.Linear, nn.Conv2d)) and not isinstance(chip, ANALOG):
        chip = nn.Sequential(chip)
    _swap(chip, config)
    return program(chip, config.seed)


def configure(model: nn.Module, **changes) -> nn.Module:
    """Change fields of every analog layer's :class:`AnalogConfig` (e.g. ``t_inference_s``) in place;
    programmed devices and calibrated ranges are kept; returns ``model``."""
    names = {f.name for f in fields(AnalogConfig)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"unknown AnalogConfig field(s) {unknown}; expected some of {sorted(names)}")
    if {"tile_rows", "tile_cols"} & set(changes):
        raise ValueError("tile_rows and tile_cols are fixed when the layers are converted; convert again with analog()")
    for m in tiles(_model(model)).values():
        m.config = replace(m.config, **changes)
    return model


def _batches(inputs) -> list[torch.Tensor]:
    batches = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs) if isinstance(inputs, Iterable) else None
    if not batches or not all(isinstance(b, torch.Tensor) for b in batches):
        raise TypeError("inputs must be a tensor or a non-empty iterable of tensors (calibration batches)")
    return batches


def calibrate(model: nn.Module, inputs) -> nn.Module:
    """Set every tile's input range (max|x| seen; spike inputs keep their integer levels) and output
    range (max |partial sum| seen per tile) from calibration ``inputs`` (a tensor or batches); returns ``model``."""
    layers = tiles(_model(model))
    batches = _batches(inputs)
    if not layers:
        raise ValueError("model has no analog layers to calibrate; convert it with nt.hardware.analog first")
    was_training = model.training
    model.eval()
    seen: dict[nn.Module, list] = {m: [] for m in layers.values()}

    def record(m, args, output):
        seen[m].append(m.vectors(args[0]))

    def run(hook):
        handles = [m.register_forward_hook(hook) for m in layers.values()]
        try:
            with torch.no_grad():
                for b in batches:
                    model(b)
        finally:
            for h in handles:
                h.remove()

    run(record)
    for m, xs in seen.items():
        x = torch.cat(xs) if xs else None
        if x is None:
            continue
        peak = x.abs().amax() if x.numel() else x.new_ones(())
        discrete = is_discrete(x)
        m.input_range.copy_(peak.clamp_min(1.0) if discrete else peak.clamp_min(torch.finfo(x.dtype).tiny))
        m.input_steps = int(m.input_range) if discrete else level_steps(m.config.dac_bits)
        m.inputs_calibrated = True
    peaks: dict[nn.Module, torch.Tensor] = {}

    def ranges(m, args, output):
        parts = m._partials(m.vectors(args[0]))[0].abs().amax(0)  # [R, out]
        cols = F.pad(parts, (0, -parts.shape[-1] % m.config.tile_cols)).unflatten(-1, (-1, m.config.tile_cols))
        peaks[m] = torch.maximum(peaks[m], cols.amax(-1)) if m in peaks else cols.amax(-1)

    run(ranges)
    for m, peak in peaks.items():
        m.output_range.copy_(peak.clamp_min(torch.finfo(peak.dtype).tiny))
        m.outputs_calibrated = True
    model.train(was_training)
    return model

