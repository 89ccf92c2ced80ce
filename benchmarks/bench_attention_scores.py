"""Bit-packed AND scores (numba popcount) vs the float32 matmul reference, and event-driven sparse
attention vs dense masked attention (issue 5 targets). Single-threaded; timings mean something only
on an idle machine.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention_scores.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from neurotoken.bench import time_fn
from neurotoken.kernels import bitpack
from neurotoken.kernels._popcount_numba import popcount_scores
from neurotoken.mixers import attention, sparse


def bench_scores(B: int, H: int, L: int, bits: int, repeats: int) -> None:
    """[B, H, L, bits] binary q, k (bits = tau x d_head): float32 q k^T vs packed AND + popcount."""
    g = torch.Generator().manual_seed(0)
    q = (torch.rand(B, H, L, bits, generator=g) < 0.2).float()
    k = (torch.rand(B, H, L, bits, generator=g) < 0.2).float()
    a, bt = bitpack.pack_bits(q), np.ascontiguousarray(bitpack.pack_bits(k).transpose(0, 2, 1))
    out = np.empty((a.shape[0], L, L), dtype=np.float32)
    t_mm = time_fn(lambda: q @ k.transpose(-1, -2), repeats)
    t_kernel = time_fn(lambda: popcount_scores(a, bt, False, bits, out), repeats)
    t_full = time_fn(lambda: bitpack.packed_scores(q, k), repeats)
    assert torch.equal(bitpack.packed_scores(q, k), q @ k.transpose(-1, -2))
    print(f"AND scores [B={B}, H={H}, L={L}, bits={bits}]: float32 matmul {t_mm * 1e3:.1f} ms, "
          f"popcount kernel {t_kernel * 1e3:.1f} ms ({t_mm / t_kernel:.2f}x), "
          f"with packing + conversion {t_full * 1e3:.1f} ms ({t_mm / t_full:.2f}x)")


def bench_sparse(L: int, d: int, density: float, repeats: int) -> None:
    """Softmax attention at one head: event-driven over a causal local window of ~density L keys
    per query vs dense masked attention."""
    mask = sparse.local(L, max(1, round(density * L)))
    pattern = sparse.to_csr(mask)
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 1, L, d, generator=g).unbind(0)
    t_dense = time_fn(lambda: attention.softmax_attention(q, k, v, mask), repeats)
    t_sparse = time_fn(lambda: sparse.sparse_attention(q, k, v, pattern), repeats)
    print(f"softmax attention L={L}, d={d}, pattern density {pattern.nnz / L**2:.4f} "
          f"({pattern.nnz} pairs): dense masked {t_dense * 1e3:.1f} ms, event-driven "
          f"{t_sparse * 1e3:.1f} ms ({t_dense / t_sparse:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_scores(8, 4, 512, 256, args.repeats)
    bench_sparse(4096, 64, 0.01, args.repeats)


if __name__ == "__main__":
    main()
