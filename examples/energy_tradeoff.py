"""Digits: accuracy vs energy per inference (SNN per encoding and T, and the ReLU twin) under each
hardware profile, and energy per inference vs batch size. Writes CSVs and a PNG (log-x, Pareto
front marked).

    OMP_NUM_THREADS=1 .venv/bin/python examples/energy_tradeoff.py [out_dir]
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurotoken.experiments.tradeoff import TradeoffSweep, run_tradeoff  # noqa: E402


def write_csv(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)


out = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
out.mkdir(parents=True, exist_ok=True)
rows, batching = run_tradeoff(TradeoffSweep(), on_result=lambda r: print(
    f"{r['model']:5} {r['encoding']:7} T={r['T']} {r['profile']:7} acc={r['test_accuracy']:.3f} "
    f"E={r['energy_j'] * 1e9:.2f} nJ"))
write_csv(out / "digits_tradeoff.csv", rows)
write_csv(out / "digits_batching.csv", batching)

profiles = list(dict.fromkeys(r["profile"] for r in rows))
fig, axes = plt.subplots(1, len(profiles) + 1, figsize=(5 * (len(profiles) + 1), 4))
for ax, p in zip(axes, profiles):
    mine = [r for r in rows if r["profile"] == p and not r["unpriced"]]
    for enc in dict.fromkeys(r["encoding"] for r in mine):
        pts = [r for r in mine if r["encoding"] == enc]
        ax.plot([r["energy_j"] for r in pts], [r["test_accuracy"] for r in pts], "o-" if enc != "-" else "s",
                label="ReLU twin (fp32)" if enc == "-" else f"SNN {enc}")
        for r in pts:
            if r["T"] is not None:
                ax.annotate(f"T={r['T']}", (r["energy_j"], r["test_accuracy"]), fontsize=7)
    if p == "cmos45":
        twin8 = next(r["twin_int8_j"] for r in mine if "twin_int8_j" in r)
        twin_acc = next(r["test_accuracy"] for r in mine if r["T"] is None)
        ax.plot([twin8], [twin_acc], "D", label="ReLU twin (int8 priced)")
    front = sorted((r["energy_j"], r["test_accuracy"]) for r in mine if r["pareto"])
    ax.plot(*zip(*front), "k--", lw=1, label="Pareto front")
    ax.set(xscale="log", xlabel="energy per inference [J]", ylabel="test accuracy", title=f"digits, {p}")
    ax.legend(fontsize=7)
ax = axes[-1]
for name in dict.fromkeys(r["model"] for r in batching):
    pts = [r for r in batching if r["model"] == name]
    ax.plot([r["batch_size"] for r in pts], [r["energy_j"] for r in pts], "o-", label=name)
ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="energy per inference [J] (cmos45)",
       title="batching amortises weight traffic")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "digits_tradeoff.png", dpi=120)
print(f"wrote {out}/digits_tradeoff.csv, digits_batching.csv, digits_tradeoff.png")
