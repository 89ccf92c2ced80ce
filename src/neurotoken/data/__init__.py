"""Embedded datasets: shipped with a package or generated; nothing is downloaded."""

from . import qam
from .digits import load_digits
from .seq_digits import load_seq_digits

__all__ = ["load_digits", "load_seq_digits", "qam"]
