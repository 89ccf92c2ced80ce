"""Symbol demodulation in-context: SER vs SNR and vs T, spiking transformer vs twin vs LS detector.

    .venv/bin/python examples/demodulation.py [ser_vs_snr.png]
"""

import sys

from neurotoken.experiments import DemodulationSweep, run_demodulation

config = DemodulationSweep()
rows = run_demodulation(config, on_result=lambda r: print(r["model"], r["T"], r["snr_db"], f"{r['ser']:.4f}",
                                                         flush=True)).tables["rows"]
ref = 8 if 8 in config.Ts else max(config.Ts)  # the spiking model shown against SNR
curves = {}
for r in rows:
    if r["T"] in (None, ref):
        curves.setdefault(r["model"] + (f" T={r['T']}" if r["T"] else ""), {})[r["snr_db"]] = r["ser"]
print("\nsymbol error rate vs SNR (dB)")
print(f"{'model':<26}" + "".join(f"{s:>9g}" for s in config.snrs_db))
for name, ser in curves.items():
    print(f"{name:<26}" + "".join(f"{ser[s]:>9.4f}" for s in config.snrs_db))
snr = 10.0 if 10.0 in config.snrs_db else config.snrs_db[-1]
print(f"\nspiking transformer SER vs T at {snr:g} dB")
for r in rows:
    if r["model"] == "spiking transformer" and r["snr_db"] == snr:
        print(f"T={r['T']:<4} {r['ser']:.4f}   (trained in {r['train_seconds']:.0f} s)")

import matplotlib  # noqa: E402  (lazy: only the example plots)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, ser in curves.items():
    ax.semilogy(list(ser), list(ser.values()), marker="o", label=name)
ax.set_xlabel("SNR (dB)")
ax.set_ylabel("symbol error rate")
ax.set_title(f"in-context {config.scheme.upper()} demodulation, {config.pilots} pilots")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "demodulation.png", dpi=120)
