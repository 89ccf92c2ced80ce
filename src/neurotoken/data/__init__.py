"""Datasets: embedded generators (nothing downloaded) and loaders of the published formats read from a
local folder (cifar10, nmnist, dvs_gesture, shd, ssc, speech_commands, text_corpus)."""

from . import collate, listops, qam, text
from .cifar10 import cifar10
from .corpus import text_corpus
from .events import dvs_gesture, nmnist
from .shd import shd, ssc
from .speech_commands import speech_commands
from .digits import load_digits
from .listops import load_listops
from .seq_digits import load_seq_digits
from .text import load_text
from . import baselines
from .docstrings import docstring_modules, mask_bytes
from .keywords import keywords
from .pathfinder import pathfinder
from .scenes import scenes

__all__ = ["cifar10", "nmnist", "dvs_gesture", "shd", "ssc", "speech_commands", "text_corpus", "collate", "load_digits", "load_listops", "load_seq_digits", "load_text", "listops", "qam", "text", "baselines", "docstring_modules", "mask_bytes", "keywords", "pathfinder", "scenes"]
