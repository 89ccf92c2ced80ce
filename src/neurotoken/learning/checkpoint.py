"""Checkpoints: safetensors for tensors + a JSON commit record, written atomically.

A checkpoint ``ckpt-00000100`` is two files: ``.safetensors`` (model weights, optimizer tensors,
the state of every torch RNG: CPU, each initialised CUDA device, MPS) and ``.json`` (trainer/optimizer scalars and the sha256 of the tensor file). Each is
written to a temporary file, fsynced and renamed; the JSON goes last, so a checkpoint exists only
once both are complete. Loading verifies the checksum, so a truncated or corrupt file is rejected.
A module's extra state (``get_extra_state``, e.g. an analog tile's calibration flags and noise
generator) is a dict: its tensors go beside the weights, its other values into the JSON record
(:func:`split_state`), so no value is ever pickled.
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


EXTRA_STATE = "_extra_state"  # the suffix of a module's extra state in a state_dict
JSON = (bool, int, float, str, type(None))


def _json_value(name: str, value):
    """A JSON-able value of an extra state (nested lists and string-keyed dicts of JSON scalars)."""
    if isinstance(value, JSON):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(name, v) for k, v in value.items()}
    raise TypeError(f"the extra state {name!r} holds a {type(value).__name__}: a checkpoint stores tensors and "
                    "JSON values (bool, int, float, str, None, lists, dicts with string keys), never pickles")


def split_state(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """A state_dict as (tensors, extras): every tensor under its key, and every module's extra state
    that is a dict with its tensor fields as tensors named ``<key>.<field>`` and the rest as JSON in
    ``extras[<key>]``. :func:`join_state` inverts it."""
    tensors, extras = {}, {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value.detach().contiguous()
        elif key.endswith(EXTRA_STATE) and isinstance(value, dict):
            extras[key] = {}
            for field, v in value.items():
                if not isinstance(field, str):
                    raise TypeError(f"the extra state {key!r} must have string keys, got {field!r}")
                if isinstance(v, torch.Tensor):
                    tensors[f"{key}.{field}"] = v.detach().contiguous()
                else:
                    extras[key][field] = _json_value(f"{key}.{field}", v)
        else:
            raise TypeError(f"state entry {key!r} is a {type(value).__name__}: a checkpoint stores tensors and "
                            "extra states that are dicts of tensors and JSON values")
    return tensors, extras


def join_state(tensors: dict[str, torch.Tensor], extras: dict[str, dict]) -> dict:
    """The state_dict that :func:`split_state` split into ``tensors`` and ``extras``."""
    state = {key: dict(fields) for key, fields in extras.items()}
    for name, value in tensors.items():
        key, _, field = name.rpartition(".")
        if key in state:
            state[key][field] = value
        else:
            state[name] = value
    return state


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
    weights, extras = split_state(model.state_dict())
    tensors = {f"model.{k}": v for k, v in weights.items()}
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
              "trainer": trainer_state or {}, "extra_state": extras}
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


def _layout(tensors: dict[str, torch.Tensor], extras: dict[str, dict]) -> dict[str, tuple | None]:
    """Shape of every weight and None for every extra state (whose fields may differ between two
    copies of one model: a noise generator drawn on another device, or not drawn yet)."""
    return {k: tuple(v.shape) for k, v in tensors.items() if k.rpartition(".")[0] not in extras} | dict.fromkeys(extras)


def restore(record: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
            optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Put a read checkpoint's model, optimizer and RNG state in place; returns the trainer state.
    A checkpoint of another architecture is refused (ValueError) before anything changes."""
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    extras = record.get("extra_state", {})  # absent in checkpoints written before extra states were stored
    wanted, saved = _layout(*split_state(model.state_dict())), _layout(weights, extras)
    differ = sorted(k for k in wanted.keys() | saved.keys() if k not in saved or k not in wanted or saved[k] != wanted[k])
    if differ:
        raise ValueError(f"the checkpoint holds another model than the one given (tensors that differ or are "
                         f"missing: {', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''})")
    model.load_state_dict(join_state(weights, extras))
    if optimizer is not None and record["optimizer"] is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, record["optimizer"]))
    set_rng_states(tensors)
    return record["trainer"]


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimizer, every RNG) from a checkpoint; returns the trainer state."""
    return restore(*read_checkpoint(path), model, optimizer)
