"""Accuracy on analog in-memory crossbars versus ADC bits, read noise and drift time, with and without
hardware-aware training: the digits SNN and the demodulation spiking transformer (eq. (75)).

Each model is trained digitally (as in the ``digits`` and ``demodulation`` recipes), converted by
:func:`neurotoken.hardware.analog` and, for the hardware-aware variant, fine-tuned with noise and
quantisation in the forward pass. Every point programs a fresh chip per noise draw (``draws``),
calibrates its input and output ranges on training inputs and evaluates on the held-out split;
one axis moves at a time, the others stay at the base values of the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..hardware import AnalogConfig, analog, calibrate, program
from ..hardware.analog import configure
from ..learning.bptt import FitConfig
from .config import each, increasing, integer, nested, one_of, real, validate
from .demodulation import DemodulationSweep
from .digits import DigitsSweep
from .main_job import Task, attention_task, intra_task
from .runner import Results, Runner, recipe

MODELS = ("digits", "demodulation")
AXES = {"adc_bits": "ADC bits", "read_noise": "read noise (fraction of g_max)",
        "t_inference_s": "time since programming (s, log scale)"}


@dataclass(frozen=True)
class Devices:
    """Illustrative, PCM-like device assumptions (not a measured chip): programming noise ``prog_noise``
    and read noise ``read_noise`` are standard deviations in units of g_max; drift exponents
    nu ~ N(``drift_nu_mean``, ``drift_nu_std``) with G(t) = G(t0) (t / t0)^-nu from t0 = 1 s after
    programming, under global drift compensation; 8-bit DACs; an ``adc_bits``-bit ADC read
    ``t_inference_s`` after programming."""

    prog_noise: float = 0.03
    read_noise: float = 0.01
    drift_nu_mean: float = 0.05
    drift_nu_std: float = 0.02
    adc_bits: int = 8
    t_inference_s: float = 86_400.0  # one day
    CHECKS = {"prog_noise": real(low=0.0), "read_noise": real(low=0.0), "drift_nu_mean": real(low=0.0),
              "drift_nu_std": real(low=0.0), "adc_bits": integer(), "t_inference_s": real(low=1.0)}

    __post_init__ = validate

    def config(self, **changes) -> AnalogConfig:
        """The crossbar configuration of these devices, with ``changes`` to any AnalogConfig field."""
        return AnalogConfig(**{**asdict(self), "t0_s": 1.0, **changes})


@dataclass(frozen=True)
class AnalogRobustness:
    """Digits SNN and demodulation transformer on analog crossbars vs ADC bits, read noise and drift, with/without HWA.

    ``devices`` gives the base point (illustrative, PCM-like noise: see :class:`Devices`); each sweep
    moves one of its fields, ``draws`` chips are programmed per point and their mean is reported.
    """

    models: tuple[str, ...] = MODELS
    digits: DigitsSweep = DigitsSweep(Ts=(8,), encodings=("rate",))
    demodulation: DemodulationSweep = DemodulationSweep(snrs_db=(10.0,), Ts=(8,), n_train=6_400, n_test=2_000)
    devices: Devices = Devices()
    adc_bits_sweep: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)
    read_noise_sweep: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1)
    drift_sweep_s: tuple[float, ...] = (1.0, 3600.0, 86_400.0, 2_592_000.0, 31_536_000.0)  # 1 s .. 1 year
    draws: int = 5  # chips programmed per point (noise draws); the mean is reported
    calibration: int = 256  # training inputs that set the converter ranges
    hwa: FitConfig = FitConfig(epochs=10, batch_size=64, lr=1e-3, seed=1)  # hardware-aware fine-tuning
    CHECKS = {"models": each(one_of(MODELS), unique=True), "digits": nested(DigitsSweep),
              "demodulation": nested(DemodulationSweep), "devices": nested(Devices),
              "adc_bits_sweep": each(integer(), unique=True), "read_noise_sweep": increasing,
              "drift_sweep_s": increasing, "draws": integer(), "calibration": integer(), "hwa": nested(FitConfig)}
    RELATIONS = (("drift_sweep_s", lambda c: c.drift_sweep_s[0] >= 1.0, "start at >= 1 s (t0), got {c.drift_sweep_s}"),
                 ("read_noise_sweep", lambda c: c.read_noise_sweep[0] >= 0.0, "be >= 0, got {c.read_noise_sweep}"))

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> AnalogRobustness:
        """The quick configs of both recipes (T=2), two points per axis, one noise draw, one HWA epoch."""
        one = FitConfig(epochs=1, batch_size=64, lr=1e-3, seed=1)
        return cls(**{"digits": DigitsSweep.quick(), "demodulation": DemodulationSweep.quick(snrs_db=(10.0,)),
                      "adc_bits_sweep": (4, 8), "read_noise_sweep": (0.0, 0.05), "drift_sweep_s": (1.0, 31_536_000.0),
                      "draws": 1, "calibration": 64, "hwa": one, **changes})

    def sweeps(self) -> dict[str, tuple]:
        """Axis (a :class:`Devices` field) -> the values it takes."""
        return {"adc_bits": self.adc_bits_sweep, "read_noise": self.read_noise_sweep,
                "t_inference_s": self.drift_sweep_s}


def tasks(config: AnalogRobustness) -> dict[str, Callable[[], Task]]:
    """Model name -> a thunk preparing its main-job task (data, model specs, quality)."""
    return {"digits": lambda: intra_task(config.digits, config.calibration),
            "demodulation": lambda: attention_task(config.demodulation, config.calibration)}


def on_chip(chip: nn.Module, quality: Callable[[nn.Module], float], calibration: torch.Tensor, draws: int,
            **setting) -> list[float]:
    """``quality`` of ``chip`` with ``setting`` (AnalogConfig fields), one value per draw: programmed
    with seed 100 + draw, calibrated on ``calibration``."""
    configure(chip, **setting)
    values = []
    for draw in range(draws):
        calibrate(program(chip, 100 + draw), calibration)
        values.append(quality(chip.eval()))
    return values


@recipe(AnalogRobustness)
def run_analog_robustness(config: AnalogRobustness, runner: Runner) -> Results:
    """Table "base": at the devices' base point, per task (its model) and training, the mean quality, each draw's (values),
    the digital model's and the change in points; table "rows": {"task", "model", "metric", "training", "axis",
    "setting", "mean", "min", "max", "draws", "digital"} per swept point; artifact "plots": one PNG
    per axis in the run folder (none without one), where ``models/`` holds each digital and hardware-aware model."""
    thunks = tasks(config)
    for name in config.models:
        task = thunks[name]()
        _, label, cls, kwargs = next(m for m in task.models if m[3]["spiking"])  # the first spiking model
        digital = runner.train(f"{name} digital", (cls, kwargs), task.fit, task.x, task.y, seed=task.fit.seed).model
        reference = task.quality(digital)
        hwa = runner.train(f"{name} hardware-aware",
                           lambda: analog(digital, config.devices.config(train_noise=True, train_quantisation=True)),
                           config.hwa, task.x, task.y, seed=config.hwa.seed, spec=(cls, kwargs)).model
        calibration = task.x[:config.calibration]
        for training, chip in (("digital", analog(digital, config.devices.config())), ("hardware-aware", hwa)):
            q = on_chip(chip, task.quality, calibration, config.draws, **asdict(config.devices))
            mean = sum(q) / len(q)
            runner.emit({"task": task.name, "model": label, "metric": task.metric, "training": training, "mean": mean,
                         "values": q, "digital": reference, "change_points": 100 * (mean - reference)}, "base")
            for axis, values in config.sweeps().items():
                for value in values:
                    q = on_chip(chip, task.quality, calibration, config.draws,
                                **{**asdict(config.devices), axis: value})
                    runner.emit({"task": task.name, "model": label, "metric": task.metric, "training": training,
                                 "axis": axis,
                                 "setting": value, "mean": sum(q) / len(q), "min": min(q), "max": max(q),
                                 "draws": len(q), "digital": reference})
    plots = [] if runner.run_dir is None else write_plots(runner.tables.get("rows", []), runner.run_dir)
    return runner.results(plots=plots)


def sweep_figure(rows: list[dict], axis: str):
    """Mean quality (min..max over draws as a band) against ``axis``, one panel per task, one line per
    training (digital, hardware-aware), the digital model's value dashed."""
    from matplotlib.figure import Figure

    from .report import _grid

    rows = [r for r in rows if r["axis"] == axis]
    models = list(dict.fromkeys(r["task"] for r in rows))
    nrows, ncols = _grid(len(models))
    fig = Figure(figsize=(5.2 * ncols, 4.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax, model in zip(axes.flat, models):
        mine = [r for r in rows if r["task"] == model]
        for i, training in enumerate(dict.fromkeys(r["training"] for r in mine)):
            line = [r for r in mine if r["training"] == training]
            xs = [r["setting"] for r in line]
            ax.plot(xs, [r["mean"] for r in line], marker="os"[i % 2], color=f"C{i}",
                    label=f"{training} training (mean of {line[0]['draws']} draws)")
            ax.fill_between(xs, [r["min"] for r in line], [r["max"] for r in line], color=f"C{i}", alpha=0.2)
        ax.axhline(mine[0]["digital"], color="k", ls="--", lw=0.8, label="digital model, no crossbar")
        if axis == "t_inference_s":
            ax.set_xscale("log")
        ax.set_xlabel(AXES[axis], fontsize=10)
        ax.set_ylabel(mine[0]["metric"] + (" (lower is better)" if mine[0]["metric"].startswith("SER") else ""),
                      fontsize=10)
        ax.set_title(f"{mine[0]['model']}, {model}", fontsize=11)
        ax.tick_params(labelsize=9)
        ax.legend(fontsize=8)
    return fig


def write_plots(rows: list[dict], run_dir: Path) -> list[Path]:
    """``analog_<axis>.png`` per swept axis under ``run_dir``."""
    from .report import DPI

    paths = []
    for axis in dict.fromkeys(r["axis"] for r in rows):
        path = Path(run_dir) / f"analog_{axis}.png"
        sweep_figure(rows, axis).savefig(path, dpi=DPI)
        paths.append(path)
    return paths
