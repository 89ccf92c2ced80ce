"""JSON-able specs of registered option objects (spike kinds, surrogates): {"name": ..., **fields}."""

from __future__ import annotations

import dataclasses

from ._registry import Registry


def registered_name(registry: Registry, obj) -> str:
    """The name under which type(obj) is registered; refuses an unregistered class (a subclass too)."""
    name = next((n for n in registry.names() if registry.get(n) is type(obj)), None)
    if name is None:
        raise ValueError(f"{type(obj).__name__} is not a registered {registry.kind} "
                         f"({', '.join(registry.names())}), so it cannot be saved as a config")
    return name


def spec(registry: Registry, obj, skip: tuple[str, ...] = ()) -> dict:
    """{"name": obj's registered name, **its dataclass fields but ``skip``}."""
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in skip}
    return {"name": registered_name(registry, obj), **fields}


def build(registry: Registry, value: dict, argument: str):
    """The object a spec dict describes (the inverse of :func:`spec`)."""
    if not isinstance(value.get("name"), str):
        raise ValueError(f"{argument} as a dict needs a 'name' ({', '.join(registry.names())}), got {value!r}")
    cls = registry.get(value["name"])
    options = {k: v for k, v in value.items() if k != "name"}
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{argument}: {value['name']!r} takes no option {', '.join(map(repr, unknown))}")
    return cls(**options)
