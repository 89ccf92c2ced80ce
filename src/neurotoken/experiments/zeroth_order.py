"""Zeroth-order (SPSA) vs BPTT on the same SNN and digits: accuracy, and peak training memory vs T."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import torch

from .. import _checks
from ..data import load_digits
from ..learning.bptt import FitConfig, Trainer
from ..metrics import accuracy
from ..learning.zeroth_order import ZOConfig, fit_zeroth_order
from ..models import SNNClassifier
from .config import each, integer, nested, validate
from .runner import Results, Runner, recipe

MODES = ("inference", "bptt", "zo")


@dataclass(frozen=True)
class ZeroOrderDigits:
    """The same SNN [64 -> hidden -> 10] trained by SPSA (two forward passes) and by BPTT."""

    hidden: int = 32
    T: int = 4
    zo: ZOConfig = ZOConfig(steps=10_000, batch_size=64, lr=1e-2, eps=1e-2)
    bptt: FitConfig = FitConfig(epochs=30, lr=5e-3)
    memory_Ts: tuple[int, ...] = (4, 16, 64)
    memory_batch: int = 256
    memory_hidden: int = 1024
    CHECKS = {"hidden": integer(), "T": integer(), "zo": nested(ZOConfig), "bptt": nested(FitConfig),
              "memory_Ts": each(integer(), min_len=0, unique=True), "memory_batch": integer(),
              "memory_hidden": integer()}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> ZeroOrderDigits:
        """200 SPSA steps and one BPTT epoch; no memory measurement (each is a fresh process)."""
        return cls(**{"zo": ZOConfig(steps=200, batch_size=64, lr=1e-2, eps=1e-2), "bptt": FitConfig(epochs=1, lr=5e-3),
                      "memory_Ts": (), **changes})


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _child(mode: str, T: int, hidden: int, batch: int) -> int:
    """In a fresh process: peak resident bytes added by one training (or inference) step."""
    torch.manual_seed(0)
    model = SNNClassifier(64, (hidden,), 10, T=T, encoding="direct")
    x, y = torch.rand(batch, 64), torch.randint(10, (batch,))
    opt = torch.optim.AdamW(model.parameters()) if mode == "bptt" else None
    params = [p for p in model.parameters()]
    model(x[:2])  # warm up allocator and kernels
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size
    base = _vm_kib("VmRSS:")
    if mode == "inference":
        with torch.no_grad():
            model(x)
    elif mode == "bptt":
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    else:
        from ..learning.zeroth_order import zo_step

        zo_step(params, lambda: torch.nn.functional.cross_entropy(model(x), y), 1, ZOConfig())
    return (_vm_kib("VmHWM:") - base) * 1024


def peak_step_bytes(mode: str, T: int, hidden: int, batch: int) -> int:
    """Peak memory of one step of ``mode`` ("inference", "bptt", "zo"), measured in a fresh process."""
    _checks.choice("mode", mode, MODES)
    code = (f"from neurotoken.experiments.zeroth_order import _child; "
            f"print(_child({mode!r}, {T}, {hidden}, {batch}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@recipe(ZeroOrderDigits)
def run_zero_order_digits(cfg: ZeroOrderDigits, runner: Runner) -> Results:
    """Accuracy of both trainers (table "rows"), then peak step memory per mode and T in MB (table "memory")."""
    data = load_digits()
    for name in ("bptt", "zo"):
        fit = cfg.bptt if name == "bptt" else lambda m: fit_zeroth_order(m, data.x_train, data.y_train, cfg.zo)
        trained = runner.train(name, ("SNNClassifier", dict(in_features=64, hidden=[cfg.hidden], classes=10, T=cfg.T,
                                                            encoding="direct")), fit,
                               data.x_train, data.y_train, seed=0)
        runner.emit({"trainer": name, "test_accuracy": accuracy(trained.model, data.x_test, data.y_test),
                     "train_seconds": trained.seconds})
    for T in cfg.memory_Ts:
        runner.emit({"T": T, **{f"{m}_mb": peak_step_bytes(m, T, cfg.memory_hidden, cfg.memory_batch) / 2**20
                                for m in MODES}}, table="memory")
    return runner.results()
