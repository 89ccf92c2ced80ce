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


def promoted(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the tensors' values promote to together."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def unsupported_real(*tensors: torch.Tensor, dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
                     ) -> str | None:
    """Why a Triton kernel on real values (the selective scan, block-sparse attention) cannot take the
    tensors, or None when it can: where Triton runs on the first one's device, outside torch.compile's
    tracing (the kernel is opaque to it), their values promoting together to one of ``dtypes``."""
    why = unsupported(tensors[0])
    if why is None and torch.compiler.is_compiling():
        return "torch.compile is tracing (the Triton kernel is opaque to it)"
    if why is None and promoted(*tensors) not in dtypes:
        return f"the values are {promoted(*tensors)}; the kernel takes {', '.join(map(str, dtypes))}"
    return why
