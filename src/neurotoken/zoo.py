"""Saved models: weights plus the constructor call that rebuilds them, in one safetensors file.

``save_model(path, "SNNClassifier", {"in_features": 64, ...}, model)`` writes the state dict with
the model's class name and keyword arguments in the file's metadata, and a sha256 of both
(atomically: temp file, fsync, rename); it refuses a class that is not registered and keyword
arguments that do not rebuild ``model``. ``load_model(path)`` verifies the checksum, refuses
NaN/inf weights, compares the spec with the stored tensors on the ``meta`` device (a crafted size
allocates nothing), then builds the model and loads the weights. Every refusal is one line naming
the file and the field or tensor. Files written before the checksum existed load unverified.

A model returned by :func:`neurotoken.hardware.analog` keeps its :class:`AnalogConfig` in the spec
(field ``analog``) and its layers' extra states (calibration flags, noise seed) as JSON beside the
spec (:func:`~neurotoken.learning.checkpoint.split_state`); it loads programmed and calibrated as saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import threading
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn
from torch.nn.modules import module as torch_module

from ._registry import Registry
from .hardware.analog import AnalogConfig, analog, tiles
from .learning.checkpoint import atomic_write, join_state, split_state
from .models import (KeywordSpotter, SNNClassifier, SpikingBERT, SpikingCNN, SpikingLM, SpikingSegmenter,
                     SpikingSSMClassifier, SpikingTransformer)
from .neurons import NPE

MODELS: Registry[type[nn.Module]] = Registry("model class")
for _cls in (SNNClassifier, SpikingSSMClassifier, SpikingTransformer, SpikingLM, SpikingCNN, SpikingSegmenter,
             SpikingBERT, KeywordSpotter):
    MODELS.register(_cls.__name__)(_cls)

KEY = "neurotoken_model"
CHECKSUM = "neurotoken_sha256"
EXTRAS = "neurotoken_extra_state"  # JSON: the non-tensor fields of every module's extra state


def build(name: str, kwargs: dict) -> nn.Module:
    """A fresh model of registered class ``name`` built with ``kwargs``."""
    return MODELS.get(name)(**kwargs)


def _digest(spec: str, state: dict[str, torch.Tensor], extras: str | None = None) -> str:
    """sha256 of the spec (with the extra states' JSON, if any) and of every tensor's name, dtype,
    shape and bytes, in name order."""
    h = hashlib.sha256((spec if extras is None else json.dumps([spec, extras])).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


@contextlib.contextmanager
def _at_most(n: int, held: int):
    """Raise ValueError once this thread registers more than ``n`` parameters and buffers: a spec
    with millions of layers fails fast instead of building them (even on the meta device)."""
    me, count = threading.get_ident(), itertools.count(1)

    def hook(module, name, tensor):
        if threading.get_ident() == me and next(count) > n:
            raise ValueError(f"it creates more than {n} tensors, the weights hold {held}")

    handles = [torch_module.register_module_parameter_registration_hook(hook),
               torch_module.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _build(name: str, kwargs: dict, config: AnalogConfig | None) -> nn.Module:
    """``name(**kwargs)``, as crossbar tiles of ``config`` unless it is None."""
    model = build(name, kwargs)
    return model if config is None else analog(model, config)


def _extra_misfit(key: str, expected: dict, saved) -> str | None:
    """How a saved extra state differs from the one the model has: its fields, their JSON types and
    tensor shapes; None if it fits."""
    if not isinstance(saved, dict):
        return f"extra state {key!r} is missing"
    if saved.keys() != expected.keys():
        return f"extra state {key!r} has fields {sorted(saved)}, the model {sorted(expected)}"
    for field, want in expected.items():
        got = saved[field]
        if isinstance(want, torch.Tensor):
            ok = isinstance(got, torch.Tensor) and got.shape == want.shape
        else:
            ok = type(got) is type(want)
        if not ok:
            return f"extra state {key!r} field {field!r} must be like {want!r:.40}, got {got!r:.40}"
    return None


def _misfit(name: str, kwargs: dict, state: dict, config: AnalogConfig | None = None) -> str | None:
    """How ``name(**kwargs)`` (as crossbar tiles of ``config`` unless None), built on the meta device
    (nothing allocated), differs from the tensor names and shapes and the extra states of ``state``
    (after the model's own key-renaming load hooks); None if it fits. A constructor's error propagates."""
    with torch.device("meta"), warnings.catch_warnings(), _at_most(2 * len(state) + 64, len(state)):
        warnings.simplefilter("ignore")  # deprecations are reported once, by the real build
        model = _build(name, kwargs, config)
        expected = model.state_dict()
        for key, t in expected.items():
            if not isinstance(t, torch.Tensor):
                if (problem := _extra_misfit(key, t, state.get(key))) is not None:
                    return problem
            elif isinstance(state.get(key), torch.Tensor) and state[key].shape != t.shape:
                return (f"tensor {key!r} has shape {tuple(state[key].shape)} in the weights, "
                        f"{tuple(t.shape)} in the spec")
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # a size mismatch under a renamed key
            return "; ".join(line.strip() for line in str(e).splitlines()[1:])
    if missing:
        return f"tensor {missing[0]!r} {tuple(expected[missing[0]].shape)} is missing"
    return f"tensor {unexpected[0]!r} is not part of {name}" if unexpected else None


def _config(value):
    """JSON for what json cannot hold itself: an NPE becomes its config dict (models take either)."""
    if isinstance(value, NPE):
        return value.config()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json(kwargs: dict) -> str:
    """``kwargs`` as JSON; TypeError naming the entry that JSON cannot hold."""
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"kwargs must be a dict of keyword arguments (str keys), got {kwargs!r:.80}")
    for key, value in kwargs.items():
        try:
            json.dumps(value, allow_nan=False, default=_config)
        except (TypeError, ValueError) as e:
            raise TypeError(f"kwargs[{key!r}] cannot be saved as JSON ({e}); pass numbers, strings, lists, "
                            f"dicts or NPEs") from None
    return json.dumps(kwargs, default=_config)


def _chip(model: nn.Module) -> AnalogConfig | None:
    """The one AnalogConfig of ``model``'s crossbar tiles; None without any."""
    configs = list(dict.fromkeys(m.config for m in tiles(model).values()))
    if len(configs) > 1:
        raise ValueError(f"model's analog layers have {len(configs)} different AnalogConfigs; a saved model has one "
                         "(change them all with neurotoken.hardware.analog.configure)")
    return configs[0] if configs else None


def save_model(path: str | Path, name: str, kwargs: dict, model: nn.Module) -> Path:
    """Write ``model``'s weights and its constructor call (registered class ``name``, JSON-able
    ``kwargs`` that rebuild a model of the same tensor shapes), with a checksum of both. A model
    converted by :func:`neurotoken.hardware.analog` keeps its AnalogConfig, programmed devices,
    calibrated ranges and noise seed."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    if Path(path).is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory: give a file path such as model.safetensors")
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name must be a registered model class ({', '.join(MODELS.names())}), got {name!r}")
    if type(model) is not MODELS.get(name):
        raise TypeError(f"model must be a {name}, the class name gives, got {type(model).__name__}")
    plain = json.loads(_json(kwargs))
    config = _chip(model)
    state, extras = split_state(model.state_dict())
    try:
        misfit = _misfit(name, plain, join_state(state, extras), config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"kwargs do not rebuild a {name}: {_one_line(e)}") from None
    if misfit:
        raise ValueError(f"kwargs do not rebuild this model: {name}(**kwargs) differs: {misfit}")
    spec, extras = json.dumps(_described(name, plain, config)), json.dumps(extras) if extras else None
    metadata = {KEY: spec, CHECKSUM: _digest(spec, state, extras)} | ({} if extras is None else {EXTRAS: extras})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save(state, metadata=metadata))
    return path


def _described(name: str, kwargs: dict, config: AnalogConfig | None) -> dict:
    """The stored spec: class, kwargs and, for crossbar tiles, the AnalogConfig's fields."""
    return {"class": name, "kwargs": kwargs} | ({} if config is None else {"analog": asdict(config)})


def _one_line(e: Exception, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def _analog_config(where: str, value) -> AnalogConfig:
    """The AnalogConfig of a stored spec's field 'analog'; ValueError naming the key that is wrong."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: field 'analog' must be a JSON object of AnalogConfig fields, "
                         f"got {json.dumps(value):.80}")
    names = [f.name for f in fields(AnalogConfig)]
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"{where}: field 'analog' has unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"expected some of: {', '.join(names)}")
    try:
        return AnalogConfig(**value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field 'analog': {_one_line(e)}") from None


def _extras(where: str, meta: dict) -> dict[str, dict]:
    """The extra states' JSON fields stored beside the spec ({} when there are none)."""
    if EXTRAS not in meta:
        return {}
    try:
        extras = json.loads(meta[EXTRAS])
    except ValueError as e:
        raise ValueError(f"{where}: metadata {EXTRAS!r} is not valid JSON ({e})") from None
    if not isinstance(extras, dict) or not all(isinstance(v, dict) for v in extras.values()):
        raise ValueError(f"{where}: metadata {EXTRAS!r} must be a JSON object of JSON objects (one per module)")
    return extras


def _spec(where: str, text: str) -> tuple[str, dict, AnalogConfig | None]:
    """(class name, kwargs, AnalogConfig or None) of a stored spec; ValueError naming the field that is wrong."""
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{where}: metadata {KEY!r} is not valid JSON ({e})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: metadata {KEY!r} must be a JSON object with fields 'class' and 'kwargs'")
    for field, kind, what in (("class", str, "a registered model class name"), ("kwargs", dict, "a JSON object")):
        if field not in spec:
            raise ValueError(f"{where}: the model spec has no field {field!r} ({what})")
        if not isinstance(spec[field], kind):
            raise ValueError(f"{where}: field {field!r} must be {what}, got {json.dumps(spec[field]):.80}")
    if spec["class"] not in MODELS:
        raise ValueError(f"{where}: field 'class': unknown model class {spec['class']!r}; expected one of: "
                         f"{', '.join(MODELS.names())}")
    config = _analog_config(where, spec["analog"]) if "analog" in spec else None
    return spec["class"], spec["kwargs"], config


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """(model, {"class", "kwargs"}) from a file written by :func:`save_model`; an analog model's
    spec also holds "analog" (its AnalogConfig's fields)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise ValueError(f"{where} is a directory; expected a model file (.safetensors)")
    if not path.is_file():
        raise FileNotFoundError(f"model file {where} does not exist")
    try:
        with safe_open(path, "pt") as f:
            meta, state = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{where} is not a readable safetensors file ({e})") from None
    if KEY not in meta:
        checkpoint = "rng.torch" in state  # what learning.checkpoint writes
        what = "is a training checkpoint, not a model file: it " if checkpoint else ""
        raise ValueError(f"{where} {what}holds no neurotoken model spec (metadata key {KEY!r}); "
                         "save the model with neurotoken.zoo.save_model")
    if CHECKSUM in meta and meta[CHECKSUM] != _digest(meta[KEY], state, meta.get(EXTRAS)):
        raise ValueError(f"{where} is corrupt: its weights or spec do not match the sha256 stored with them")
    name, kwargs, config = _spec(where, meta[KEY])
    for key, t in state.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: tensor {key!r} holds NaN or inf weights")
    state = join_state(state, _extras(where, meta))
    try:
        misfit = _misfit(name, kwargs, state, config)
    except Exception as e:  # noqa: BLE001  (untrusted metadata: any constructor failure is the field's fault)
        raise ValueError(f"{where}: field 'kwargs' does not build a {name}: {_one_line(e)}") from None
    if misfit:
        raise ValueError(f"{where}: weights do not fit {name}({json.dumps(kwargs):.200}): {misfit}")
    model = _build(name, kwargs, config)
    model.load_state_dict(state)
    return model.eval(), _described(name, kwargs, config)
