"""Sequential digits (64 pixels, one per step): spiking LRU-SSM classifier vs its conventional twin.

    OMP_NUM_THREADS=1 .venv/bin/python examples/seq_digits.py [--permuted] [results.json]
"""

import json
import sys

from neurotoken.experiments.seq_digits import SeqDigits, run_seq_digits


def show(row):
    rate = f", spike rate {row['spike_rate']:.3f}" if row["spike_rate"] else ""
    print(f"{row['model']} ({row['spike']} spikes{', permuted' if row['permuted'] else ''}): "
          f"test accuracy {row['test_accuracy']:.3f}, {row['train_seconds']:.0f} s{rate}", flush=True)


args = sys.argv[1:]
rows = run_seq_digits(SeqDigits(permuted="--permuted" in args), on_result=show).tables["rows"]
paths = [a for a in args if a != "--permuted"]
if paths:
    with open(paths[0], "w") as f:
        json.dump(rows, f, indent=1)
