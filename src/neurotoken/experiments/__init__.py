"""Experiments: small dataclass configs in one registry (``neurotoken list`` shows them).

Each entry maps a name to (config dataclass, run function); the config's docstring is its
one-line description.
"""

from typing import NamedTuple

from .._registry import Registry
from .demodulation import DemodulationSweep, run_demodulation
from .digits import DigitsSweep, run_digits_sweep
from .language import LanguageModels, run_language
from .listops import ListOpsShort, run_listops
from .main_job import MainJob, run_main_job
from .seq_digits import SeqDigits, run_seq_digits
from .local_rules import STDPDigits, ThreeFactorDigits, run_stdp_digits, run_three_factor_digits
from .tradeoff import TradeoffSweep, run_tradeoff
from .zeroth_order import ZeroOrderDigits, run_zero_order_digits


class Experiment(NamedTuple):
    config: type
    run: object

    @property
    def description(self) -> str:
        return (self.config.__doc__ or "").strip().splitlines()[0]


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
EXPERIMENTS.register("main")(Experiment(MainJob, run_main_job))
EXPERIMENTS.register("demodulation")(Experiment(DemodulationSweep, run_demodulation))
EXPERIMENTS.register("digits")(Experiment(DigitsSweep, run_digits_sweep))
EXPERIMENTS.register("language")(Experiment(LanguageModels, run_language))
EXPERIMENTS.register("seq-digits")(Experiment(SeqDigits, run_seq_digits))
EXPERIMENTS.register("listops")(Experiment(ListOpsShort, run_listops))
EXPERIMENTS.register("energy-tradeoff")(Experiment(TradeoffSweep, run_tradeoff))
EXPERIMENTS.register("stdp-digits")(Experiment(STDPDigits, run_stdp_digits))
EXPERIMENTS.register("three-factor-digits")(Experiment(ThreeFactorDigits, run_three_factor_digits))
EXPERIMENTS.register("zeroth-order-digits")(Experiment(ZeroOrderDigits, run_zero_order_digits))

__all__ = ["EXPERIMENTS", "Experiment", "MainJob", "run_main_job", "DemodulationSweep", "run_demodulation",
           "DigitsSweep", "run_digits_sweep",
           "TradeoffSweep", "run_tradeoff",
           "STDPDigits", "run_stdp_digits", "ThreeFactorDigits", "run_three_factor_digits",
           "ZeroOrderDigits", "run_zero_order_digits", "LanguageModels", "run_language",
           "ListOpsShort", "run_listops", "SeqDigits", "run_seq_digits"]
