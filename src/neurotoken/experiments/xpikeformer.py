"""Xpikeformer-style comparison on in-context demodulation (eq. (75)): the spiking transformer with
analog in-memory projections and stochastic-computing attention against the softmax transformer on a
digital accelerator. Symbol error rate and energy per inference side by side (eq. (67) on each
chip), every priced component listed; the spiking model with digital weights on the digital
accelerator is the third row, separating what the crossbars change from what the spikes change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..hardware import analog, estimate, load_chip
from ..hardware.analog import AnalogConfig
from ..metrics import predict, symbol_error_rate
from . import demodulation
from .analog_robustness import Devices, on_chip
from .config import accepted, integer, nested, validate
from .demodulation import DemodulationSweep
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class Xpikeformer:
    """Spiking transformer (analog projections, stochastic attention) vs softmax transformer on a digital accelerator: SER and energy.

    ``demodulation`` trains both (its first T for the spiking model; ``score`` is the spiking
    attention's score, stochastic computing by default); ``devices`` are the illustrative, PCM-like
    noise assumptions of the analog chip's tiles, ``draws`` chips are programmed and their mean SER
    reported; energy is estimated on ``count_batch`` held-out sequences.
    """

    demodulation: DemodulationSweep = DemodulationSweep(Ts=(8,), score="stochastic", n_train=6_400, n_test=2_000)
    analog_chip: str = "analog_pcm"
    digital_chip: str = "digital_accelerator"
    devices: Devices = Devices()
    draws: int = 5
    calibration: int = 256  # training sequences that set the converter ranges
    count_batch: int = 64
    CHECKS = {"demodulation": nested(DemodulationSweep), "analog_chip": accepted(load_chip),
              "digital_chip": accepted(load_chip), "devices": nested(Devices), "draws": integer(),
              "calibration": integer(), "count_batch": integer()}
    RELATIONS = (("analog_chip", lambda c: load_chip(c.analog_chip).analog is not None,
                  "be an analog chip (one with an [analog] section), got {c.analog_chip!r}"),)

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> Xpikeformer:
        """The demodulation quick config (T=2, stochastic attention), one noise draw, 8 counted sequences."""
        return cls(**{"demodulation": DemodulationSweep.quick(score="stochastic"), "draws": 1, "calibration": 64,
                      "count_batch": 8, **changes})

    def crossbars(self) -> AnalogConfig:
        """The analog chip's tile size and DAC with :attr:`devices`' noise and ADC."""
        tiles = load_chip(self.analog_chip).analog
        return self.devices.config(tile_rows=tiles.tile_rows, tile_cols=tiles.tile_cols, dac_bits=tiles.dac_bits)


@recipe(Xpikeformer)
def run_xpikeformer(config: Xpikeformer, runner: Runner) -> Results:
    """Table "rows": model, chip, SER per test SNR (``ser_<snr>db``, mean over draws on the analog
    chip), energy_j_per_inference, energy_vs_softmax, latency_s, fits, cores, unpriced; table
    "breakdown": model, chip, component, energy_j (per inference) and its share; artifact "plots"."""
    c = config.demodulation
    tests = demodulation.held_out(c)
    x, y = demodulation.train_set(c.n_train, c.pilots, c.train_snrs_db, c.scheme)
    T = c.Ts[0]
    softmax = runner.train("softmax transformer", ("SpikingTransformer", demodulation.model_kwargs(c, T, False)),
                           c.fit, x, y, seed=c.fit.seed).model
    spiking = runner.train("spiking transformer", ("SpikingTransformer", demodulation.model_kwargs(c, T, True)),
                           c.fit, x, y, seed=c.fit.seed).model
    crossbar = analog(spiking, config.crossbars())

    def ser(model, test, on_analog: bool) -> float:
        """SER on ``test``: on the analog chip the mean over ``draws`` programmed chips."""
        values = on_chip(model, lambda m: symbol_error_rate(predict(m, test.tokens, 1000), test.labels),
                         x[:config.calibration], config.draws, **asdict(config.devices)) if on_analog else \
            [symbol_error_rate(predict(model, test.tokens, 1000), test.labels)]
        return sum(values) / len(values)

    name = f"spiking transformer (T={T}, {c.score} attention)"
    models = (("softmax transformer", softmax, config.digital_chip, False), (name, spiking, config.digital_chip, False),
              (f"{name}, analog projections", crossbar, config.analog_chip, True))
    sample = tests[0].tokens[:config.count_batch]
    reference = None
    for label, model, chip, on_analog in models:
        sers = {f"ser_{snr:g}db": ser(model, test, on_analog) for snr, test in zip(c.snrs_db, tests)}
        e = estimate(model.eval(), chip, sample)
        if reference is None:  # the softmax transformer's
            reference = e.energy_j_per_inference
        runner.emit({"model": label, "chip": chip, **sers, "energy_j_per_inference": e.energy_j_per_inference,
                     "energy_vs_softmax": e.energy_j_per_inference / reference if reference else float("nan"),
                     "latency_s": e.to_dict()["latency_s"], "fits": e.mapping.fits, "cores": e.mapping.cores,
                     "unpriced": ", ".join(e.unpriced) or "-"})
        total = sum(e.energy_breakdown_j.values())
        for component, joules in e.energy_breakdown_j.items():
            runner.emit({"model": label, "chip": chip, "component": component, "energy_j": joules,
                         "share": joules / total if total else float("nan")}, "breakdown")
    plots = [] if runner.run_dir is None else [write_breakdown(runner.tables["breakdown"], runner.tables["rows"],
                                                                   runner.run_dir)]
    return runner.results(plots=plots)


def breakdown_figure(rows: list[dict], models: list[dict]):
    """Energy per inference of each model (``models``: the "rows" table), one horizontal stacked bar
    split by priced component (``rows``: the "breakdown" table; nJ), what the chip leaves unpriced under its name."""
    from matplotlib.figure import Figure

    unpriced = {m["model"]: m["unpriced"] for m in models}
    models = list(dict.fromkeys(r["model"] for r in rows))
    components = list(dict.fromkeys(r["component"] for r in rows if r["energy_j"] > 0))
    fig = Figure(figsize=(9.0, 1.2 + 0.9 * len(models)), layout="constrained")
    ax = fig.subplots()
    left = [0.0] * len(models)
    for i, component in enumerate(components):
        widths = [1e9 * next((r["energy_j"] for r in rows if r["model"] == m and r["component"] == component), 0.0)
                  for m in models]
        ax.barh(range(len(models)), widths, left=left, color=f"C{i % 10}", label=component)
        left = [a + b for a, b in zip(left, widths)]
    for j, total in enumerate(left):
        ax.annotate(f"{total:.3g} nJ", (total, j), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(range(len(models)), [f"{m}\non {next(r['chip'] for r in rows if r['model'] == m)}"
                                       + ("" if unpriced[m] == "-" else f"\n(not priced: {unpriced[m]})") for m in models],
                  fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.2 * max(left, default=1.0) or 1.0)
    ax.set_xlabel("energy per inference (nJ), by priced component", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def write_breakdown(rows: list[dict], models: list[dict], run_dir: Path) -> Path:
    """:func:`breakdown_figure` as ``xpikeformer_energy.png`` under ``run_dir``."""
    from .report import DPI

    path = Path(run_dir) / "xpikeformer_energy.png"
    breakdown_figure(rows, models).savefig(path, dpi=DPI)
    return path
