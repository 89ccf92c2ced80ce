"""One paradigm of the main job, ready to train: the contract between a row's builder (in the
experiment that owns its data and models) and the main job that trains, judges and counts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from ..learning.bptt import FitConfig


@dataclass
class Task:
    """One paradigm, ready to train: models ``(role, label, model class, kwargs)`` (the twin first),
    fitted by BPTT with ``fit`` on (x, y), judged by ``quality(model)``, counted on ``count_input``.
    ``fit_for(role, twin)`` (optional) gives a model its own fit instead: a FitConfig or a callable
    ``fit(model) -> losses`` (e.g. distillation from ``twin``, the trained twin; None for the twin itself).
    ``baseline`` (optional): (label, score thunk) of a non-neural model judged the same way on the same split."""

    name: str
    metric: str
    higher_is_better: bool
    unit: str  # "inference" or "token"
    models: list[tuple[str, str, str, dict]]
    fit: FitConfig
    x: torch.Tensor | Dataset
    y: torch.Tensor | None  # None when x is a Dataset of (x, y) pairs
    quality: Callable[[nn.Module], float]
    count_input: torch.Tensor
    baseline: tuple[str, Callable[[], float]] | None = None
    fit_for: Callable[[str, nn.Module | None], FitConfig | Callable[[nn.Module], list[float]]] | None = None


def to_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the device of ``model``'s parameters (as it is for a model without any)."""
    tensor = next(iter((*model.parameters(), *model.buffers())), None)
    return x if tensor is None else x.to(tensor.device)
