"""Optional dependencies of the data loaders, imported on first use."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, user: str):
    """Import ``module`` or raise a one-line ImportError naming the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{user} needs {module}: pip install 'neurotoken[{extra}]'") from None
