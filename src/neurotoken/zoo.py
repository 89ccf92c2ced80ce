"""Saved models: weights plus the constructor call that rebuilds them, in one safetensors file.

``save_model(path, "SNNClassifier", {"in_features": 64, ...}, model)`` writes the state dict with
the model's class name and keyword arguments in the file's metadata (atomically: temp file,
fsync, rename); ``load_model(path)`` rebuilds the model and loads the weights, naming the file
and the problem when it is not a neurotoken model or does not match its architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from ._registry import Registry
from .learning.checkpoint import atomic_write
from .models import SNNClassifier, SpikingLM, SpikingSSMClassifier, SpikingTransformer

MODELS: Registry[type[nn.Module]] = Registry("model class")
for _cls in (SNNClassifier, SpikingSSMClassifier, SpikingTransformer, SpikingLM):
    MODELS.register(_cls.__name__)(_cls)

KEY = "neurotoken_model"


def build(name: str, kwargs: dict) -> nn.Module:
    """A fresh model of registered class ``name`` built with ``kwargs``."""
    return MODELS.get(name)(**kwargs)


def save_model(path: str | Path, name: str, kwargs: dict, model: nn.Module) -> Path:
    """Write ``model``'s weights and its constructor call (class ``name``, JSON-able ``kwargs``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, save(state, metadata={KEY: json.dumps({"class": name, "kwargs": kwargs})}))
    return path


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """(model, {"class", "kwargs"}) from a file written by :func:`save_model`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    try:
        with safe_open(path, "pt") as f:
            meta, state = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file ({e})") from None
    if KEY not in meta:
        raise ValueError(f"{str(path)!r} holds no neurotoken model spec (metadata key {KEY!r}); "
                         "save it with neurotoken.zoo.save_model")
    spec = json.loads(meta[KEY])
    model = build(spec["class"], spec["kwargs"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{str(path)!r}: weights do not fit {spec['class']}({spec['kwargs']}): {e}") from None
    return model.eval(), spec
