"""Checkpoints: safetensors for tensors + a JSON commit record, written atomically.

A checkpoint ``ckpt-00000100`` is two files: ``.safetensors`` (model weights, optimizer tensors,
the state of every torch RNG: CPU, each initialised CUDA device, MPS) and ``.json`` (trainer/optimizer scalars and the sha256 of the tensor file). Each is
written to a temporary file, fsynced and renamed; the JSON goes last, so a checkpoint exists only
once both are complete. Loading verifies the checksum, so a truncated or corrupt file is rejected.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from .._io import atomic_write  # noqa: F401  (public here: checkpoints, zoo and export write through it)

PREFIX = "ckpt-"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or corrupt."""


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into named tensors and JSON-able rest."""
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_states() -> dict[str, torch.Tensor]:
    """The state of every torch RNG in use: CPU, each CUDA device once CUDA is initialised, MPS."""
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    if torch.backends.mps.is_available():
        states["rng.mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_states` recorded (devices absent here are skipped)."""
    torch.set_rng_state(tensors["rng.torch"])
    for name, state in tensors.items():
        if name.startswith("rng.cuda.") and torch.cuda.is_available():
            index = int(name[len("rng.cuda."):])
            if index < torch.cuda.device_count():
                torch.cuda.set_rng_state(state, index)
        elif name == "rng.mps" and torch.backends.mps.is_available():
            torch.mps.set_rng_state(state)


def save_checkpoint(directory: str | os.PathLike, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, trainer_state: dict | None = None,
                    keep_last: int = 3, rng_state: dict[str, torch.Tensor] | torch.Tensor | None = None) -> Path:
    """Atomically save a checkpoint for ``step``; keep the newest ``keep_last``; return the JSON path.

    ``rng_state`` is what :func:`rng_states` returned (or the CPU RNG state alone) at the point to
    record (default: every RNG now)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    if rng_state is None:
        rng_state = rng_states()
    tensors.update(rng_state if isinstance(rng_state, dict) else {"rng.torch": rng_state})
    optim_meta = None
    if optimizer is not None:
        optim_tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
        tensors.update({k: v.contiguous() for k, v in optim_tensors.items()})
    blob = save(tensors)
    stem = directory / f"{PREFIX}{step:08d}"
    atomic_write(stem.with_suffix(".safetensors"), blob)
    record = {"step": step, "sha256": hashlib.sha256(blob).hexdigest(), "optimizer": optim_meta,
              "trainer": trainer_state or {}}
    atomic_write(stem.with_suffix(".json"), json.dumps(record, indent=1).encode())
    for old in list_checkpoints(directory)[:-keep_last]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return stem.with_suffix(".json")


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Committed checkpoints (their JSON records), oldest first."""
    return sorted(Path(directory).glob(f"{PREFIX}*.json"))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """(record, tensors) of a checkpoint; raises CheckpointError if it is truncated or corrupt."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        blob = path.with_suffix(".safetensors").read_bytes()
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is unreadable: {err}") from err
    if hashlib.sha256(blob).hexdigest() != record.get("sha256"):
        raise CheckpointError(f"checkpoint {path.with_suffix('.safetensors')} is corrupt or truncated "
                              "(sha256 mismatch)")
    return record, load_file(path.with_suffix(".safetensors"))


def newest_valid_checkpoint(directory: str | os.PathLike
                            ) -> tuple[Path, dict, dict[str, torch.Tensor], list[str]] | None:
    """(path, record, tensors) of the newest checkpoint that verifies, and the problems of any newer
    ones skipped; None if the directory holds no checkpoint; CheckpointError if none verifies."""
    problems = []
    for path in reversed(list_checkpoints(directory)):
        try:
            return (path, *read_checkpoint(path), problems)
        except CheckpointError as err:
            problems.append(str(err))
    if problems:
        raise CheckpointError("no valid checkpoint in " f"{directory}: " + "; ".join(problems))
    return None


def latest_checkpoint(directory: str | os.PathLike) -> tuple[Path, list[str]] | None:
    """Newest checkpoint that verifies, and the problems of any newer ones skipped; None if none."""
    found = newest_valid_checkpoint(directory)
    return None if found is None else (found[0], found[3])


def discard_incomplete(directory: str | os.PathLike) -> None:
    """Delete what interrupted saves left behind: temporary files and tensor files never committed."""
    directory = Path(directory)
    for tmp in directory.glob(f".{PREFIX}*.tmp"):
        tmp.unlink(missing_ok=True)
    for blob in directory.glob(f"{PREFIX}*.safetensors"):
        if not blob.with_suffix(".json").exists():
            blob.unlink(missing_ok=True)


def restore(record: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
            optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Put a read checkpoint's model, optimizer and RNG state in place; returns the trainer state.
    A checkpoint of another architecture is refused (ValueError) before anything changes."""
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    differ = sorted(k for k in wanted.keys() | weights.keys()
                    if k not in weights or k not in wanted or tuple(weights[k].shape) != wanted[k])
    if differ:
        raise ValueError(f"the checkpoint holds another model than the one given (tensors that differ or are "
                         f"missing: {', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''})")
    model.load_state_dict(weights)
    if optimizer is not None and record["optimizer"] is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, record["optimizer"]))
    set_rng_states(tensors)
    return record["trainer"]


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimizer, every RNG) from a checkpoint; returns the trainer state."""
    return restore(*read_checkpoint(path), model, optimizer)
