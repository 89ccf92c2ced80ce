"""Quality metrics of trained models, one home: accuracy, symbol error rate, bits per byte, spike rate,
mean IoU of a segmentation.

Each metric takes the model and held-out tensors, runs it in eval mode without gradients in
batches, and returns a Python float.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .accounting import count


def _paired(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    _checks.tensor("x", x, min_dim=1)
    _checks.tensor("y", y, min_dim=1)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    _checks.positive_int("batch_size", batch_size)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Argmax class of ``model(x)`` over its last axis, computed in batches (model left in eval mode)."""
    _checks.tensor("x", x, min_dim=1)
    _checks.positive_int("batch_size", batch_size)
    model.eval()
    return torch.cat([model(xb).argmax(-1) for xb in x.split(batch_size)])


def error_rate(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of decisions in ``predicted`` that differ from ``labels`` (same shape)."""
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted and labels must have one shape, got {tuple(predicted.shape)} "
                         f"and {tuple(labels.shape)}")
    return (predicted != labels).double().mean().item()


def symbol_error_rate(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of wrong symbol decisions (a demodulator's SER)."""
    return error_rate(predicted, labels)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of argmax predictions of ``model`` on ``x`` equal to ``y``."""
    _paired(x, y, batch_size)
    return int((predict(model, x, batch_size) == y).sum()) / y.numel()


@torch.no_grad()
def bits_per_byte(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-byte cross-entropy in bits: sum of -log2 p(y | x) over all positions / their count."""
    _paired(x, y, batch_size)
    model.eval()
    nats = sum(F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), reduction="sum").item()
               for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    model.train()
    return nats / y.numel() / math.log(2)


@torch.no_grad()
def spike_rate(model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of neuron updates that emit a (nonzero) spike in one forward on ``x`` (0 without NPEs)."""
    _checks.tensor("x", x, min_dim=1)
    model.eval()
    with count(model) as c:
        model(x)
    model.train()
    return c.totals.get("spikes", 0) / max(1, c.totals.get("neuron_updates", 0))


def mean_iou(predicted: torch.Tensor, target: torch.Tensor, classes: int) -> float:
    """Mean over classes of |P & T| / |P | T|, the counts summed over every pixel of the set; a class
    absent from both ``predicted`` and ``target`` is left out of the mean."""
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target must have one shape, got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    classes = _checks.positive_int("classes", classes)
    both = torch.bincount((target * classes + predicted).flatten(), minlength=classes * classes)
    confusion = both[: classes * classes].reshape(classes, classes).double()
    inter = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - inter
    return (inter[union > 0] / union[union > 0]).mean().item()


__all__ = ["predict", "error_rate", "symbol_error_rate", "accuracy", "bits_per_byte", "spike_rate", "mean_iou"]
