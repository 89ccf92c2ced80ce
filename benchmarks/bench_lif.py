"""Every case of `neurotoken bench` (issue 8): multi-step LIF (fused / sequential / snnTorch /
SpikingJelly / Norse), the reset-free spiking SSM at L = 4096 and 64, the subtract-reset LIF, AND
attention scores and sparse attention. Timings mean something only on an idle machine.

    .venv/bin/python benchmarks/bench_lif.py --threads 2 --out runs/bench
"""

from neurotoken.cli import app

if __name__ == "__main__":
    app(["bench", *__import__("sys").argv[1:]])
