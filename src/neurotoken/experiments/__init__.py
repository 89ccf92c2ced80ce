"""Experiments: small dataclass configs in one registry (``neurotoken list`` shows them)."""

from .digits import DigitsSweep, run_digits_sweep

__all__ = ["DigitsSweep", "run_digits_sweep"]
