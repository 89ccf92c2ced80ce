"""The Triton selective scan (selective_scan(method="triton")) equals the sequential reference: outputs,
last state and the gradients in x, delta, A, k, q and the start state, across chunk boundaries
(L = 63 in chunks of 16) and partial channel and state blocks (D = 37, N = 5)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from neurotoken.mixers import MambaBlock, SelectiveSSM
from neurotoken.mixers.ssm import selective_scan

pytestmark = pytest.mark.usefixtures("triton_device")


def _inputs(device, B, L, D, N, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x, k, q = torch.randn(B, L, D, generator=g), torch.randn(B, L, N, generator=g), torch.randn(B, L, N, generator=g)
    delta = torch.rand(B, L, D, generator=g) * 0.5 + 0.01
    A, state = torch.rand(D, N, generator=g) * 2 + 0.1, torch.randn(B, D, N, generator=g)
    return [t.to(device, dtype) for t in (x, delta, A, k, q, state)]


def _grads(method, inputs, with_state=True):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    y, S = selective_scan(*inputs[:5], inputs[5] if with_state else None, method=method)
    wy = torch.linspace(-1, 1, y.numel(), device=y.device, dtype=y.dtype).view(y.shape)
    ((y * wy).sum() + S.square().sum()).backward()
    return [y.detach(), S.detach()] + [t.grad for t in (inputs if with_state else inputs[:5])]


def test_triton_selective_scan_matches_sequential_values_and_gradients(triton_device):
    inputs = _inputs(triton_device, B=1, L=63, D=37, N=5)
    for got, want in zip(_grads("triton", inputs), _grads("sequential", inputs), strict=True):
        assert_close(got, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=3, deadline=None)
@given(B=st.integers(1, 2), L=st.integers(1, 20), D=st.integers(1, 40), N=st.integers(1, 9),
       with_state=st.booleans(), seed=st.integers(0, 99))
def test_triton_selective_scan_matches_sequential_on_random_shapes(triton_device, B, L, D, N, with_state, seed):
    inputs = _inputs(triton_device, B, L, D, N, seed, torch.float64)
    for got, want in zip(_grads("triton", inputs, with_state), _grads("sequential", inputs, with_state),
                         strict=True):
        assert_close(got, want)


def test_selective_ssm_runs_the_triton_kernel_without_gradients(triton_device):
    torch.manual_seed(0)
    mixer = SelectiveSSM(6, d_state=3).to(triton_device)
    x = torch.randn(2, 19, 6, device=triton_device)
    with torch.no_grad():
        want = mixer(x)
        mixer.method = "triton"
        assert_close(mixer(x), want, rtol=1e-4, atol=1e-5)


def test_auto_takes_the_triton_selective_scan_on_cuda_only(triton_device, monkeypatch):
    from neurotoken.kernels.triton import selective_scan as kernel

    calls = []
    monkeypatch.setattr(kernel.SelectiveScan, "apply", lambda *a: calls.append(1) or (a[0], a[5]))
    inputs = _inputs(triton_device, B=1, L=3, D=2, N=2)
    selective_scan(*inputs, method="auto")
    assert bool(calls) == (triton_device.type == "cuda")


def test_triton_selective_scan_steps_aside_where_it_cannot_run(triton_device):
    inputs = _inputs(triton_device, B=1, L=5, D=3, N=2, dtype=torch.float16)
    with pytest.warns(RuntimeWarning, match="method 'triton' cannot run"):
        y, S = selective_scan(*inputs, method="triton")
    want = selective_scan(*inputs, method="parallel")
    assert torch.equal(y, want[0]) and torch.equal(S, want[1])


def test_triton_selective_scan_reads_no_values(triton_device, monkeypatch):
    """No host sync in forward or backward."""
    inputs = [t.requires_grad_() for t in _inputs(triton_device, B=1, L=5, D=3, N=2)]
    for name in ("item", "tolist", "__bool__", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("a value was read"))
    y, S = selective_scan(*inputs, method="triton")
    (y.sum() + S.sum()).backward()


def test_mamba_block_with_the_triton_scan_equals_sequential_with_gradients(triton_device):
    torch.manual_seed(0)
    block = MambaBlock(4, d_state=3, expand=2, method="sequential").to(triton_device)
    x = torch.randn(2, 9, 4, device=triton_device)
    want = block(x, return_state=True)
    want_grads = torch.autograd.grad(want[0].square().sum(), list(block.parameters()))
    block.method = "triton"
    got = block(x, return_state=True)
    assert_close(got[0], want[0], rtol=1e-4, atol=1e-5)
    assert_close(got[1].ssm, want[1].ssm, rtol=1e-4, atol=1e-5)
    for g, w in zip(torch.autograd.grad(got[0].square().sum(), list(block.parameters())), want_grads, strict=True):
        assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_triton_selective_scan_takes_half_inputs_promoted_by_a_float32_A(triton_device):
    """As under autocast: bfloat16 activations with the float32 A computed from its parameter."""
    x, delta, A, k, q, _ = _inputs(triton_device, B=1, L=5, D=3, N=2)
    half = [t.to(torch.bfloat16) for t in (x, delta, k, q)]
    got = selective_scan(half[0], half[1], A, half[2], half[3], method="triton")
    want = selective_scan(*(t.float() for t in half[:2]), A, *(t.float() for t in half[2:]), method="sequential")
    assert got[0].dtype == torch.float32
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)
