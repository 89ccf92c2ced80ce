"""Long Range Arena beyond ListOps: Pathfinder (generated as LRA generates it, 32 x 32 images flattened
to 1024 one-pixel tokens) and Image (sequential grey CIFAR-10, 1024 tokens of one channel).

Both tasks train ListOps's model pair: a :class:`~neurotoken.models.SpikingSSMClassifier` whose SSM
readouts and MLP fire memoryless multi-level spikes (eq. 7) and its conventional twin (real readouts,
GELU MLP), judged by test accuracy against chance and counted per inference like the real-data recipes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.utils.data import Dataset

from ..accounting import get_profile
from ..data import baselines, cifar10, pathfinder
from ..data.pathfinder import DIFFICULTIES, dot_gaps
from ..learning.bptt import FitConfig
from ..metrics import accuracy, spike_rate
from ..models import SSM_MIXERS
from ..models.sequence import CLASSIFIER_NORMS, CLASSIFIER_POOLS
from ..neurons import LIF
from ..spikes import SPIKES
from .config import accepted, flag, integer, items, nested, one_of, real, validate
from .listops import DT_RANGE
from .main_job import measure
from .real_data import RealData, run_real_data
from .runner import Results, Runner, recipe

SSM_CHECKS = {"d_model": integer(), "d_state": integer(), "layers": integer(), "mixer": one_of(SSM_MIXERS),
              "spike": one_of(SPIKES.names), "threshold": real(low=0.0, low_open=True),
              "dropout": real(low=0.0, high=1.0, high_open=True), "bidirectional": flag,
              "pool": one_of(CLASSIFIER_POOLS), "norm": one_of(CLASSIFIER_NORMS),
              "dt_range": items(real(low=0.0, low_open=True), real(low=0.0, low_open=True)),
              "fit": nested(FitConfig), "profile": accepted(get_profile), "count_batch": integer()}


def ssm_kwargs(config, classes: int, spiking: bool) -> dict:
    """Keyword arguments of the :class:`SpikingSSMClassifier` of an LRA config (one-channel tokens):
    readouts and MLP fire a memoryless NPE of ``config.spike`` at ``config.threshold``; ``dt_range``
    goes to the selective mixer; ``bidirectional`` adds a reversed scan per block, ``pool`` reads the tokens,
    ``norm`` is the blocks' and the last norm's kind."""
    neuron = LIF(beta=0.0, threshold=config.threshold, reset="none", spike=config.spike).config()
    options = {"dt_range": list(config.dt_range)} if config.mixer == "selective" else {}
    return dict(in_features=1, d_model=config.d_model, d_state=config.d_state, layers=config.layers,
                classes=classes, spiking=spiking, neuron=neuron, mixer=config.mixer, dropout=config.dropout,
                bidirectional=config.bidirectional, pool=config.pool, norm=config.norm, **options)


@dataclass(frozen=True)
class PathfinderLRA:
    """LRA Pathfinder (32 x 32 -> 1024 tokens): spiking SSM classifier and its twin vs chance, both
    bidirectional with batch norm and max pooling over the tokens."""

    n_train: int = 3000
    n_test: int = 1000
    size: int = 32
    difficulty: str = "easy"
    data_seed: int = 0
    d_model: int = 32
    d_state: int = 16
    layers: int = 2
    mixer: str = "lru"
    spike: str = "multilevel"  # the spiking model's spike kind
    threshold: float = 1.0
    dropout: float = 0.0
    bidirectional: bool = True  # a reversed scan beside the forward one in every block, as S4/S5 on LRA
    pool: str = "max"  # over the tokens before the readout: "mean" or "max"
    norm: str = "batch"  # "batch" (per channel over batch and tokens, as S4/S5 on LRA) or "layer" (per token)
    dt_range: tuple[float, float] = (1e-3, 1e-1)  # the selective mixer's
    fit: FitConfig = FitConfig(epochs=10, batch_size=32, lr=3e-3, warmup_steps=20)
    profile: str = "cmos45"
    count_batch: int = 16  # test images counted per model
    CHECKS = {"n_train": integer(), "n_test": integer(), "size": integer(16),
              "difficulty": one_of(DIFFICULTIES), "data_seed": integer(0), **SSM_CHECKS}
    RELATIONS = DT_RANGE

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> PathfinderLRA:
        """64 images, one block of d_model 8, one epoch."""
        return cls(**{"n_train": 64, "n_test": 32, "d_model": 8, "d_state": 4, "layers": 1, "count_batch": 4,
                      "fit": FitConfig(epochs=1, batch_size=32, lr=3e-3), **changes})


@recipe(PathfinderLRA)
def run_pathfinder(config: PathfinderLRA, runner: Runner) -> Results:
    """Rows {"model", "neuromorphic", "test_accuracy", "vs_chance", ...}: the majority class (chance on
    balanced labels), logistic regression on the pixels, a depth-3 decision tree on where the dots sit
    (their distance and token gap, ignoring the contours), the twin, then the spiking model with energy
    per inference on ``count_batch`` test images."""
    data = pathfinder(config.n_train + config.n_test, config.size, config.difficulty, config.data_seed)
    n = config.n_train
    x, y, x_test, y_test = data.x[:n], data.y[:n], data.x[n:], data.y[n:]
    chance = baselines.majority(y, y_test)
    sizes = {"train_samples": config.n_train, "test_samples": config.n_test}
    from sklearn.tree import DecisionTreeClassifier

    dot_rule = DecisionTreeClassifier(max_depth=3, random_state=0).fit(dot_gaps(x).numpy(), y.numpy())
    for name, value in (("majority class", chance),
                        ("logistic regression", baselines.logistic_regression(x, y, x_test, y_test)),
                        ("dot distance tree", float(dot_rule.score(dot_gaps(x_test).numpy(), y_test.numpy())))):
        runner.emit({"task": "pathfinder", "model": name, "neuromorphic": False, "test_accuracy": value,
                     "vs_chance": value - chance, **sizes})
    twin_energy = None
    for spiking in (False, True):
        trained = runner.train("spiking" if spiking else "twin",
                               ("SpikingSSMClassifier", ssm_kwargs(config, 2, spiking)), config.fit, x, y,
                               seed=config.fit.seed)
        model, value = trained.model, accuracy(trained.model, x_test, y_test)
        counts = measure(model, x_test[:config.count_batch], config.profile)
        twin_energy = counts["energy_j"] if twin_energy is None else twin_energy
        row = {"task": "pathfinder", "model": f"{'spiking SSM' if spiking else 'SSM twin'} ({config.mixer})",
               "neuromorphic": spiking, "test_accuracy": value, "vs_chance": value - chance, **sizes,
               "profile": config.profile, **counts, "energy_vs_twin": counts["energy_j"] / twin_energy,
               "spike_rate": spike_rate(model, x_test[:config.count_batch]), "final_loss": trained.losses[-1],
               "train_seconds": trained.seconds, "samples_per_s": trained.samples_per_s}
        if trained.model_file is not None:
            row["model_file"] = str(trained.model_file)
        runner.emit(row)
    return runner.results()


class GreySequence(Dataset):
    """CIFAR-10 images ``[32, 32, 3]`` as LRA's Image task reads them: grey levels (the mean of the
    channels) row by row, ``[1024, 1]`` tokens."""

    def __init__(self, images: Dataset):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[i]
        return image.mean(-1).reshape(-1, 1), label


@dataclass(frozen=True)
class LraImage(RealData):
    """LRA Image (sequential grey CIFAR-10, 1024 tokens): spiking SSM classifier and its twin; needs the data."""

    model: str = "SpikingSSMClassifier"
    d_model: int = 32
    d_state: int = 16
    mixer: str = "lru"
    spike: str = "multilevel"
    threshold: float = 1.0
    dropout: float = 0.0
    bidirectional: bool = False
    pool: str = "mean"
    norm: str = "layer"
    dt_range: tuple[float, float] = (1e-3, 1e-1)
    DATA: ClassVar[str] = "cifar10"
    CHECKS = {**RealData.CHECKS, "model": one_of(("SpikingSSMClassifier",)), **SSM_CHECKS}
    RELATIONS = RealData.RELATIONS + DT_RANGE

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> LraImage:
        """One block of d_model 8, one epoch of batches of 8."""
        return cls(**{"d_model": 8, "d_state": 4, "layers": 1, "count_batch": 4,
                      "fit": FitConfig(epochs=1, batch_size=8, lr=3e-3), **changes})

    def dataset(self, train: bool) -> Dataset:
        return GreySequence(cifar10(self.path, train))

    def model_kwargs(self, in_features: int, spiking: bool) -> dict:
        return ssm_kwargs(self, self.classes, spiking)


run_lra_image = recipe(LraImage)(run_real_data)

__all__ = ["PathfinderLRA", "run_pathfinder", "LraImage", "run_lra_image", "GreySequence", "ssm_kwargs"]
