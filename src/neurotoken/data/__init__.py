"""Embedded datasets: shipped with a package or generated; nothing is downloaded."""

from . import qam, text
from .digits import load_digits
from .seq_digits import load_seq_digits
from .text import load_text

__all__ = ["load_digits", "load_seq_digits", "load_text", "qam", "text"]
