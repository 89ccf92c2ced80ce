"""Training: surrogate-gradient BPTT trainer on tensors, Datasets or DataLoaders, on any device and
precision (bptt.py), its seeded batch plan (sampler.py) and atomic checkpoints (checkpoint.py)."""

from . import bptt
from .bptt import FitConfig, Trainer, fit_classifier
from .checkpoint import CheckpointError

__all__ = ["FitConfig", "Trainer", "fit_classifier", "CheckpointError"]


def __getattr__(name: str):
    if name == "accuracy":  # moved to neurotoken.metrics: the old name warns for one release
        return bptt.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
