"""Bit-packed AND scores vs the float32 matmul, and event-driven sparse attention vs dense masked
attention: the attention cases of `neurotoken bench` (:func:`neurotoken.bench.attention_cases`)
alone. Single-threaded; timings mean something only on an idle machine.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention_scores.py
"""

from __future__ import annotations

import argparse

import torch

from neurotoken.bench import attention_cases, copy_bandwidth, summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for row in summarise(attention_cases(repeats=args.repeats), copy_bandwidth()):
        ratio = "" if row["peer"] else f", {row['vs_best_peer']:.2f}x the reference"
        print(f"{row['case']}: {row['impl']} {1e3 * row['median_s']:.2f} ms "
              f"({100 * row['fraction_of_bound']:.0f}% of bandwidth bound{ratio})")


if __name__ == "__main__":
    main()
