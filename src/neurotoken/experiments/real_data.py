"""Real-data recipes: CIFAR-10, Speech Commands, SHD, SSC, N-MNIST and DVS Gesture from a local folder
(read by :mod:`neurotoken.data`'s loaders), each a spiking model and its conventional twin with
test accuracy, energy counted on test inputs and training throughput.

The model family is a config field. Images and event cameras default to ``SpikingCNN`` (images
``[H, W, C]`` encoded along tau, event frames ``[T, H, W, 2]`` entering as they are), audio and
spike-train sets to ``KeywordSpotter`` (log-mel frames or spike-count bins on the NPEs' time axis).
Also selectable: ``SNNClassifier`` reads one flat frame per sample (pixels, log-mel frames, or event
counts summed over the bins), encoded along its own virtual time axis (eq. 13);
``SpikingSSMClassifier`` reads a token sequence ``[L, features]`` (image rows, log-mel frames, event bins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..accounting import get_profile
from ..data import cifar10, dvs_gesture, nmnist, shd, speech_commands, ssc
from ..encoding import ENCODERS
from ..learning.bptt import FitConfig
from .config import accepted, each, existing_folder, flag, integer, nested, one_of, optional, validate
from .main_job import measure
from .runner import Results, Runner, recipe

LAYOUTS = {"SNNClassifier": "frames", "SpikingSSMClassifier": "tokens", "KeywordSpotter": "tokens",
           "SpikingCNN": "images"}  # model -> the input it reads


@dataclass(frozen=True)
class Batch:
    """Collate ``(sample, label)`` pairs into one model input: ``frames`` ``[B, features]`` (a sample's
    event bins summed first when ``events``), ``tokens`` ``[B, L, features]`` (the first axis of a
    sample is L) or ``images`` ``[B, H, W, C]`` (event frames time first: ``[T, B, H, W, C]``);
    labels ``[B]`` int64."""

    layout: str
    events: bool

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*batch)
        x = torch.stack(xs)
        if self.layout == "frames":
            x = (x.sum(1) if self.events else x).flatten(1)
        elif self.layout == "tokens":
            x = x.flatten(2)
        elif self.events:
            x = x.transpose(0, 1)
        return x, torch.as_tensor(ys, dtype=torch.long)


@dataclass(frozen=True)
class RealData:
    """Fields every real-data recipe shares; each dataset's config subclasses it."""

    path: str | None = None  # the dataset's folder (required to run; `--data NAME=PATH` sets it)
    model: str = "SNNClassifier"  # or "SpikingSSMClassifier", "KeywordSpotter", "SpikingCNN"
    hidden: tuple[int, ...] = (256,)  # SNNClassifier, KeywordSpotter
    T: int = 8  # SNNClassifier's and SpikingCNN's virtual time steps per image
    encoding: str = "direct"  # their input encoding
    channels: tuple[int, ...] = (16, 32)  # SpikingCNN
    d_model: int = 64  # SpikingSSMClassifier
    d_state: int = 16
    layers: int = 2
    fit: FitConfig = FitConfig(epochs=10, batch_size=64, lr=1e-3)
    train_samples: int | None = None  # the first samples of the training set; None: all
    test_samples: int | None = None
    profile: str = "cmos45"
    count_batch: int = 16  # test samples counted per model
    DATA: ClassVar[str] = ""  # the loader's name, as `--data NAME=PATH` spells it
    CLASSES: ClassVar[int] = 10
    EVENTS: ClassVar[bool] = False  # samples lead with a time axis of event bins
    IN_UNIT_RANGE: ClassVar[bool] = False  # inputs lie in [0, 1] (a spike encoder takes them)
    IMAGES: ClassVar[bool] = False  # samples are [H, W, C] images or [T, H, W, C] event frames
    CHECKS = {"path": optional(existing_folder), "model": one_of(LAYOUTS), "hidden": each(integer()),
              "T": integer(), "encoding": one_of(ENCODERS.names), "channels": each(integer()), "d_model": integer(), "d_state": integer(),
              "layers": integer(), "fit": nested(FitConfig), "train_samples": optional(integer()),
              "test_samples": optional(integer()), "profile": accepted(get_profile), "count_batch": integer()}

    RELATIONS = (("encoding", lambda c: c.encoding == "direct" or c.IN_UNIT_RANGE,
                  "be 'direct' for these inputs (a spike encoder needs values in [0, 1]), got {c.encoding!r}"),
                 ("model", lambda c: c.model != "SpikingCNN" or c.IMAGES,
                  "read token sequences here (SpikingCNN takes images or event frames), got {c.model!r}"))

    __post_init__ = validate

    def require_data(self) -> None:
        """Refuse to run without ``path``."""
        if self.path is None:
            raise ValueError(f"{type(self).__name__} needs its data folder: pass --data {self.DATA}=PATH "
                             "(or set path in the config)")

    @classmethod
    def data_fields(cls) -> dict[str, str]:
        """`--data` names this config accepts -> the field each sets."""
        return {cls.DATA: "path"}

    @property
    def classes(self) -> int:
        return self.CLASSES

    def dataset(self, train: bool) -> Dataset:
        """The training or test split from ``path``."""
        raise NotImplementedError

    def model_kwargs(self, in_features: int, spiking: bool) -> dict:
        """Keyword arguments of ``model`` (spiking or its twin) for inputs of ``in_features``."""
        encoding = self.encoding if spiking else "direct"
        if self.model == "SNNClassifier":
            return dict(in_features=in_features, hidden=list(self.hidden), classes=self.classes, T=self.T,
                        encoding=encoding, spiking=spiking)
        if self.model == "SpikingCNN":
            return dict(in_channels=in_features, classes=self.classes, channels=list(self.channels), T=self.T,
                        encoding=encoding, spiking=spiking)
        if self.model == "KeywordSpotter":
            return dict(in_features=in_features, classes=self.classes, hidden=list(self.hidden),
                        norm="none" if self.EVENTS else "bn", spiking=spiking)
        return dict(in_features=in_features, d_model=self.d_model, d_state=self.d_state, layers=self.layers,
                    classes=self.classes, spiking=spiking)


def _quick(cls, changes: dict, **fields):
    """``cls`` at the quick sizes every real-data recipe shares, with ``fields`` and then ``changes``."""
    return cls(**{"hidden": (16,), "T": 2, "channels": (4, 8), "d_model": 16, "d_state": 4, "layers": 1, "count_batch": 4,
                  "fit": FitConfig(epochs=1, batch_size=8, lr=1e-3), **fields, **changes})


@dataclass(frozen=True)
class Cifar10Recipe(RealData):
    """CIFAR-10 (binary version): convolutional SNN on images vs its ReLU twin; test accuracy, energy,
    throughput."""

    model: str = "SpikingCNN"
    channels: tuple[int, ...] = (32, 64, 128)
    hidden: tuple[int, ...] = (512,)
    augment: bool = True  # random crop (padding 4) and horizontal flip, per epoch
    DATA: ClassVar[str] = "cifar10"
    IMAGES: ClassVar[bool] = True
    IN_UNIT_RANGE: ClassVar[bool] = True  # pixels in [0, 1], normalised only for direct input
    CHECKS = {**RealData.CHECKS, "augment": flag}

    @classmethod
    def quick(cls, **changes) -> Cifar10Recipe:
        """Channels (4, 8), T=2, one epoch of batches of 8."""
        return _quick(cls, changes)

    def dataset(self, train: bool) -> Dataset:
        return cifar10(self.path, train, augment=self.augment and train, normalize=self.encoding == "direct")


@dataclass(frozen=True)
class SpeechCommandsRecipe(RealData):
    """Speech Commands v2 keyword spotting (log-mel frames on the NPEs' time axis): recurrent SNN vs its
    twin."""

    model: str = "KeywordSpotter"
    keywords: int = 12  # 12 (10 keywords + unknown + silence) or 35 (every word)
    n_mels: int = 40
    DATA: ClassVar[str] = "speech_commands"
    CHECKS = {**RealData.CHECKS, "keywords": one_of((12, 35)), "n_mels": integer()}

    @classmethod
    def quick(cls, **changes) -> SpeechCommandsRecipe:
        """16 hidden units on 16 mels, one epoch of batches of 8."""
        return _quick(cls, changes, n_mels=16)

    @property
    def classes(self) -> int:
        return self.keywords

    def dataset(self, train: bool) -> Dataset:
        return speech_commands(self.path, "training" if train else "testing", self.keywords, n_mels=self.n_mels)


@dataclass(frozen=True)
class EventRecipe(RealData):
    """Fields of the event recipes: the number of bins on the virtual time axis."""

    bins: int = 20
    EVENTS: ClassVar[bool] = True
    CHECKS = {**RealData.CHECKS, "bins": integer()}


@dataclass(frozen=True)
class ShdRecipe(EventRecipe):
    """Spiking Heidelberg Digits (700-channel spike counts per bin as events): recurrent SNN vs its twin."""

    model: str = "KeywordSpotter"
    bins: int = 100
    DATA: ClassVar[str] = "shd"
    CLASSES: ClassVar[int] = 20

    @classmethod
    def quick(cls, **changes) -> ShdRecipe:
        """20 bins, 16 hidden units, one epoch of batches of 8."""
        return _quick(cls, changes, bins=20)

    def dataset(self, train: bool) -> Dataset:
        return shd(self.path, train, T=self.bins)


@dataclass(frozen=True)
class SscRecipe(ShdRecipe):
    """Spiking Speech Commands (700-channel spike counts per bin as events): recurrent SNN vs its twin."""

    DATA: ClassVar[str] = "ssc"
    CLASSES: ClassVar[int] = 35

    def dataset(self, train: bool) -> Dataset:
        return ssc(self.path, "training" if train else "testing", T=self.bins)


@dataclass(frozen=True)
class NmnistRecipe(EventRecipe):
    """N-MNIST (event frames [T, 34, 34, 2]): convolutional SNN vs its ReLU twin."""

    model: str = "SpikingCNN"
    bins: int = 10
    DATA: ClassVar[str] = "nmnist"
    IMAGES: ClassVar[bool] = True

    @classmethod
    def quick(cls, **changes) -> NmnistRecipe:
        """4 bins, channels (4, 8), one epoch of batches of 8."""
        return _quick(cls, changes, bins=4)

    def dataset(self, train: bool) -> Dataset:
        return nmnist(self.path, train, T=self.bins)


@dataclass(frozen=True)
class DvsGestureRecipe(EventRecipe):
    """IBM DVS Gesture (event frames, 128 x 128 pooled by downsample): convolutional SNN vs its ReLU twin."""

    model: str = "SpikingCNN"
    downsample: int = 4
    DATA: ClassVar[str] = "dvs_gesture"
    CLASSES: ClassVar[int] = 11
    IMAGES: ClassVar[bool] = True
    CHECKS = {**EventRecipe.CHECKS, "downsample": integer()}

    @classmethod
    def quick(cls, **changes) -> DvsGestureRecipe:
        """4 bins pooled by 8, channels (4, 8), one epoch of batches of 8."""
        return _quick(cls, changes, bins=4, downsample=8)

    def dataset(self, train: bool) -> Dataset:
        return dvs_gesture(self.path, train, T=self.bins, downsample=self.downsample)


def _first(dataset: Dataset, n: int | None) -> Dataset:
    return dataset if n is None or n >= len(dataset) else Subset(dataset, range(n))


def loader_accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    """Fraction of correct argmax predictions over every batch of ``loader`` (on the model's device)."""
    device = next(model.parameters()).device
    right = total = 0
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            right += int((model(x.to(device)).argmax(-1) == y.to(device)).sum())
            total += len(y)
    return right / total


def run_real_data(config: RealData, runner: Runner) -> Results:
    """Train the conventional twin, then the spiking model, on the training split; one row per model
    with test accuracy, energy per inference on ``count_batch`` test samples and throughput."""
    config.require_data()
    batch = Batch(LAYOUTS[config.model], config.EVENTS)
    train, test = _first(config.dataset(True), config.train_samples), _first(config.dataset(False), config.test_samples)
    test_loader = DataLoader(test, batch_size=config.fit.batch_size, collate_fn=batch)
    features = batch([train[0]])[0].shape[-1]
    twin_energy = None
    for spiking in (False, True):
        trained = runner.train("spiking" if spiking else "twin", (config.model, config.model_kwargs(features, spiking)),
                               config.fit, train, seed=config.fit.seed, collate_fn=batch)
        model = trained.model
        count_x, count_y = batch([test[i] for i in range(min(config.count_batch, len(test)))])
        counts = measure(model, count_x, config.profile, inferences=len(count_y))
        twin_energy = counts["energy_j"] if twin_energy is None else twin_energy
        row = {"dataset": config.DATA, "model": f"{config.model} ({'spiking' if spiking else 'twin'})",
               "neuromorphic": spiking, "test_accuracy": loader_accuracy(model, test_loader),
               "train_samples": len(train), "test_samples": len(test), "profile": config.profile, **counts,
               "energy_vs_twin": counts["energy_j"] / twin_energy if twin_energy else float("nan"),
               "final_loss": trained.losses[-1], "train_seconds": trained.seconds,
               "samples_per_s": trained.samples_per_s, "tokens_per_s": trained.tokens_per_s}
        if trained.model_file is not None:
            row["model_file"] = str(trained.model_file)
        runner.emit(row)
    return runner.results()


RECIPES = {"cifar10": Cifar10Recipe, "speech-commands": SpeechCommandsRecipe, "shd": ShdRecipe, "ssc": SscRecipe,
           "nmnist": NmnistRecipe, "dvs-gesture": DvsGestureRecipe}
RUNS = {name: recipe(cls)(run_real_data) for name, cls in RECIPES.items()}
