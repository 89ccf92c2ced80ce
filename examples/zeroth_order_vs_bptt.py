"""Zeroth-order (SPSA) vs BPTT on the same digits SNN: accuracy, and peak step memory vs T.

    OMP_NUM_THREADS=1 .venv/bin/python examples/zeroth_order_vs_bptt.py
"""

import json

from neurotoken.experiments import ZeroOrderDigits, run_zero_order_digits

print(json.dumps(run_zero_order_digits(ZeroOrderDigits()).tables, indent=1))
