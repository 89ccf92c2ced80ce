"""Zeroth-order (SPSA) vs BPTT on the same digits SNN: accuracy, and peak step memory vs T.

    OMP_NUM_THREADS=1 .venv/bin/python examples/zeroth_order_vs_bptt.py
"""

from neurotoken.experiments.zeroth_order import main

main()
