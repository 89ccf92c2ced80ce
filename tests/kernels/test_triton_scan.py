"""The Triton chunked scan (method="triton") equals the sequential reference, values and gradients,
across chunk boundaries (L = 63 in chunks of 16), with per-row, shared, constant and complex gains."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from neurotoken import scan

pytestmark = pytest.mark.usefixtures("triton_device")
L = 63


def _grads(method, a, b, h0, dim, chunk_size=None):
    a, b, h0 = (t.detach().clone().requires_grad_() for t in (a, b, h0))
    h = scan.linear_scan(a, b, h0, dim, method=method, chunk_size=chunk_size)
    weights = torch.linspace(-1, 1, h.numel(), device=h.device).view(h.shape)
    (h * weights).real.sum().backward()
    return h.detach(), a.grad, b.grad, h0.grad


@pytest.mark.parametrize("a_shape, chunk_size", [((2, L, 3), 16), ((1, L, 3), 64), ((1, 1, 3), 64)],
                         ids=["per-row", "shared", "constant"])
def test_triton_scan_matches_sequential(triton_device, a_shape, chunk_size):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(a_shape, generator=g).to(triton_device)
    b, h0 = torch.randn(2, L, 3, generator=g).to(triton_device), torch.randn(2, 3, generator=g).to(triton_device)
    for got, want in zip(_grads("triton", a, b, h0, 1, chunk_size), _grads("sequential", a, b, h0, 1)):
        assert_close(got, want)


@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 3), length=st.integers(1, 20), c=st.integers(1, 5), chunk=st.integers(4, 8),
       seed=st.integers(0, 99))
def test_triton_scan_matches_sequential_on_random_shapes(triton_device, n, length, c, chunk, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.rand(n, length, c, generator=g) * 1.2).to(triton_device), torch.randn(n, length, c, generator=g)
    b, h0 = b.to(triton_device), torch.randn(n, c, generator=g).to(triton_device)
    for got, want in zip(_grads("triton", a, b, h0, 1, chunk), _grads("sequential", a, b, h0, 1)):
        assert_close(got, want)


def test_triton_scan_over_the_leading_dim_without_h0(triton_device):
    a = torch.rand(L, 1, 4, device=triton_device)
    b = torch.randn(L, 1, 4, device=triton_device)
    assert_close(scan.linear_scan(a, b, method="triton"), scan.linear_scan(a, b, method="sequential"))


def test_triton_scan_matches_sequential_with_complex_gains(triton_device):
    g = torch.Generator().manual_seed(1)
    a = torch.polar(torch.rand(2, L, 3, generator=g), torch.rand(2, L, 3, generator=g) * 3).to(triton_device)
    b = torch.randn(2, L, 3, dtype=torch.complex64, generator=g).to(triton_device)
    h0 = torch.randn(2, 3, dtype=torch.complex64, generator=g).to(triton_device)
    for got, want in zip(_grads("triton", a, b, h0, 1, 16), _grads("sequential", a, b, h0, 1)):
        assert_close(got, want)


def test_triton_scan_steps_aside_where_it_cannot_run(triton_device):
    b = torch.randn(5, 2, dtype=torch.float16, device=triton_device)
    with pytest.warns(RuntimeWarning, match="method 'triton' cannot run"):
        h = scan.linear_scan(0.5, b, method="triton")
    assert torch.equal(h, scan.linear_scan(0.5, b, method="parallel"))


def test_choose_takes_triton_on_cuda_only(triton_device):
    b = torch.randn(2, L, 3, device=triton_device)
    assert (scan.choose(b, 1) == "triton") == (triton_device.type == "cuda")
