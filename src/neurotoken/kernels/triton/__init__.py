"""Triton kernels (GPU; on CPU tensors under Triton's interpreter, ``TRITON_INTERPRET=1``). Each
module sits beside its reference twin and is imported lazily by the dispatch next to that twin
(:mod:`neurotoken.kernels.lif`, ``.scan`` and ``.bitpack``; :func:`neurotoken.mixers.ssm.selective_scan`;
:func:`neurotoken.mixers.blocksparse.block_sparse_attention`); importing this package imports nothing
from Triton."""

from __future__ import annotations

import importlib.util
import os

import torch


def unsupported(t: torch.Tensor) -> str | None:
    """Why a Triton kernel cannot run on t's device, or None when it can: Triton must be installed
    and t on a CUDA device, or on the CPU with the interpreter switched on."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if t.device.type == "cuda" or (t.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"):
        return None
    return f"the tensor is on {t.device.type}; Triton runs on cuda (on the cpu only with TRITON_INTERPRET=1)"


def unsupported_real(x: torch.Tensor) -> str | None:
    """Why a Triton kernel on real values (the selective scan, block-sparse attention) cannot run on x,
    or None when it can: as the Triton linear scan (float32 or float64, outside torch.compile's tracing),
    on real values."""
    from ..scan import triton_unsupported

    why = triton_unsupported(x)
    if why is None and x.is_complex():
        return f"the tensor is {x.dtype}; the kernel takes real float32 or float64 values"
    return why
