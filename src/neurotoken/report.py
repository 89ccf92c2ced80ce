"""Deprecated: the main-job report moved to :mod:`neurotoken.experiments.report`."""

import warnings

from .experiments.report import *  # noqa: F401,F403
from .experiments.report import __all__  # noqa: F401

warnings.warn("neurotoken.report is deprecated; use neurotoken.experiments.report", DeprecationWarning, stacklevel=2)
