"""Training: surrogate-gradient BPTT trainer (bptt.py) and atomic checkpoints (checkpoint.py)."""

from .bptt import FitConfig, Trainer, accuracy, fit_classifier
from .checkpoint import CheckpointError

__all__ = ["FitConfig", "Trainer", "fit_classifier", "accuracy", "CheckpointError"]
