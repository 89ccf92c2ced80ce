"""Digits: accuracy vs energy per inference (SNN per encoding and T, and the ReLU twin, each fp32 and
int8) under each (profile, dataflow) pricing, the break-even event rate of the int8 SNNs against the
int8 twin, and energy per inference vs batch size. Writes CSVs and two PNGs (log-x, Pareto fronts).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python examples/energy_tradeoff.py [out_dir]
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurotoken.experiments.tradeoff import TradeoffSweep, run_tradeoff  # noqa: E402


def write_csv(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)


def accuracy_vs_energy(ax, rows, title):
    for (model, enc, prec) in dict.fromkeys((r["model"], r["encoding"], r["precision"]) for r in rows):
        pts = [r for r in rows if (r["model"], r["encoding"], r["precision"]) == (model, enc, prec)]
        label = f"ReLU twin {prec}" if model == "twin" else f"SNN {enc} {prec}"
        style = ("s" if prec == "fp32" else "D") if model == "twin" else ("o-" if prec == "fp32" else "^--")
        ax.plot([r["energy_j"] for r in pts], [r["test_accuracy"] for r in pts], style, label=label)
        for r in pts:
            if r["T"] is not None and prec == "fp32":
                ax.annotate(f"T={r['T']}", (r["energy_j"], r["test_accuracy"]), fontsize=7)
    front = sorted((r["energy_j"], r["test_accuracy"]) for r in rows if r["pareto"])
    ax.plot(*zip(*front), "k:", lw=1.5, label="Pareto front")
    ax.set(xscale="log", xlabel="energy per inference [J]", ylabel="test accuracy", title=title)
    ax.legend(fontsize=6)


def break_even(ax, rows, title):
    """E(r) = energy_j + (r / event_rate - 1) event_energy_j of each int8 SNN against the int8 twin."""
    twin = next(r for r in rows if r["model"] == "twin" and r["precision"] == "int8")
    r_axis = np.logspace(-3, 0, 200)
    for r in rows:
        if r["model"] == "SNN" and "break_even_rate" in r and r["encoding"] == "rate":
            (line,) = ax.plot(r_axis, r["energy_j"] + (r_axis / r["event_rate"] - 1) * r["event_energy_j"],
                              lw=1, label=f"T={r['T']}: r* = " + (f"{r['break_even_rate']:.2%}"
                                                                    if r["break_even_rate"] > 0 else "never"))
            ax.plot([r["event_rate"]], [r["energy_j"]], "o", color=line.get_color())
            if 0 < r["break_even_rate"] <= 1:
                ax.plot([r["break_even_rate"]], [twin["energy_j"]], "x", color=line.get_color())
    ax.axhline(twin["energy_j"], color="k", ls="--", lw=1, label="int8 twin")
    ax.set(xscale="log", yscale="log", xlabel="synaptic event rate r (o: observed, x: break-even)",
           ylabel="energy per inference [J]", title=title)
    ax.legend(fontsize=6)


out = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
out.mkdir(parents=True, exist_ok=True)
config = TradeoffSweep()
tables = run_tradeoff(config, on_result=lambda r: print(
    f"{r['model']:4} {r['precision']} {r['encoding']:6} T={r['T']} {r['profile']}/{r['dataflow']:12} "
    f"acc={r['test_accuracy']:.4f} E={r['energy_j'] * 1e9:.2f} nJ r={r['event_rate']:.3f} "
    f"r*={r.get('break_even_rate', float('nan')):.4f}", flush=True) if "precision" in r else None).tables
rows, batching = tables["tradeoff"], tables["batching"]
write_csv(out / "digits_tradeoff.csv", rows)
write_csv(out / "digits_batching.csv", batching)

pricings = [p for p in config.pricings if any(not r["unpriced"] for r in rows if (r["profile"], r["dataflow"]) == p)]
fig, axes = plt.subplots(1, len(pricings) + 1, figsize=(5 * (len(pricings) + 1), 4.2))
for ax, (p, d) in zip(axes, pricings):
    accuracy_vs_energy(ax, [r for r in rows if (r["profile"], r["dataflow"]) == (p, d) and not r["unpriced"]],
                       f"digits, {p}, {d}")
ax = axes[-1]
for name in dict.fromkeys(r["model"] for r in batching):
    pts = [r for r in batching if r["model"] == name]
    ax.plot([r["batch_size"] for r in pts], [r["energy_j"] for r in pts], "o-", label=name)
ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="energy per inference [J] (cmos45, dense_state)",
       title="batching amortises weight traffic")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "digits_tradeoff.png", dpi=110)

cmos = [p for p in config.pricings if p[0] == "cmos45"]
fig, axes = plt.subplots(1, len(cmos), figsize=(5.5 * len(cmos), 4.2), squeeze=False)
for ax, (p, d) in zip(axes[0], cmos):
    break_even(ax, [r for r in rows if (r["profile"], r["dataflow"]) == (p, d)],
               f"int8 rate SNN vs int8 twin, {p}, {d}")
fig.tight_layout()
fig.savefig(out / "digits_break_even.png", dpi=110)
print(f"wrote {out}/digits_tradeoff.csv, digits_batching.csv, digits_tradeoff.png, digits_break_even.png")
