"""Embedded datasets: shipped with a package or generated; nothing is downloaded."""

from .digits import load_digits

__all__ = ["load_digits"]
