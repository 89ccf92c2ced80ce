"""Embedded datasets: shipped with a package or generated; nothing is downloaded."""

from . import listops, qam, text
from .digits import load_digits
from .listops import load_listops
from .seq_digits import load_seq_digits
from .text import load_text

__all__ = ["load_digits", "load_listops", "load_seq_digits", "load_text", "listops", "qam", "text"]
