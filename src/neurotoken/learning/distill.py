"""Knowledge distillation: a spiking student trained on the softened outputs (and optionally the
hidden states) of a teacher, typically its conventional twin (``spiking=False``), eq. (83).

    L = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y) + w MSE(h_s, h_t)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..data.docstrings import IGNORE


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0,
                 student_hidden: torch.Tensor | None = None, teacher_hidden: torch.Tensor | None = None,
                 hidden_weight: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)) per row of logits [..., classes], averaged
    over the rows (those where ``mask`` [...] is true), plus ``hidden_weight`` MSE(student_hidden,
    teacher_hidden) when both are given. The teacher's tensors pass no gradient."""
    _checks.tensor("student_logits", student_logits, min_dim=1, finite=False)
    _checks.tensor("teacher_logits", teacher_logits, min_dim=1, finite=False)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    T = _checks.number("T", T, low=0.0, low_open=True)
    if (student_hidden is None) != (teacher_hidden is None):
        raise ValueError("student_hidden and teacher_hidden must be given together (or neither)")
    if mask is not None:
        _checks.tensor("mask", mask)
        if mask.dtype != torch.bool or mask.shape != student_logits.shape[:-1]:
            raise ValueError(f"mask must be a boolean tensor of shape {tuple(student_logits.shape[:-1])} "
                             f"(the logits' rows), got {mask.dtype} {tuple(mask.shape)}")
    log_s = F.log_softmax(student_logits / T, -1)
    log_t = F.log_softmax(teacher_logits.detach() / T, -1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    if mask is None:
        loss = T * T * kl.mean()
    else:
        loss = T * T * (kl * mask).sum() / mask.sum().clamp_min(1)
    if student_hidden is None:
        return loss
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(f"student_hidden and teacher_hidden must have the same shape, got "
                         f"{tuple(student_hidden.shape)} and {tuple(teacher_hidden.shape)}")
    weight = _checks.number("hidden_weight", hidden_weight, low=0.0)
    return loss + weight * F.mse_loss(student_hidden, teacher_hidden.detach())


class Distillation:
    """A :class:`~neurotoken.learning.Trainer` ``loss_fn``: alpha :func:`distill_loss` from ``teacher``
    (run in eval mode without gradients) + (1 - alpha) cross-entropy on the integer labels y [...]
    of logits [..., classes] (positions labelled IGNORE = -100 skipped, and left out of the
    distillation too unless ``transfer``: then they are a transfer set, learnt from the teacher
    alone). With ``hidden_weight`` > 0 both models
    are called with ``return_hidden=True`` and return (logits, hidden). ``forward_kwargs`` go to both
    models' calls (e.g. ``task="mlm"``)."""

    def __init__(self, teacher: nn.Module, T: float = 2.0, alpha: float = 0.5, hidden_weight: float = 0.0,
                 transfer: bool = False, **forward_kwargs):
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
        self.teacher = teacher
        self.T = _checks.number("T", T, low=0.0, low_open=True)
        self.alpha = _checks.number("alpha", alpha, low=0.0, high=1.0)
        self.hidden_weight = _checks.number("hidden_weight", hidden_weight, low=0.0)
        self.transfer = _checks.flag("transfer", transfer)
        self.forward_kwargs = forward_kwargs

    def _outputs(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.hidden_weight > 0:
            return model(x, return_hidden=True, **self.forward_kwargs)
        return model(x, **self.forward_kwargs), None

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        training = self.teacher.training
        self.teacher.eval()
        try:
            with torch.no_grad():
                teacher_logits, teacher_hidden = self._outputs(self.teacher, x)
        finally:
            self.teacher.train(training)
        logits, hidden = self._outputs(model, x)
        classes = logits.shape[-1]
        labelled = y != IGNORE
        hard = F.cross_entropy(logits.reshape(-1, classes), y.reshape(-1), ignore_index=IGNORE, reduction="sum")
        hard = hard / labelled.sum().clamp_min(1)  # 0, not NaN, for a batch of the transfer set alone
        soft = distill_loss(logits, teacher_logits, self.T, hidden, teacher_hidden, self.hidden_weight,
                            None if self.transfer else labelled)
        return self.alpha * soft + (1 - self.alpha) * hard


__all__ = ["distill_loss", "Distillation"]
