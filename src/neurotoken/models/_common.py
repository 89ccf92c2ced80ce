"""Boundary checks shared by the assembled models: feature inputs and token ids."""

from __future__ import annotations

import torch
from torch import nn

from .. import _checks, _debug
from ..mixers.base import check_device, check_dtype


def _sizes(name: str, sizes) -> list[int]:
    """Require a sequence of integral sizes >= 1 (numpy integers too), each named ``name[i]``."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints, got {type(sizes).__name__}")
    return [_checks.positive_int(f"{name}[{i}]", n) for i, n in enumerate(sizes)]


def _check_features(name: str, x, features: int, module: nn.Module, min_dim: int = 2) -> torch.Tensor:
    """Require x [..., features] (at least ``min_dim`` dims, no size 0) on the device and of the dtype
    of ``module``'s parameters (metadata only)."""
    _checks.tensor(name, x, min_dim=min_dim)
    if x.shape[-1] != features:
        raise ValueError(f"{name} must have {features} features last, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return check_dtype(name, x, module)


def _check_ids(name: str, ids, embed: nn.Embedding) -> torch.Tensor:
    """Require integer token ids [B, L] (int32/int64, no size 0) on the embedding's device; the ids'
    range is checked by value only in debug mode (a host sync, :class:`neurotoken.debug`)."""
    _checks.tensor(name, ids, min_dim=2, max_dim=2)
    if ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be integer token ids (int64 or int32), got {ids.dtype}")
    if ids.numel() == 0:
        raise ValueError(f"{name} must be token ids [B, L] with B, L >= 1, got shape {tuple(ids.shape)}")
    check_device(name, ids, embed)
    if _debug.enabled() and ids.device.type != "meta" and bool(((ids < 0) | (ids >= embed.num_embeddings)).any()):
        raise _out_of_range(name, ids, embed)
    return ids


def _out_of_range(name: str, ids: torch.Tensor, embed: nn.Embedding) -> ValueError:
    return ValueError(f"{name} must hold token ids in [0, {embed.num_embeddings}), got values in "
                      f"[{int(ids.min())}, {int(ids.max())}]")


def _embed(name: str, ids: torch.Tensor, embed: nn.Embedding) -> torch.Tensor:
    """embed(ids), an out-of-range id refused naming ``name``: the embedding's own bounds check on
    the CPU (no extra pass); on an accelerator it is a device-side assertion unless debug mode is on."""
    try:
        return embed(ids)
    except IndexError as e:
        raise _out_of_range(name, ids, embed) from e
