"""A real-data recipe from Python: a spiking model and its conventional twin on a local copy of
CIFAR-10, Speech Commands, SHD, N-MNIST or DVS Gesture, with accuracy, energy and throughput.

    OMP_NUM_THREADS=1 .venv/bin/python examples/real_data.py shd ~/data/SHD [--device cuda] [--quick]

(The same as `neurotoken train shd --data shd=~/data/SHD --device cuda`.)
"""

import sys
from dataclasses import replace

from neurotoken.experiments import EXPERIMENTS, REAL_DATA


def show(row):
    print(f"{row['model']}: test accuracy {row['test_accuracy']:.3f}, {row['energy_j']:.3g} J/inference "
          f"({row['energy_vs_twin']:.2f}x the twin), {row['samples_per_s']:.0f} samples/s", flush=True)


def epoch(record):
    print(f"  {record['fit']} epoch {record['epoch']}: loss {record['loss']:.3f}, "
          f"{record['samples_per_s']:.0f} samples/s", flush=True)


args = sys.argv[1:]
if len(args) < 2 or args[0] not in REAL_DATA:
    sys.exit(f"usage: real_data.py {{{','.join(REAL_DATA)}}} FOLDER [--device DEVICE] [--quick]")
name, folder = args[:2]
config_class = REAL_DATA[name]
config = (config_class.quick if "--quick" in args else config_class)(path=folder)
if "--device" in args:
    config = replace(config, fit=replace(config.fit, device=args[args.index("--device") + 1]))
EXPERIMENTS.get(name).run(config, on_result=show, on_epoch=epoch)
