"""Digits: SNN test accuracy for T in {1, 2, 4, 8, 16} x input encodings, against the ReLU twin.

    .venv/bin/python examples/digits_sweep.py [results.json]
"""

import json
import sys

from neurotoken.experiments import DigitsSweep, run_digits_sweep

rows = run_digits_sweep(DigitsSweep(), on_result=lambda r: print(r["model"], r["encoding"], r["T"],
                                                                  f"{r['test_accuracy']:.4f}")).tables["rows"]
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump(rows, f, indent=1)
