"""The main job's intra-token rows: keyword spotting, convolutional image classification and
segmentation, each a conventional twin against its spiking model on an embedded miniature (or a real
set given by ``--data``), beside a non-neural baseline on the same split.

Miniatures: :func:`neurotoken.data.keywords` (log-mel frames of generated keywords), scikit-learn's
digits placed at a random offset on a ``canvas`` (a shift logistic regression on pixels cannot
absorb; ``canvas=8`` is the plain 8x8 set) and :func:`neurotoken.data.scenes` (mean IoU, eq. (92)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import cifar10, keywords, load_digits, scenes, speech_commands
from ..data.baselines import colour_threshold, logistic_regression
from ..data.scenes import CLASSES as SCENE_CLASSES
from ..data.speech_commands import KEYWORDS
from ..layers import NORMS
from ..learning.bptt import FitConfig
from ..metrics import accuracy, mean_iou, predict
from ..models.vision import BLOCKS
from ..spikes import SPIKES
from .config import each, existing_folder, flag, integer, items, nested, one_of, optional, real, validate
from .task import Task, to_model

SPEECH_CLASSES = len(KEYWORDS) + 2  # the keywords, unknown and silence


def _neuron(c) -> dict:
    """LIF options of the spiking model of config ``c`` (fields beta, threshold, spike)."""
    return dict(beta=c.beta, threshold=c.threshold, spike=c.spike)


_NEURON_CHECKS = {"beta": real(low=0.0, high=1.0), "threshold": real(low=0.0, low_open=True),
                  "spike": one_of(SPIKES.names)}


@dataclass(frozen=True)
class KeywordSpotting:
    """Keyword spotting (12 classes) on log-mel frames: KeywordSpotter, spiking vs its leaky-ReLU twin.

    The miniature has ``n_train`` and ``n_test`` clips per class at SNRs in ``snr_db``; ``path``
    (`--data speech_commands=PATH`) reads Speech Commands v2 instead, through the same features.
    """

    path: str | None = None
    n_train: int = 100
    n_test: int = 50
    snr_db: tuple[float, float] = (0.0, 20.0)
    n_mels: int = 40
    hop: int = 320  # samples between frames (16 kHz): 51 frames a clip
    hidden: tuple[int, ...] = (128, 128)
    recurrent: bool = False
    beta: float = 0.9
    threshold: float = 1.0
    spike: str = "multilevel"
    fit: FitConfig = FitConfig(epochs=30, batch_size=32, lr=3e-3)
    split_seed: int = 0
    CHECKS = {"path": optional(existing_folder), "n_train": integer(), "n_test": integer(),
              "snr_db": items(real(), real()), "n_mels": integer(), "hop": integer(), "hidden": each(integer()),
              "recurrent": flag, **_NEURON_CHECKS, "fit": nested(FitConfig), "split_seed": integer(0)}
    RELATIONS = (("snr_db", lambda c: c.snr_db[0] <= c.snr_db[1], "be (low, high) with low <= high, got {c.snr_db}"),)

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> KeywordSpotting:
        """Four clips per class (two to test), 16 mels, 16 hidden units, one epoch."""
        return cls(**{"n_train": 4, "n_test": 2, "n_mels": 16, "hop": 640, "hidden": (16,),
                      "fit": FitConfig(epochs=1, batch_size=16, lr=3e-3), **changes})


@dataclass(frozen=True)
class ConvImages:
    """Image classification by a SpikingCNN, spiking vs its ReLU twin: digits on a ``canvas`` (or
    CIFAR-10 with ``path``, `--data cifar10=PATH`, random crops and flips while training)."""

    path: str | None = None
    canvas: int = 10
    channels: tuple[int, ...] = (16, 32)
    block: str = "sew"
    T: int = 4
    norm: str = "bn"
    beta: float = 0.9
    threshold: float = 1.0
    spike: str = "multilevel"
    fit: FitConfig = FitConfig(epochs=10, batch_size=64, lr=3e-3)
    split_seed: int = 0
    CHECKS = {"path": optional(existing_folder), "canvas": integer(8), "channels": each(integer()),
              "block": one_of(BLOCKS), "T": integer(), "norm": one_of(NORMS), **_NEURON_CHECKS,
              "fit": nested(FitConfig), "split_seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> ConvImages:
        """Channels (4, 8), T=2, one epoch."""
        return cls(**{"channels": (4, 8), "T": 2, "fit": FitConfig(epochs=1, batch_size=64, lr=3e-3), **changes})


@dataclass(frozen=True)
class Segmentation:
    """Segmentation of generated scenes by a spiking U-Net (SpikingSegmenter) vs its ReLU twin, by mean IoU."""

    n_train: int = 900
    n_test: int = 200
    size: int = 32
    max_shapes: int = 3
    channels: tuple[int, ...] = (8, 16, 32, 32)
    T: int = 1
    beta: float = 0.9
    threshold: float = 1.0
    spike: str = "multilevel"
    fit: FitConfig = FitConfig(epochs=20, batch_size=32, lr=3e-3)
    split_seed: int = 0
    CHECKS = {"n_train": integer(), "n_test": integer(), "size": integer(16), "max_shapes": integer(),
              "channels": each(integer()), "T": integer(), **_NEURON_CHECKS, "fit": nested(FitConfig),
              "split_seed": integer(0)}
    RELATIONS = (("size", lambda c: c.size % 2 ** (len(c.channels) - 1) == 0,
                  "be a multiple of 2 ** (len(channels) - 1) (the U-Net's downsampling), got {c.size}"),)

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> Segmentation:
        """Sixty-four 16x16 scenes (eight to test), channels (4, 8), one epoch in batches of 2 (enough steps
        for batch norm's running statistics to let the spiking model fire)."""
        return cls(**{"n_train": 64, "n_test": 8, "size": 16, "channels": (4, 8),
                      "fit": FitConfig(epochs=1, batch_size=2, lr=3e-3), **changes})


def _tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (x, y) pair of ``dataset`` stacked: x [N, ...], y [N]."""
    xs, ys = zip(*DataLoader(dataset, batch_size=256))
    return torch.cat(xs), torch.cat(ys)


def _pair(twin: str, spiking: str, cls: str, kwargs) -> list[tuple[str, str, str, dict]]:
    """The twin and the spiking model of ``cls``, ``kwargs(spiking)`` each."""
    return [("twin", twin, cls, kwargs(False)), ("spiking", spiking, cls, kwargs(True))]


def kws_task(c: KeywordSpotting, n: int) -> Task:
    """The keyword-spotting row of ``c`` (logistic regression on the same log-mel frames as its
    baseline, on the miniature), counted on ``n`` test clips."""
    features = dict(n_mels=c.n_mels, hop=c.hop)
    if c.path is None:
        train = keywords(c.n_train, "training", c.split_seed, snr_db=c.snr_db, **features)
        test = keywords(c.n_test, "testing", c.split_seed, snr_db=c.snr_db, **features)
        x, y, x_test, y_test = train.features, train.labels, test.features, test.labels
        baseline = ("logistic regression", lambda: logistic_regression(x, y, x_test, y_test))
        name = "keywords (KWS)"
    else:
        x, y = speech_commands(c.path, "training", SPEECH_CLASSES, **features), None
        x_test, y_test = _tensors(speech_commands(c.path, "testing", SPEECH_CLASSES, **features))
        baseline, name = None, "Speech Commands (KWS)"
    spike = f"LIF, {c.spike}"

    def kwargs(spiking):
        return dict(in_features=c.n_mels, classes=SPEECH_CLASSES, hidden=list(c.hidden), recurrent=c.recurrent,
                    spiking=spiking, **_neuron(c))
    models = _pair("leaky ReLU net", f"spiking KWS ({spike})", "KeywordSpotter", kwargs)
    return Task(name, "accuracy", True, "inference", models, c.fit, x, y,
                lambda m: accuracy(m, to_model(m, x_test), to_model(m, y_test)), x_test[:n], baseline)


def placed_digits(canvas: int, seed: int = 0):
    """scikit-learn's digits as images ``[N, canvas, canvas, 1]``, each 8x8 digit at a uniform random
    offset (drawn from ``seed``, per split), over the split of :func:`~neurotoken.data.load_digits`."""
    data = load_digits(seed=seed)
    generator = torch.Generator().manual_seed(seed)

    def place(x: torch.Tensor) -> torch.Tensor:
        offsets = torch.randint(0, canvas - 7, (len(x), 2), generator=generator)
        out = x.new_zeros(len(x), canvas, canvas)
        for r, q in offsets.unique(dim=0).tolist():
            chosen = (offsets == torch.tensor([r, q])).all(1)
            out[chosen, r: r + 8, q: q + 8] = x[chosen].view(-1, 8, 8)
        return out[..., None]
    return place(data.x_train), data.y_train, place(data.x_test), data.y_test


def conv_task(c: ConvImages, n: int) -> Task:
    """The convolutional row of ``c`` (logistic regression on the pixels as its baseline, on the
    miniature), counted on ``n`` test images."""
    if c.path is None:
        x, y, x_test, y_test = placed_digits(c.canvas, c.split_seed)
        baseline = ("logistic regression", lambda: logistic_regression(x, y, x_test, y_test))
        name, classes = f"digits {c.canvas}x{c.canvas} (conv)", 10
    else:
        x, y = cifar10(c.path, True, augment=True, normalize=True, seed=c.split_seed), None
        x_test, y_test = _tensors(cifar10(c.path, False, normalize=True))
        baseline, name, classes = None, "CIFAR-10 (conv)", 10

    def kwargs(spiking):
        return dict(in_channels=x_test.shape[-1], classes=classes, channels=list(c.channels), T=c.T,
                    norm=c.norm, block=c.block, spiking=spiking, **(_neuron(c) if spiking else {}))
    models = _pair("CNN", f"SpikingCNN ({c.block}, {c.spike}, T={c.T})", "SpikingCNN", kwargs)
    return Task(name, "accuracy", True, "inference", models, c.fit, x, y,
                lambda m: accuracy(m, to_model(m, x_test), to_model(m, y_test)), x_test[:n], baseline)


def segmentation_task(c: Segmentation, n: int) -> Task:
    """The segmentation row of ``c``: training scenes from seed 2 ``split_seed``, test scenes from
    2 ``split_seed`` + 1, mean IoU against per-pixel colour thresholding, counted on ``n`` test scenes."""
    classes = len(SCENE_CLASSES)
    train, test = (scenes(k, c.size, 2 * c.split_seed + i, max_shapes=c.max_shapes)
                   for i, k in enumerate((c.n_train, c.n_test)))

    def kwargs(spiking):
        return dict(in_channels=3, classes=classes, channels=list(c.channels), T=c.T, spiking=spiking,
                    **(_neuron(c) if spiking else {}))

    def quality(model) -> float:
        return mean_iou(predict(model, to_model(model, test.images), 64).cpu(), test.masks, classes)
    models = _pair("U-Net", f"spiking U-Net ({c.spike}, T={c.T})", "SpikingSegmenter", kwargs)
    baseline = ("colour threshold", lambda: colour_threshold(train.images, train.masks, test.images, test.masks, classes))
    return Task(f"scenes {c.size}x{c.size} (segmentation)", "mean IoU", True, "inference", models, c.fit,
                train.images, train.masks, quality, test.images[:n], baseline)


__all__ = ["KeywordSpotting", "ConvImages", "Segmentation", "kws_task", "conv_task", "segmentation_task",
           "placed_digits"]
