"""The main job (``neurotoken run``): for every paradigm, a conventional model and its neuromorphic
twin trained on embedded data, then one Table-II-style comparison of quality and energy.

Paradigms: intra-token (SNN on digits), inter-token SSM (spiking SSM on pixel-sequence digits),
inter-token attention (spiking transformer on in-context symbol demodulation) and language
(SpikeGPT-style byte LM). Each model is counted by :func:`neurotoken.accounting.count` on held-out
data under one profile: energy per inference (per token for the LM), ACs, MACs, sparsity, bytes.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .. import _checks
from ..accounting import count, get_profile, is_discrete
from ..data import load_digits, load_seq_digits
from ..encoding import ENCODERS
from ..data.qam import constellation, demodulation
from ..data.text import load_text
from ..learning.bptt import FitConfig, Trainer
from ..metrics import accuracy, bits_per_byte, predict, symbol_error_rate
from ..neurons import RESETS
from ..zoo import build, save_model
from .demodulation import train_set
from .seq_digits import SeqDigits, seq_digits_kwargs

PARADIGMS = ("intra-token", "inter-token-ssm", "inter-token-attention", "language")


@dataclass(frozen=True)
class IntraToken:
    """SNN [64 -> hidden -> 10] on digits (rate-coded along T) vs the ReLU MLP twin."""

    T: int = 8
    encoding: str = "rate"
    hidden: tuple[int, ...] = (256,)
    reset: str = "zero"  # exact in NIR (`neurotoken export`); "subtract" has no exact NIR node
    fit: FitConfig = FitConfig(epochs=30, batch_size=64, lr=5e-3)

    def __post_init__(self):
        _checks.positive_int("T", self.T)
        ENCODERS.get(self.encoding)
        _checks.choice("reset", self.reset, RESETS)


@dataclass(frozen=True)
class InterTokenAttention:
    """Spiking transformer (AND scores, T steps) vs softmax twin: demodulate a QPSK symbol in-context."""

    T: int = 8
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    pilots: int = 16
    train_snrs_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    test_snr_db: float = 10.0
    n_train: int = 6_400
    n_test: int = 2_000
    fit: FitConfig = FitConfig(epochs=4, batch_size=128, lr=3e-3)


@dataclass(frozen=True)
class Language:
    """SpikeGPT-style byte LM (RWKV reading spikes) vs its RWKV twin on the standard-library docstrings."""

    d_model: int = 128
    layers: int = 2
    L: int = 64
    train_windows: int = 12_800  # one epoch of 400 steps: a short run of the `language` experiment's recipe
    val_windows: int = 512
    path: str | None = None
    fit: FitConfig = FitConfig(epochs=1, batch_size=32, lr=3e-3, weight_decay=0.0, warmup_steps=20, grad_clip=1.0)


@dataclass(frozen=True)
class MainJob:
    """Every paradigm: conventional model vs neuromorphic twin, quality and energy side by side."""

    paradigms: tuple[str, ...] = PARADIGMS
    profile: str = "cmos45"
    count_batch: int = 64  # inputs (sequences) counted per model
    seed: int = 0
    intra: IntraToken = field(default_factory=IntraToken)
    ssm: SeqDigits = field(default_factory=SeqDigits)
    attention: InterTokenAttention = field(default_factory=InterTokenAttention)
    language: Language = field(default_factory=Language)

    def __post_init__(self):
        for i, name in enumerate(self.paradigms):
            _checks.choice(f"paradigms[{i}]", name, PARADIGMS)
        get_profile(self.profile)  # unknown profiles fail before any training
        _checks.positive_int("count_batch", self.count_batch)

    @classmethod
    def quick(cls, **changes) -> MainJob:
        """Tiny sizes and one epoch each: checks the machinery in seconds, figures mean little."""
        one = FitConfig(epochs=1, batch_size=64, lr=3e-3)
        return cls(intra=IntraToken(T=2, hidden=(32,), fit=one),
                   ssm=SeqDigits(d_model=16, d_state=8, layers=1, fit=one),
                   attention=InterTokenAttention(T=2, d_model=16, layers=1, n_train=640, n_test=200, fit=one),
                   language=Language(d_model=32, layers=1, L=32, train_windows=128, val_windows=32,
                                     fit=replace(Language.fit, batch_size=32)),
                   count_batch=8, **changes)


@dataclass
class Task:
    """One paradigm, ready to train: model class ``model`` built with ``kwargs(spiking)``,
    ``train(model)``, ``quality(model)``."""

    name: str
    metric: str
    higher_is_better: bool
    unit: str  # "inference" or "token"
    model: str
    kwargs: Callable[[bool], dict]
    train: Callable[[nn.Module], None]
    quality: Callable[[nn.Module], float]
    count_input: torch.Tensor
    names: tuple[str, str]  # (conventional, neuromorphic)


def _fit(fit: FitConfig, x: torch.Tensor, y: torch.Tensor) -> Callable[[nn.Module], None]:
    def train(model: nn.Module) -> None:
        Trainer(model, fit).fit(x, y)
    return train


def _intra(c: IntraToken, n: int) -> Task:
    data = load_digits()
    return Task("digits (intra-token)", "accuracy", True, "inference",
                "SNNClassifier", lambda spiking: dict(in_features=64, hidden=list(c.hidden), classes=10, T=c.T,
                                                      encoding=c.encoding if spiking else "direct", spiking=spiking,
                                                      **({"reset": c.reset} if spiking else {})),
                _fit(c.fit, data.x_train, data.y_train), lambda m: accuracy(m, data.x_test, data.y_test),
                data.x_test[:n], ("ReLU MLP", f"SNN ({c.encoding}, T={c.T})"))


def _ssm(c: SeqDigits, n: int) -> Task:
    data = load_seq_digits(c.permuted, c.permutation_seed, seed=c.split_seed)
    return Task("seq. digits (SSM)", "accuracy", True, "inference",
                "SpikingSSMClassifier", lambda spiking: seq_digits_kwargs(c, spiking),
                _fit(c.fit, data.x_train, data.y_train), lambda m: accuracy(m, data.x_test, data.y_test),
                data.x_test[:n], ("LRU SSM", f"spiking LRU SSM ({c.spike})"))


def _attention(c: InterTokenAttention, n: int) -> Task:
    x, y = train_set(c.n_train, c.pilots, c.train_snrs_db)
    test = demodulation(c.n_test, c.pilots, c.test_snr_db, seed=1000)

    def ser(model: nn.Module) -> float:
        return symbol_error_rate(predict(model, test.tokens, 500), test.labels)

    return Task("QPSK demod. (attention)", f"SER @ {c.test_snr_db:g} dB", False,
                "inference",
                "SpikingTransformer", lambda spiking: dict(in_features=x.shape[-1], d_model=c.d_model, heads=c.heads,
                                                           layers=c.layers, classes=len(constellation("qpsk")), T=c.T,
                                                           spiking=spiking),
                _fit(c.fit, x, y), ser, test.tokens[:n], ("softmax transformer", f"spiking transformer (T={c.T})"))


def _language(c: Language, n: int) -> Task:
    data = load_text(c.path, c.L)
    pick = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(0))[:c.train_windows]
    x_val, y_val = data.x_val[:c.val_windows], data.y_val[:c.val_windows]
    return Task("text (language)", "bits/byte", False, "token",
                "SpikingLM", lambda spiking: dict(d_model=c.d_model, layers=c.layers, backbone="spikegpt",
                                                  spiking=spiking),
                _fit(c.fit, data.x_train[pick], data.y_train[pick]), lambda m: bits_per_byte(m, x_val, y_val),
                x_val[:n], ("RWKV", "SpikeGPT-style (spiking projections)"))


def tasks(config: MainJob) -> dict[str, Callable[[], Task]]:
    """Paradigm name -> a thunk preparing its data (so only the chosen paradigms load data)."""
    n = config.count_batch
    return {"intra-token": lambda: _intra(config.intra, n), "inter-token-ssm": lambda: _ssm(config.ssm, n),
            "inter-token-attention": lambda: _attention(config.attention, n),
            "language": lambda: _language(config.language, n)}


def spike_raster(model: nn.Module, x: torch.Tensor, max_neurons: int = 128) -> dict | None:
    """Spikes of the first module of ``model`` to emit discrete values (or to keep its spike train
    in ``last_spikes``, as spiking mixers do), for the single input ``x[:1]``: events
    [[step, neuron], ...] along its leading non-batch axis (virtual time or tokens)."""
    seen: list[tuple[str, torch.Tensor]] = []

    def hook(name):
        def record(m, inputs, out):
            for s in (out, getattr(m, "last_spikes", None)):
                if not seen and isinstance(s, torch.Tensor) and s.is_floating_point() and is_discrete(s) and s.any():
                    seen.append((name, s))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model.eval()
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    if not seen:
        return None
    name, s = seen[0]
    s = s.select(next(d for d in range(s.dim()) if s.shape[d] == 1), 0)  # drop the batch of one
    s = s.reshape(s.shape[0], -1)[:, :max_neurons] if s.dim() > 1 else s[:, None]
    events = s.nonzero().tolist()
    return {"layer": name, "steps": s.shape[0], "neurons": s.shape[1], "events": events,
            "values": [s[t, i].item() for t, i in events]}


def _measure(task: Task, model: nn.Module, profile: str) -> dict:
    model.eval()
    with torch.no_grad(), count(model, profile) as c:
        model(task.count_input)
    units = c.tokens if task.unit == "token" else c.inferences
    per = c.per_token if task.unit == "token" else c.per_inference
    return {"energy_j": c.energy_j / units, "acs": per.get("acs", 0), "macs": per.get("macs", 0),
            "sparsity": c.sparsity, "bytes": per.get("bytes", 0), "spikes": per.get("spikes", 0),
            "layer_energy_j": {k: v / units for k, v in c.layer_energy_j.items()}, "unpriced": c.unpriced}


def run_main_job(config: MainJob = MainJob(), on_result: Callable[[dict], None] | None = None,
                 on_start: Callable[[str], None] | None = None, models_dir: str | Path | None = None) -> dict:
    """Train and count every paradigm of ``config``; returns {"profile", "rows", "rasters"}.

    Rows (one per model): paradigm, task, model, neuromorphic, metric, value, higher_is_better,
    unit, energy_j, acs, macs, sparsity, bytes, spikes, layer_energy_j, unpriced (operations the
    profile gives no energy for, left out of energy_j), energy_vs_twin (nan if the twin's is 0),
    train_seconds (and model_file, the weights saved with :func:`neurotoken.zoo.save_model`,
    when ``models_dir`` is given).
    """
    rows, rasters, thunks = [], {}, tasks(config)
    for name in config.paradigms:
        if on_start is not None:
            on_start(name)
        task = thunks[name]()
        for spiking, label in zip((False, True), task.names):
            torch.manual_seed(config.seed)
            kwargs = task.kwargs(spiking)
            model = build(task.model, kwargs)
            start = time.perf_counter()
            task.train(model)
            seconds = time.perf_counter() - start
            row = {"paradigm": name, "task": task.name, "model": label, "neuromorphic": spiking,
                   "metric": task.metric, "value": task.quality(model), "higher_is_better": task.higher_is_better,
                   "unit": task.unit, **_measure(task, model, config.profile), "train_seconds": seconds}
            if not spiking:
                twin_energy = row["energy_j"]
            row["energy_vs_twin"] = row["energy_j"] / twin_energy if twin_energy else float("nan")
            if spiking:
                rasters[name] = spike_raster(model, task.count_input)
            if models_dir is not None:
                path = Path(models_dir) / f"{name}-{'neuromorphic' if spiking else 'conventional'}.safetensors"
                row["model_file"] = str(save_model(path, task.model, kwargs, model))
            rows.append(row)
            if on_result is not None:
                on_result(row)
    return {"profile": config.profile, "rows": rows, "rasters": rasters}

