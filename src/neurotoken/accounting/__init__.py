"""Energy and operation accounting: observe what ran (counter), price it (energy), compare honestly
(baselines). ``with nt.accounting.count(model, profile="cmos45") as c: model(x)``."""

from .baselines import break_even_rate, compare, quantise_int8
from .counter import Counter, count, is_discrete
from .energy import PROFILES, MemoryLevel, Profile, energy_j, get_profile, load_profile

__all__ = ["count", "Counter", "is_discrete", "PROFILES", "Profile", "MemoryLevel", "get_profile",
           "load_profile", "energy_j", "quantise_int8", "break_even_rate", "compare"]
