"""The Triton block-sparse attention (backend="triton") equals dense masked softmax attention, values and
gradients in q, k, v, for local, strided, fixed and union patterns in the plain and permuted layouts,
at L = 63 (a partial last block) with head sizes that are not powers of two."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from neurotoken.mixers import blocksparse, sparse
from neurotoken.mixers.attention import SoftmaxAttention, softmax_attention

pytestmark = pytest.mark.usefixtures("triton_device")
L = 63
PATTERNS = {  # name -> (mask, period of its permuted layout)
    "local": (sparse.local(L, 7), None),
    "strided": (sparse.strided(L, 6), 6),
    "fixed": (sparse.fixed(L, 16, summary=2), 16),
    "union": (sparse.union(sparse.strided(L, 9), sparse.local(L, 3)), 9),
}


def _grads(fn, q, k, v):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    y = fn(q, k, v)
    w = torch.linspace(-1, 1, y.numel(), device=y.device, dtype=y.dtype).view(y.shape)
    return (y.detach(), *torch.autograd.grad((y * w).sum(), (q, k, v)))


def _qkv(device, lead, length, d, dv, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, length, n, generator=g, dtype=dtype).to(device) for n in (d, d, dv)]


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_triton_block_sparse_matches_dense_masked_values_and_gradients(triton_device, name):
    mask, period = PATTERNS[name]
    plan = blocksparse.plan(mask, 16, period)
    q, k, v = _qkv(triton_device, (2,), L, 5, 3)
    got = _grads(lambda *t: blocksparse.block_sparse_attention(*t, plan, backend="triton"), q, k, v)
    want = _grads(lambda *t: softmax_attention(*t, mask.to(triton_device)), q, k, v)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rtol=1e-4, atol=1e-5)


@settings(max_examples=3, deadline=None)
@given(length=st.sampled_from([1, 5, 20]), block=st.sampled_from([4, 8]), d=st.integers(1, 6),
       name=st.sampled_from(["local", "random"]), seed=st.integers(0, 99))
def test_triton_block_sparse_matches_dense_on_random_shapes(triton_device, length, block, d, name, seed):
    g = torch.Generator().manual_seed(seed)
    mask = sparse.local(length, 3) if name == "local" else \
        (torch.rand(length, length, generator=g) < 0.3) | torch.eye(length, dtype=torch.bool)
    q, k, v = _qkv(triton_device, (), length, d, d + 1, seed, torch.float64)
    got = _grads(lambda *t: blocksparse.block_sparse_attention(*t, mask, block, backend="triton"), q, k, v)
    want = _grads(lambda *t: softmax_attention(*t, mask.to(triton_device)), q, k, v)
    for g_, w in zip(got, want, strict=True):
        assert_close(g_, w)


def test_softmax_attention_with_a_plan_takes_the_triton_kernel_on_cuda_only(triton_device, monkeypatch):
    from neurotoken.kernels.triton import blocksparse as kernel

    calls = []
    apply = kernel.TileAttention.apply
    monkeypatch.setattr(kernel.TileAttention, "apply", lambda *a: calls.append(1) or apply(*a))
    mixer = SoftmaxAttention(8, heads=2, mask=blocksparse.plan(sparse.local(9, 3), 4)).to(triton_device)
    mixer(torch.randn(1, 9, 8, device=triton_device))
    assert bool(calls) == (triton_device.type == "cuda")


def test_triton_block_sparse_takes_half_precision_with_float32_accumulators(triton_device):
    mask, period = PATTERNS["union"]
    plan = blocksparse.plan(mask, 16, period)
    q, k, v = (t.half() for t in _qkv(triton_device, (2,), L, 5, 3))
    got = _grads(lambda *t: blocksparse.block_sparse_attention(*t, plan, backend="triton"), q, k, v)
    want = _grads(lambda *t: softmax_attention(*(x.float() for x in t), mask.to(triton_device)), q, k, v)
    assert all(g.dtype == torch.float16 for g in got)
    for g, w in zip(got, want, strict=True):
        assert_close(g.float(), w.float(), rtol=2e-2, atol=2e-3)


def test_triton_block_sparse_steps_aside_where_it_cannot_run(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # cpu tensors without the interpreter
    mask = sparse.local(9, 3)
    q, k, v = _qkv("cpu", (), 9, 4, 4)
    with pytest.warns(RuntimeWarning, match="backend 'triton' cannot run"):
        y = blocksparse.block_sparse_attention(q, k, v, mask, 4, backend="triton")
    assert torch.equal(y, blocksparse.block_sparse_attention(q, k, v, mask, 4, backend="torch"))


def test_triton_block_sparse_reads_no_values(triton_device, monkeypatch):
    """No host sync in forward or backward: the plan holds every index, the kernels read the rest."""
    mask, period = PATTERNS["strided"]
    plan = blocksparse.plan(mask, 16, period).to(triton_device)
    q = torch.randn(1, L, 4, device=triton_device, requires_grad=True)
    for name in ("item", "tolist", "__bool__", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("a value was read"))
    blocksparse.block_sparse_attention(q, q, q, plan, backend="triton").sum().backward()
