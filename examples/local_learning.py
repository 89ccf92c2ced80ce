"""Learning without backpropagation on digits: STDP receptive fields, three-factor rules.

    .venv/bin/python examples/local_learning.py [out_dir]

Writes stdp_receptive_fields.png and three_factor_reward.png to out_dir (default: runs/local).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurotoken.experiments.local_rules import (STDPDigits, ThreeFactorDigits,  # noqa: E402
                                                run_stdp_digits, run_three_factor_digits)

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/local")
out.mkdir(parents=True, exist_ok=True)

stdp = run_stdp_digits(STDPDigits())
accuracy = stdp.tables["rows"][0]["label_assignment_accuracy"]
print(f"STDP winner-take-all (200 neurons): label-assignment test accuracy {accuracy:.4f}")
fig, axes = plt.subplots(10, 20, figsize=(10, 7))
fig.subplots_adjust(hspace=0.5)
for ax, w, label in zip(axes.flat, stdp.artifacts["weights"], stdp.artifacts["labels"]):
    ax.imshow(w.reshape(8, 8), cmap="gray_r")
    ax.set_title(int(label), fontsize=6)
    ax.axis("off")
fig.suptitle("STDP receptive fields (title: assigned label)")
fig.savefig(out / "stdp_receptive_fields.png", dpi=120)

fig, ax = plt.subplots(figsize=(6, 3.5))
for mode in ("teacher", "bandit"):
    cfg = ThreeFactorDigits(mode=mode, epochs=10 if mode == "teacher" else 20)
    result = run_three_factor_digits(cfg)
    test_accuracy = result.tables["rows"][0]["test_accuracy"]
    print(f"three-factor ({mode}): test accuracy {test_accuracy:.4f}")
    curve = result.artifacts["reward_curve"]
    k = 50
    smooth = [sum(curve[i:i + k]) / k for i in range(len(curve) - k)]
    ax.plot(smooth, label=f"{mode} (test acc {test_accuracy:.2f})")
ax.set_xlabel("training batch (16 images)")
ax.set_ylabel("reward (moving average)")
ax.legend()
fig.tight_layout()
fig.savefig(out / "three_factor_reward.png", dpi=120)
print(f"plots written to {out}")
