"""Training: surrogate-gradient BPTT (bptt.py)."""

from .bptt import accuracy, fit_classifier

__all__ = ["fit_classifier", "accuracy"]
