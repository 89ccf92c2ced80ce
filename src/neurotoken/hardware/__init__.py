"""Hardware co-design: chips as data, mapping a model onto cores, estimates on real inputs.
``nt.hardware.estimate(model, "loihi", x)``."""

from .analog import AnalogConfig, AnalogConv2d, AnalogLinear, analog, calibrate, program
from .chips import AnalogTiles, Chip, chips, load_chip
from .estimate import Estimate, estimate
from .mapping import Mapping, Placement, map

__all__ = ["Chip", "AnalogTiles", "chips", "load_chip", "map", "Mapping", "Placement", "estimate", "Estimate",
           "analog", "AnalogConfig", "AnalogLinear", "AnalogConv2d", "calibrate", "program"]
