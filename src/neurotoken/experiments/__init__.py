"""Experiments: recipes only. Each is a config dataclass (with a ``quick()`` config) and a recipe
``run(config, *, on_result, run_dir, resume, progress) -> Results`` built on the shared
:class:`~neurotoken.experiments.runner.Runner`, registered here (``neurotoken list`` shows them).
The config's docstring is its one-line description.
"""

from .._registry import Registry
from .analog_robustness import AnalogRobustness, run_analog_robustness
from .bert import BertDistillation, run_bert
from .demodulation import DemodulationSweep, run_demodulation
from .digits import DigitsSweep, run_digits_sweep
from .language import LanguageModels, run_language
from .listops import ListOpsShort, run_listops
from .lra import LraImage, PathfinderLRA, run_lra_image, run_pathfinder
from .local_rules import STDPDigits, ThreeFactorDigits, run_stdp_digits, run_three_factor_digits
from .main_job import MainJob, run_main_job
from .real_data import RECIPES as REAL_DATA
from .real_data import RUNS as _REAL_DATA_RUNS
from .runner import Experiment, Recipe, Results, Runner, recipe
from .seq_digits import SeqDigits, run_seq_digits
from .tradeoff import TradeoffSweep, run_tradeoff
from .xpikeformer import Xpikeformer, run_xpikeformer
from .zeroth_order import ZeroOrderDigits, run_zero_order_digits

EXPERIMENTS: Registry[Experiment] = Registry("experiment")
for _name, _experiment in {
        "main": Experiment(MainJob, run_main_job),
        "demodulation": Experiment(DemodulationSweep, run_demodulation),
        "digits": Experiment(DigitsSweep, run_digits_sweep),
        "language": Experiment(LanguageModels, run_language),
        "seq-digits": Experiment(SeqDigits, run_seq_digits),
        "listops": Experiment(ListOpsShort, run_listops),
        "pathfinder": Experiment(PathfinderLRA, run_pathfinder),
        "spiking-bert": Experiment(BertDistillation, run_bert),
        "energy-tradeoff": Experiment(TradeoffSweep, run_tradeoff),
        "stdp-digits": Experiment(STDPDigits, run_stdp_digits),
        "three-factor-digits": Experiment(ThreeFactorDigits, run_three_factor_digits),
        "zeroth-order-digits": Experiment(ZeroOrderDigits, run_zero_order_digits),
        "analog-robustness": Experiment(AnalogRobustness, run_analog_robustness),
        "xpikeformer": Experiment(Xpikeformer, run_xpikeformer),
        **{name: Experiment(cls, _REAL_DATA_RUNS[name]) for name, cls in REAL_DATA.items()},
        "lra-image": Experiment(LraImage, run_lra_image)}.items():
    EXPERIMENTS.register(_name)(_experiment)

__all__ = ["EXPERIMENTS", "Experiment", "Recipe", "Results", "Runner", "recipe", "MainJob", "run_main_job",
           "DemodulationSweep", "run_demodulation", "DigitsSweep", "run_digits_sweep", "TradeoffSweep", "run_tradeoff",
           "STDPDigits", "run_stdp_digits", "ThreeFactorDigits", "run_three_factor_digits",
           "ZeroOrderDigits", "run_zero_order_digits", "LanguageModels", "run_language",
           "ListOpsShort", "run_listops", "SeqDigits", "run_seq_digits", "REAL_DATA",
           "AnalogRobustness", "run_analog_robustness", "Xpikeformer", "run_xpikeformer",
           "BertDistillation", "run_bert", "PathfinderLRA", "run_pathfinder", "LraImage", "run_lra_image"]
