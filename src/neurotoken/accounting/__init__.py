"""Energy and operation accounting: observe what ran (counter), price it (energy), compare honestly
(baselines, quantise). ``with nt.accounting.count(model, profile="cmos45") as c: model(x)``."""

from .baselines import break_even_rate, compare, quantise_int8
from .counter import DATAFLOWS, Counter, count, is_discrete
from .energy import PROFILES, MemoryLevel, Profile, energy_j, get_profile, load_profile
from .pareto import pareto_front
from .quantise import fake_quant, int8_scale, quantised_copy

__all__ = ["count", "Counter", "DATAFLOWS", "is_discrete", "PROFILES", "Profile", "MemoryLevel", "get_profile",
           "load_profile", "energy_j", "quantise_int8", "break_even_rate", "compare", "fake_quant", "int8_scale",
           "quantised_copy", "pareto_front"]
