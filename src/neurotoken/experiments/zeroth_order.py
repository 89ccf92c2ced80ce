"""Zeroth-order (SPSA) vs BPTT on the same SNN and digits: accuracy, and peak training memory vs T."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import torch

from .. import _checks
from ..data import load_digits
from ..learning.bptt import FitConfig, Trainer
from ..metrics import accuracy
from ..learning.zeroth_order import ZOConfig, fit_zeroth_order
from ..models import SNNClassifier

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

    def __post_init__(self):
        _checks.positive_int("hidden", self.hidden)
        _checks.positive_int("T", self.T)


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


def run_zero_order_digits(cfg: ZeroOrderDigits = ZeroOrderDigits()) -> dict:
    """Accuracy of both trainers, then peak step memory per mode and T (MB)."""
    data = load_digits()
    result = {}
    for name in ("bptt", "zo"):
        torch.manual_seed(0)
        model = SNNClassifier(64, (cfg.hidden,), 10, T=cfg.T, encoding="direct")
        start = time.perf_counter()
        if name == "bptt":
            Trainer(model, cfg.bptt).fit(data.x_train, data.y_train)
        else:
            fit_zeroth_order(model, data.x_train, data.y_train, cfg.zo)
        result[f"{name}_accuracy"] = accuracy(model, data.x_test, data.y_test)
        result[f"{name}_seconds"] = time.perf_counter() - start
    result["memory_mb"] = [{"T": T, **{m: peak_step_bytes(m, T, cfg.memory_hidden, cfg.memory_batch) / 2**20
                                       for m in MODES}} for T in cfg.memory_Ts]
    return result


def main() -> None:
    print(json.dumps(run_zero_order_digits(), indent=1))
