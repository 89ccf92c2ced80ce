"""neurotoken: neuromorphic processing elements for intra- and inter-token processing."""

from . import accounting, encoding, export, hardware, mixers, models, scan, spikes, surrogate, zoo
from ._debug import debug
from .neurons import LIF, NPE, ResonateFire

__version__ = "0.1.0"
__all__ = ["spikes", "surrogate", "scan", "encoding", "export", "models", "mixers", "accounting", "hardware", "zoo",
           "LIF", "NPE", "ResonateFire", "debug"]
