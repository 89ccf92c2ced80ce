"""Model export: NIR graphs (:mod:`neurotoken.export.nir`); the ``nir`` package is imported only when called."""

from .nir import DT, export_model, from_nir, to_nir

__all__ = ["to_nir", "from_nir", "export_model", "DT"]
