"""The main job (``neurotoken run``): for every paradigm, a conventional model and its neuromorphic
twin trained on embedded data, then one Table-II-style comparison of quality and energy.

Paradigms: intra-token (SNN on digits), the intra-token rows of :mod:`.table_i` (keyword spotting,
convolutional image classification, segmentation, each beside a non-neural baseline), inter-token
SSM (spiking SSM on pixel-sequence digits),
inter-token attention (spiking transformer on in-context symbol demodulation), language
(SpikeGPT-style byte LM) and spiking-mamba (the SpikingMamba byte LM vs the Mamba LM). Each model is
counted by :func:`neurotoken.accounting.count` on held-out data under one profile: energy per
inference (per token for the LMs), ACs, MACs, sparsity, bytes; with ``hardware`` chips, each model is
also estimated on every chip (:func:`neurotoken.hardware.estimate`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import torch
from torch import nn

from .. import __version__
from ..accounting import count, get_profile, is_discrete
from ..data import load_digits, load_seq_digits
from ..hardware import estimate, load_chip
from ..learning.bptt import FitConfig
from ..metrics import accuracy, predict, symbol_error_rate
from . import bert, demodulation, digits, language, table_i
from .bert import BertDistillation
from .demodulation import DemodulationSweep
from .config import accepted, dumps, each, integer, nested, one_of, validate
from .digits import DigitsSweep
from .language import LanguageModels
from .runner import Results, Runner, recipe
from .seq_digits import SeqDigits, seq_digits_kwargs
from .table_i import ConvImages, KeywordSpotting, Segmentation
from .task import Task, to_model

PARADIGMS = ("intra-token", "keyword-spotting", "image-conv", "segmentation", "inter-token-ssm", "inter-token-attention",
             "language", "spiking-mamba", "spiking-bert")
HARDWARE_KEYS = ("paradigm", "task", "model", "neuromorphic", "metric", "value", "higher_is_better")


@dataclass(frozen=True)
class MainJob:
    """Every paradigm: conventional model vs neuromorphic twin, quality and energy side by side.

    Each paradigm's config is its experiment's (``intra`` of ``digits``, ``attention`` of
    ``demodulation``, ``language`` of ``language``): the main job trains the twin and one model
    per T (and encoding) there, and reports the SER at the first of ``attention.snrs_db``.
    """

    paradigms: tuple[str, ...] = PARADIGMS
    profile: str = "cmos45"
    count_batch: int = 64  # inputs (sequences) counted per model
    seed: int = 0
    hardware: tuple[str, ...] = ()  # chip names or .toml paths every model is estimated on
    # reset "zero" is exact in NIR (`neurotoken export`); "subtract" has no exact NIR node
    intra: DigitsSweep = DigitsSweep(Ts=(8,), encodings=("rate",), reset="zero")
    # ssm and language train less than their experiments' defaults (60 epochs; all windows, 4 epochs) so the
    # whole job fits its 10-minute budget
    ssm: SeqDigits = SeqDigits(fit=replace(SeqDigits.fit, epochs=50))
    attention: DemodulationSweep = DemodulationSweep(snrs_db=(10.0,), Ts=(8,), n_train=6_400, n_test=2_000)
    language: LanguageModels = LanguageModels(train_windows=9_600, val_windows=512,
                                              fit=replace(LanguageModels.fit, epochs=1))
    mamba: LanguageModels = LanguageModels(backbone="mamba", d_model=64, d_state=8, train_windows=6_400,
                                           val_windows=512, fit=replace(LanguageModels.fit, epochs=1))
    # SpikingBERT vs its twin: the recipe's spiking student, started from the twin's weights and distilled from it
    bert: BertDistillation = BertDistillation(seeds=(0,))
    kws: KeywordSpotting = field(default_factory=KeywordSpotting)
    conv: ConvImages = field(default_factory=ConvImages)
    segmentation: Segmentation = field(default_factory=Segmentation)
    CHECKS = {"paradigms": each(one_of(PARADIGMS), unique=True), "profile": accepted(get_profile),
              "count_batch": integer(), "seed": integer(0),
              "hardware": each(accepted(load_chip), min_len=0, unique=True), "intra": nested(DigitsSweep), "ssm": nested(SeqDigits),
              "attention": nested(DemodulationSweep), "language": nested(LanguageModels), "mamba": nested(LanguageModels),
              "bert": nested(BertDistillation), "kws": nested(KeywordSpotting), "conv": nested(ConvImages),
              "segmentation": nested(Segmentation)}

    __post_init__ = validate

    @classmethod
    def data_fields(cls) -> dict[str, str]:
        """`--data` names this config accepts -> the field each sets (the language row's text, the keyword
        spotting and convolutional rows' real sets)."""
        return {"text": "language.path", "speech_commands": "kws.path", "cifar10": "conv.path"}

    @classmethod
    def quick(cls, **changes) -> MainJob:
        """Tiny sizes and one epoch each: checks the machinery in seconds, figures mean little."""
        one = FitConfig(epochs=1, batch_size=64, lr=3e-3)
        return cls(**{"intra": DigitsSweep(Ts=(2,), encodings=("rate",), hidden=(32,), reset="zero", fit=one),
                      "ssm": SeqDigits.quick(),
                      "attention": DemodulationSweep(snrs_db=(10.0,), Ts=(2,), d_model=16, layers=1, n_train=640,
                                                     n_test=200, fit=one),
                      "language": LanguageModels.quick(),
                      "mamba": LanguageModels.quick(backbone="mamba", d_state=4),
                      "bert": BertDistillation.quick(),
                      "kws": KeywordSpotting.quick(), "conv": ConvImages.quick(), "segmentation": Segmentation.quick(),
                      "count_batch": 8, **changes})


def _moved(old: str, default):
    """A deprecated config class: ``default`` with the changes given (a single value for a key of
    ``SINGLES`` goes to its tuple field)."""
    singles = getattr(default, "SINGLES", {})

    def shim(**changes):
        warnings.warn(f"{old} is deprecated; use {type(default).__name__}"
                      + "".join(f", {new}=({k},)" for k, new in singles.items()), DeprecationWarning, stacklevel=2)
        return replace(default, **{singles.get(k, k): (v,) if k in singles else v for k, v in changes.items()})
    shim.__name__ = old
    return shim


IntraToken = _moved("IntraToken", MainJob.intra)
InterTokenAttention = _moved("InterTokenAttention", MainJob.attention)
Language = _moved("Language", MainJob.language)


def intra_task(c: DigitsSweep, n: int) -> Task:
    """The digits paradigm of ``c`` (the twin, then an SNN per encoding and T), counted on ``n`` test inputs."""
    data = load_digits(seed=c.split_seed)
    models = [(f"snn {e} T={T}" if spiking else "twin", f"SNN ({e}, T={T})" if spiking else "ReLU MLP",
               "SNNClassifier", digits.model_kwargs(c, e, T, spiking)) for e, T, spiking in c.models()]
    return Task("digits (intra-token)", "accuracy", True, "inference", models, c.fit, data.x_train, data.y_train,
                lambda m: accuracy(m, data.x_test, data.y_test), data.x_test[:n])


def _ssm(c: SeqDigits, n: int) -> Task:
    data = load_seq_digits(c.permuted, c.permutation_seed, seed=c.split_seed)
    models = [("twin", "LRU SSM", "SpikingSSMClassifier", seq_digits_kwargs(c, False)),
              ("spiking", f"spiking LRU SSM ({c.spike})", "SpikingSSMClassifier", seq_digits_kwargs(c, True))]
    return Task("seq. digits (SSM)", "accuracy", True, "inference", models, c.fit, data.x_train, data.y_train,
                lambda m: accuracy(m, data.x_test, data.y_test), data.x_test[:n])


def attention_task(c: DemodulationSweep, n: int) -> Task:
    """The demodulation paradigm of ``c`` (the softmax twin, then a spiking transformer per T), judged
    by the SER at the first test SNR, counted on ``n`` sequences."""
    x, y = demodulation.train_set(c.n_train, c.pilots, c.train_snrs_db, c.scheme)
    test = demodulation.held_out(c)[0]
    models = [(f"spiking T={T}" if spiking else "twin", f"spiking transformer (T={T})" if spiking else
               "softmax transformer", "SpikingTransformer", demodulation.model_kwargs(c, T, spiking))
              for T, spiking in c.models()]
    return Task("QPSK demod. (attention)", f"SER @ {c.snrs_db[0]:g} dB", False, "inference", models, c.fit, x, y,
                lambda m: symbol_error_rate(predict(m, test.tokens, 500), test.labels), test.tokens[:n])


def tasks(config: MainJob) -> dict[str, Callable[[], Task]]:
    """Paradigm name -> a thunk preparing its data (so only the chosen paradigms load data)."""
    n = config.count_batch
    return {"intra-token": lambda: intra_task(config.intra, n), "inter-token-ssm": lambda: _ssm(config.ssm, n),
            "inter-token-attention": lambda: attention_task(config.attention, n),
            "language": lambda: language.task(config.language, n),
            "spiking-mamba": lambda: language.task(config.mamba, n, "text (SpikingMamba)"),
            "spiking-bert": lambda: bert.task(config.bert, n),
            "keyword-spotting": lambda: table_i.kws_task(config.kws, n),
            "image-conv": lambda: table_i.conv_task(config.conv, n),
            "segmentation": lambda: table_i.segmentation_task(config.segmentation, n)}


def spike_raster(model: nn.Module, x: torch.Tensor, max_neurons: int = 128) -> dict | None:
    """Spikes of the first module of ``model`` to emit discrete values (an NPE, also inside a
    spiking mixer), for the single input ``x[:1]``: events [[step, neuron], ...] along its leading
    non-batch axis (virtual time or tokens) of the first ``max_neurons`` of its ``total_neurons``."""
    seen: list[tuple[str, torch.Tensor]] = []

    def hook(name):
        def record(m, inputs, out):
            if not seen and isinstance(out, torch.Tensor) and out.is_floating_point() and is_discrete(out) \
                    and out.any():
                seen.append((name, out))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model.eval()
            model(to_model(model, x[:1]))
    finally:
        for h in handles:
            h.remove()
    if not seen:
        return None
    name, s = seen[0]
    s = s.select(next(d for d in range(s.dim()) if s.shape[d] == 1), 0)  # drop the batch of one
    while s.dim() > 2 and s.shape[0] == 1:  # one virtual-time step (or the batch after it): step along tokens
        s = s[0]
    s = s.reshape(s.shape[0], -1) if s.dim() > 1 else s[:, None]
    total, s = s.shape[1], s[:, :max_neurons]
    events = s.nonzero().tolist()
    return {"layer": name, "steps": s.shape[0], "neurons": s.shape[1], "total_neurons": total, "events": events,
            "values": [s[t, i].item() for t, i in events]}


def measure(model: nn.Module, x: torch.Tensor, profile: str, unit: str = "inference",
            inferences: int | None = None) -> dict:
    """Counts of one forward of ``model`` on ``x`` under ``profile``, per ``unit`` ("inference" or
    "token"): energy_j, acs, macs, sparsity, bytes, spikes, layer_energy_j and unpriced. ``inferences``:
    the batch size when it is not x's first axis (time-first frames)."""
    model.eval()
    with torch.no_grad(), count(model, profile) as c:
        model(to_model(model, x))
    units = c.tokens if unit == "token" else inferences or c.inferences
    per = {k: v / units for k, v in c.totals.items()}
    return {"energy_j": c.energy_j / units, "acs": per.get("acs", 0), "macs": per.get("macs", 0),
            "sparsity": c.sparsity, "bytes": per.get("bytes", 0), "spikes": per.get("spikes", 0),
            "layer_energy_j": {k: v / units for k, v in c.layer_energy_j.items()}, "unpriced": c.unpriced}


def on_chips(model: nn.Module, x: torch.Tensor, chips: tuple[str, ...]) -> list[dict]:
    """One row per chip: ``model`` estimated on ``x`` (fits, cores, energy per inference or token,
    latency, the energy breakdown and what the chip does not price)."""
    rows = []
    model.eval()
    for chip in chips:
        e = estimate(model, chip, to_model(model, x)).to_dict()
        rows.append({"chip": chip, **{k: e[k] for k in ("per", "fits", "cores", "energy_j", "latency_s",
                                                       "energy_breakdown_j", "unpriced")}})
    return rows


@recipe(MainJob)
def run_main_job(config: MainJob, runner: Runner, on_start: Callable[[str], None] | None = None) -> Results:
    """Train and count every paradigm of ``config``: table "rows", artifacts "rasters" (per paradigm)
    and "meta" (the config as TOML, seed, package and torch versions, UTC date).

    Rows (one per model): paradigm, task, model, neuromorphic, metric, value, higher_is_better,
    unit, profile, energy_j, acs, macs, sparsity, bytes, spikes, layer_energy_j, unpriced
    (operations the profile gives no energy for, left out of energy_j), energy_vs_twin (nan if the
    twin's is 0), train_seconds, and model_file (``run_dir/models/<paradigm>-conventional`` or
    ``-neuromorphic.safetensors``, loadable by :func:`neurotoken.zoo.load_model`) when the run
    has a folder. With ``config.hardware``, table "hardware" has one row per (model, chip): paradigm,
    task, model, neuromorphic, metric, value, higher_is_better and :func:`on_chips`'s fields. The rows
    of a paradigm with a non-neural baseline also hold its name (baseline) and its score on the same
    split and metric (baseline_value).
    """
    rasters, thunks = {}, tasks(config)
    for name in config.paradigms:
        if on_start is not None:
            on_start(name)
        task, twin = thunks[name](), None
        baseline = {} if task.baseline is None else {"baseline": task.baseline[0], "baseline_value": task.baseline[1]()}
        for role, label, cls, kwargs in task.models:
            spiking = kwargs["spiking"]
            kind = ("neuromorphic" + (f" {role}" if len(task.models) > 2 else "")) if spiking else "conventional"
            fit = task.fit if task.fit_for is None else task.fit_for(role, twin)
            trained = runner.train(f"{name} {kind}", (cls, kwargs), fit, task.x, task.y, seed=config.seed)
            model = trained.model
            twin = twin if spiking else model
            row = {"paradigm": name, "task": task.name, "model": label, "neuromorphic": spiking,
                   "metric": task.metric, "value": task.quality(model), "higher_is_better": task.higher_is_better,
                   "unit": task.unit, "profile": config.profile, **measure(model, task.count_input, config.profile, task.unit),
                   "train_seconds": trained.seconds, **baseline}
            if not spiking:
                twin_energy = row["energy_j"]
            row["energy_vs_twin"] = row["energy_j"] / twin_energy if twin_energy else float("nan")
            if spiking:
                rasters.setdefault(name, spike_raster(model, task.count_input))
            if trained.model_file is not None:
                row["model_file"] = str(trained.model_file)
            runner.emit(row)
            for chip_row in on_chips(model, task.count_input, config.hardware):
                runner.emit({k: row[k] for k in HARDWARE_KEYS} | chip_row, "hardware")
    meta = {"config": dumps(config), "seed": config.seed, "neurotoken": __version__, "torch": torch.__version__,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return runner.results(rasters=rasters, meta=meta)
