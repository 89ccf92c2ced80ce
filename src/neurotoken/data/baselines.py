"""Non-neural baselines for the embedded miniatures; each returns its test score as a float.

``majority`` and ``logistic_regression`` score accuracy (``bag_of_bytes`` gives text its
features); ``colour_threshold`` scores the mean intersection over union of a segmentation.
Fitting runs in torch on the inputs' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..metrics import mean_iou


def _labelled(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    _checks.tensor(f"x_{name}", x, min_dim=1)
    _checks.tensor(f"y_{name}", y, min_dim=1, max_dim=1)
    if len(x) != len(y) or not len(y):
        raise ValueError(f"x_{name} and y_{name} must hold the same non-zero number of samples, "
                         f"got {len(x)} and {len(y)}")
    if y.dtype != torch.int64:
        raise TypeError(f"y_{name} must be int64 class indices, got {y.dtype}")


def majority(y_train: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy of always answering the most frequent training label."""
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        _checks.tensor(name, y, min_dim=1, max_dim=1)
    return (y_test == torch.bincount(y_train).argmax()).double().mean().item()


def logistic_regression(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                        *, weight_decay: float = 1e-2, max_iter: int = 200) -> float:
    """Test accuracy of multinomial logistic regression on the flattened, standardised inputs,
    fitted full-batch by L-BFGS on the mean cross-entropy + ``weight_decay`` * |W|^2 / 2."""
    _labelled("train", x_train, y_train)
    _labelled("test", x_test, y_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"x_train and x_test must have one sample shape, got {tuple(x_train.shape[1:])} "
                         f"and {tuple(x_test.shape[1:])}")
    weight_decay = _checks.number("weight_decay", weight_decay, low=0)
    max_iter = _checks.positive_int("max_iter", max_iter)
    xtr, xte = x_train.flatten(1).double(), x_test.flatten(1).double()
    mean, std = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    classes = int(max(y_train.max(), y_test.max())) + 1
    w = xtr.new_zeros(xtr.shape[1], classes, requires_grad=True)
    b = xtr.new_zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(xtr @ w + b, y_train) + weight_decay / 2 * w.square().sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        return ((xte @ w + b).argmax(-1) == y_test).double().mean().item()


def bag_of_bytes(ids: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """Per-row byte counts ``[N, 256]`` (float32) of byte ids ``[N, L]``, the ``pad`` byte not counted:
    order-free features for :func:`logistic_regression` on text."""
    _checks.tensor("ids", ids, min_dim=2, max_dim=2)
    if ids.dtype != torch.int64:
        raise TypeError(f"ids must be int64 byte ids, got {ids.dtype}")
    counts = ids.new_zeros(len(ids), 256, dtype=torch.float32)
    counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float32))
    counts[:, _checks.positive_int("pad", pad, low=0)] = 0
    return counts


def _threshold_masks(images: torch.Tensor, threshold: float, label: int) -> torch.Tensor:
    """``label`` where a pixel's colour lies further than ``threshold`` (max over channels) from its
    image's median colour, else 0."""
    median = images.flatten(1, 2).median(1).values[:, None, None]
    far = (images - median).abs().amax(-1) > threshold
    return far.long() * label


def colour_threshold(images_train: torch.Tensor, masks_train: torch.Tensor, images_test: torch.Tensor,
                     masks_test: torch.Tensor, classes: int) -> float:
    """Test mean IoU (eq. (92)) of per-pixel colour thresholding: a pixel far from its image's median colour is
    foreground and takes the most frequent foreground class of the training masks; the distance
    threshold is the one of a grid that maximises the training mean IoU."""
    for name, images, masks in (("train", images_train, masks_train), ("test", images_test, masks_test)):
        _checks.tensor(f"images_{name}", images, min_dim=4, max_dim=4)
        _checks.tensor(f"masks_{name}", masks, min_dim=3, max_dim=3)
        if images.shape[:3] != masks.shape or masks.dtype != torch.int64:
            raise ValueError(f"masks_{name} must be int64 [N, H, W] matching images_{name} [N, H, W, C], got "
                             f"{tuple(masks.shape)} ({masks.dtype}) and {tuple(images.shape)}")
    classes = _checks.positive_int("classes", classes, low=2)
    label = int(torch.bincount(masks_train[masks_train > 0], minlength=classes)[1:].argmax()) + 1
    grid = torch.linspace(0.02, 0.5, 25).tolist()
    best = max(grid, key=lambda t: mean_iou(_threshold_masks(images_train, t, label), masks_train, classes))
    return mean_iou(_threshold_masks(images_test, best, label), masks_test, classes)


__all__ = ["majority", "logistic_regression", "bag_of_bytes", "mean_iou", "colour_threshold"]
