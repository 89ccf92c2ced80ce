import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.mixers import blocksparse, sparse
from neurotoken.mixers.attention import SoftmaxAttention, SpikingAttention, softmax_attention

PATTERNS = {  # name -> (mask of L, period of its permuted layout)
    "local": (lambda L: sparse.local(L, 7), None),
    "strided": (lambda L: sparse.strided(L, 6), 6),
    "fixed": (lambda L: sparse.fixed(L, 16, summary=2), 16),
    "union": (lambda L: sparse.union(sparse.strided(L, 9), sparse.local(L, 3)), 9),
    "random": (lambda L: (torch.rand(L, L, generator=torch.Generator().manual_seed(L)) < 0.1)
               | torch.eye(L, dtype=torch.bool), None),
}


@settings(max_examples=25, deadline=None)
@given(L=st.sampled_from([1, 17, 63, 100]), block=st.sampled_from([4, 16, 32]), heads=st.integers(1, 3),
       name=st.sampled_from(sorted(PATTERNS)), permuted=st.booleans(), seed=st.integers(0, 99))
def test_block_sparse_matches_dense_masked_values_and_gradients(L, block, heads, name, permuted, seed):
    make, period = PATTERNS[name]
    mask = make(L)
    plan = blocksparse.plan(mask, block, period if permuted else None)
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, heads, L, 5, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    y = blocksparse.block_sparse_attention(q, k, v, plan)
    ref = softmax_attention(q, k, v, mask)
    torch.testing.assert_close(y, ref)
    w = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad((y * w).sum(), (q, k, v)),
                               torch.autograd.grad((ref * w).sum(), (q, k, v)))


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("L,block", [(63, 16), (100, 32)])
def test_plan_covers_exactly_the_pattern(name, L, block):
    make, period = PATTERNS[name]
    mask = make(L)
    for p in (None, period):
        plan = blocksparse.plan(mask, block, p)
        assert torch.equal(plan.to_mask(), mask) and plan.nnz == int(mask.sum())


def test_tiles_of_a_hand_example():
    # L = 6, block 2, causal local window 2: query block r needs key blocks r - 1 (its first row's
    # left neighbour) and r; block 0 has no left block, so its second slot is padding (block 0, empty).
    plan = blocksparse.plan(sparse.local(6, 2), block=2)
    (tiles,) = plan.parts
    assert tiles.kblocks.tolist() == [[0, 0], [0, 1], [1, 2]]
    allowed = (~tiles.blocked).int().tolist()
    assert allowed[0] == [[1, 0, 0, 0], [1, 1, 0, 0]]
    assert allowed[1] == [[0, 1, 1, 0], [0, 0, 1, 1]]
    assert plan.tiles == 6 and plan.nnz == 11 and plan.shape == (6, 6)


def test_pad_rows_of_a_length_not_divisible_by_block_give_finite_gradients():
    mask = sparse.local(5, 2)
    q, k, v = (torch.randn(1, 5, 3, requires_grad=True) for _ in range(3))
    grads = torch.autograd.grad(blocksparse.block_sparse_attention(q, k, v, mask, block=4).sum(), (q, k, v))
    assert all(bool(g.isfinite().all()) for g in grads)


def test_permuted_layout_makes_strided_and_fixed_patterns_cheaper_in_tiles():
    L = 512
    for mask, period in ((sparse.strided(L, 22), 22), (sparse.fixed(L, 32), 32)):
        plain, permuted = blocksparse.plan(mask, 16), blocksparse.plan(mask, 16, period)
        assert permuted.tiles < plain.tiles / 2
        assert permuted.tiles * 16 * 16 < 4 * int(mask.sum())  # within 4x of the pairs themselves


def test_residue_order_sorts_by_residue_then_position():
    assert blocksparse.residue_order(7, 3).tolist() == [0, 3, 6, 1, 4, 2, 5]


def test_bad_arguments_are_refused_naming_them():
    q = torch.randn(1, 6, 3)
    with pytest.raises(ValueError, match=r"pattern has shape \(5, 5\)"):
        blocksparse.block_sparse_attention(q, q, q, sparse.local(5, 2))
    with pytest.raises(TypeError, match="pattern must be a boolean mask tensor or a BlockPlan"):
        blocksparse.block_sparse_attention(q, q, q, "local")
    with pytest.raises(ValueError, match="block must be"):
        blocksparse.plan(sparse.local(6, 2), block=0)
    with pytest.raises(ValueError, match="period must be"):
        blocksparse.plan(sparse.local(6, 2), period=0)
    with pytest.raises(ValueError, match="attends no key"):
        blocksparse.plan(torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="single"):
        blocksparse.plan(sparse.local(6, 2).expand(2, 6, 6))


def test_backend_is_checked_and_auto_on_the_cpu_is_the_torch_path():
    q = torch.randn(1, 6, 3)
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'torch', 'triton'"):
        blocksparse.block_sparse_attention(q, q, q, sparse.local(6, 2), backend="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = blocksparse.block_sparse_attention(q, q, q, sparse.local(6, 2), 4)
    assert torch.equal(auto, blocksparse.block_sparse_attention(q, q, q, sparse.local(6, 2), 4, backend="torch"))


def test_public_function_lives_in_sparse_too():
    assert sparse.block_sparse_attention is blocksparse.block_sparse_attention
    assert sparse.plan is blocksparse.plan


@pytest.mark.parametrize("period", [None, 9])
def test_softmax_attention_module_with_a_block_plan_equals_boolean_mask(period):
    torch.manual_seed(0)
    mask = sparse.union(sparse.strided(63, 9), sparse.local(63, 3))
    dense = SoftmaxAttention(8, heads=2, mask=mask)
    tiled = SoftmaxAttention(8, heads=2, mask=blocksparse.plan(mask, 16, period))
    tiled.load_state_dict(dense.state_dict())
    x = torch.randn(2, 63, 8, requires_grad=True)
    y, ref = tiled(x), dense(x)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(torch.autograd.grad(y.sum(), x), torch.autograd.grad(ref.sum(), x))
    assert tiled.accounting((x,), None) == dense.accounting((x,), None)
    spiking = SpikingAttention(8, heads=2, T=2, mask=blocksparse.plan(mask, 16, period))
    spiking_dense = SpikingAttention(8, heads=2, T=2, mask=mask)
    spiking_dense.load_state_dict(spiking.state_dict())
    torch.testing.assert_close(spiking(x), spiking_dense(x))  # dense spike scores on the plan's mask
    tiled.to(torch.float64)  # the plan's index buffers follow the module
    assert tiled(x.double()).dtype == torch.float64


def test_forward_reads_no_values(monkeypatch):
    """No host sync in the forward pass: the plan holds every index, built once."""
    mask = sparse.strided(40, 5)
    plan = blocksparse.plan(mask, 8, 5)
    q = torch.randn(1, 40, 4)
    for name in ("item", "tolist", "__bool__", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("a value was read"))
    blocksparse.block_sparse_attention(q, q, q, plan)
    plan.to_mask()  # what a spiking mixer's dense scores use


@pytest.mark.parametrize("period", [None, 8])
def test_runs_on_the_inputs_device_and_dtype(period):
    plan = blocksparse.plan(sparse.strided(63, 8), 16, period)
    meta = torch.empty(2, 63, 4, device="meta")
    assert blocksparse.block_sparse_attention(meta, meta, meta, plan).shape == (2, 63, 4)
    half = torch.randn(2, 63, 4).to(torch.bfloat16)
    assert blocksparse.block_sparse_attention(half, half, half, plan).dtype == torch.bfloat16
