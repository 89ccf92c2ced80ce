"""Multi-step LIF (fused / sequential / snnTorch / SpikingJelly / Norse) and reset-free scan
benchmarks of issue 8; the same as `neurotoken bench`. Timings mean something only on an idle machine.

    .venv/bin/python benchmarks/bench_lif.py --threads 2 --out runs/bench
"""

from neurotoken.cli import app

if __name__ == "__main__":
    app(["bench", *__import__("sys").argv[1:]])
