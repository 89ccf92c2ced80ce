"""Loading + binning time against one training epoch, on N-MNIST- and SHD-shaped files written here.

    OMP_NUM_THREADS=1 .venv/bin/python examples/loader_overhead.py [folder]

Writes n synthetic samples in each real format (N-MNIST: ~4k events per 34 x 34 x 2 sample; SHD: ~7k
spikes over 700 channels), times building the binned dataset (read + bin + cache) and one epoch of
training through the Trainer (SpikingCNN on N-MNIST frames, KeywordSpotter on SHD), and prints the ratio
in wall-clock time and in this process's CPU time (steadier on a shared machine).
"""

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

import neurotoken as nt
from neurotoken.learning import FitConfig, Trainer


def write_nmnist(root: Path, n: int, events: int, rng) -> None:
    for k in range(n):
        folder = root / "Train" / str(k % 10)
        folder.mkdir(parents=True, exist_ok=True)
        x, y = rng.integers(0, 34, events), rng.integers(0, 34, events)
        t, p = np.sort(rng.integers(0, 300_000, events)), rng.integers(0, 2, events)
        rec = np.stack([x, y, (p << 7) | ((t >> 16) & 127), (t >> 8) & 255, t & 255], 1).astype(np.uint8)
        (folder / f"{k:05d}.bin").write_bytes(rec.tobytes())
    (root / "Test" / "0").mkdir(parents=True, exist_ok=True)


def write_shd(root: Path, n: int, spikes: int, rng) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split, m in (("train", n), ("test", 2)):
        with h5py.File(root / f"shd_{split}.h5", "w") as f:
            times, units = np.empty(m, dtype=object), np.empty(m, dtype=object)
            for i in range(m):
                times[i] = np.sort(rng.uniform(0, 1.4, spikes)).astype(np.float32)
                units[i] = rng.integers(0, 700, spikes).astype(np.uint16)
            f.create_dataset("spikes/times", data=times, dtype=h5py.vlen_dtype(np.float32))
            f.create_dataset("spikes/units", data=units, dtype=h5py.vlen_dtype(np.uint16))
            f.create_dataset("labels", data=np.arange(m, dtype=np.uint16) % 20)


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def measure(name: str, load, model) -> None:
    start = clocks()
    ds = load()
    loaded = clocks()
    Trainer(model, FitConfig(epochs=1, batch_size=32, lr=1e-3)).fit(ds)
    done = clocks()
    (wall, cpu), (epoch_wall, epoch_cpu) = ([b - a for a, b in zip(*pair)] for pair in ((start, loaded), (loaded, done)))
    print(f"{name}: {len(ds)} samples, loading + binning {wall:.2f} s, one epoch {epoch_wall:.2f} s "
          f"({100 * wall / epoch_wall:.1f}% of an epoch; CPU time {cpu:.2f} s / {epoch_cpu:.2f} s = "
          f"{100 * cpu / epoch_cpu:.1f}%)")


def main(folder: Path) -> None:
    rng = np.random.default_rng(0)
    n = 512
    write_nmnist(folder / "nmnist", n, 4000, rng)
    write_shd(folder / "shd", n, 7000, rng)
    torch.manual_seed(0)
    measure("N-MNIST", lambda: nt.data.nmnist(folder / "nmnist", T=10),
            nt.models.SpikingCNN(2, 10, channels=(8, 16), T=10))
    measure("SHD", lambda: nt.data.shd(folder / "shd", T=100),
            nt.models.KeywordSpotter(700, 20, hidden=(128,), time_first=True, norm="none"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
