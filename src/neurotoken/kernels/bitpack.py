"""Bit-packed AND / XNOR spike scores: tau x d bits per token packed into words, scored by a bitwise
op + popcount: a numba kernel on the CPU (64-bit words), a Triton kernel on CUDA (32-bit words packed
on the device, :mod:`neurotoken.kernels.triton.bitpack`). Reference twin: the dense float matmul
:func:`neurotoken.mixers.attention.and_scores` / ``xnor_scores`` with ``method="dense"``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch


def pack_bits(bits: torch.Tensor) -> np.ndarray:
    """Binary [..., L, n] -> uint64 words [N, L, ceil(n / 64)] (bit b of word w is element 64 w + b;
    the padding bits are 0)."""
    b = bits.detach().reshape(-1, *bits.shape[-2:]).to("cpu", torch.bool).numpy()
    n = b.shape[-1]
    pad = -n % 64
    if pad:
        b = np.concatenate([b, np.zeros((*b.shape[:-1], pad), dtype=bool)], axis=-1)
    return np.ascontiguousarray(np.packbits(b, axis=-1, bitorder="little")).view(np.uint64)


def available() -> bool:
    """Whether the compiled kernel can run (numba installed; it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def unsupported(bits: torch.Tensor) -> str | None:
    """Why the popcount kernels should not score ``bits``, or None when one can: on CUDA the Triton
    kernel (Triton installed), on the CPU the numba one (a tensor elsewhere would be copied to the host
    and back: use the dense scores)."""
    if bits.device.type == "cuda":
        from . import triton

        return triton.unsupported(bits)
    if not available():
        return "numba is not installed"
    if bits.device.type != "cpu":
        return f"the spikes are on {bits.device.type}; the popcount kernel runs on the cpu"
    return None


def packed_scores(qf: torch.Tensor, kf: torch.Tensor, op: str = "and") -> torch.Tensor:
    """Counts over the flattened bits of binary qf [..., L, n], kf [..., S, n] -> [..., L, S] (qf's dtype):
    "and" counts coincident ones, "xnor" counts equal bits (n - popcount(q xor k)). No gradient;
    on CUDA the Triton kernel, else numba (callers fall back to the dense reference where
    :func:`unsupported` says why)."""
    if qf.device.type == "cuda":
        from .triton.bitpack import packed_scores as triton_scores

        return triton_scores(qf, kf, op)
    from ._popcount_numba import popcount_scores

    a, bt = pack_bits(qf), np.ascontiguousarray(pack_bits(kf).transpose(0, 2, 1))
    out = np.empty((a.shape[0], a.shape[1], bt.shape[2]), dtype=np.float32)
    popcount_scores(a, bt, op == "xnor", qf.shape[-1], out)
    return torch.from_numpy(out).view(*qf.shape[:-1], kf.shape[-2]).to(qf.device, qf.dtype)


__all__ = ["pack_bits", "available", "unsupported", "packed_scores"]
