"""Opt-in debug mode: raise at the first module whose input or output holds NaN or inf, naming it.

Forward passes never check values (each check is a host sync); ``debug(True)`` adds global module
hooks that do, and ``debug(False)`` removes them. ``with debug():`` switches it on for a block and
restores the previous setting afterwards.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn.modules import module as _module

_HANDLES: list = []
_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> qualified name in its root
_STACK: list[nn.Module] = []  # modules whose forward is running, outermost first


def enabled() -> bool:
    """Whether debug mode is on."""
    return bool(_HANDLES)


def _enter(mod: nn.Module, args) -> None:
    if not _STACK:  # a root call: name every submodule relative to it
        for name, sub in mod.named_modules(remove_duplicate=False):
            _NAMES[sub] = name
    _check(args, "input", "to", mod)
    _STACK.append(mod)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)


def _label(mod: nn.Module) -> str:
    name = _NAMES.get(mod, "")
    return f"{type(mod).__name__} {name!r}" if name else type(mod).__name__


def _exit(mod: nn.Module, args, out) -> None:
    if _STACK and _STACK[-1] is mod:
        _STACK.pop()
    elif mod in _STACK:  # an inner forward raised: unwind to this module
        del _STACK[len(_STACK) - 1 - _STACK[::-1].index(mod):]
    _check(out, "output", "in", mod)


def _check(values, what: str, preposition: str, mod: nn.Module) -> None:
    if torch.compiler.is_compiling():
        return
    for t in _tensors(values):
        if t.device.type == "meta" or not (t.is_floating_point() or t.is_complex()):
            continue
        if not bool(torch.isfinite(t).all()):
            kind = "NaN" if bool(torch.isnan(t).any()) else "inf"
            raise ValueError(f"non-finite {what} ({kind}) {preposition} {_label(mod)}")


def _switch(on: bool) -> None:
    if on and not _HANDLES:
        _HANDLES.append(_module.register_module_forward_pre_hook(_enter))
        _HANDLES.append(_module.register_module_forward_hook(_exit, always_call=True))
    elif not on:
        while _HANDLES:
            _HANDLES.pop().remove()
        _STACK.clear()


class debug:
    """``debug(True)`` / ``debug(False)`` switches debug mode on or off; ``with debug():`` switches
    it for the block only. In debug mode every module's output is checked and the first one
    holding NaN or inf raises ValueError naming the module (its qualified name within the module
    called, e.g. "non-finite output (NaN) in LIF 'body.0.lif'")."""

    def __init__(self, on: bool = True):
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool, got {type(on).__name__}")
        self._previous = enabled()
        _switch(on)

    def __enter__(self) -> debug:
        return self

    def __exit__(self, *exc) -> None:
        _switch(self._previous)


__all__ = ["debug", "enabled"]
