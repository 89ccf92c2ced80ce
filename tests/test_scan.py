import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from neurotoken.kernels import scan as fused_scan
from neurotoken.scan import METHODS, choose, linear_scan

FAST = ("parallel", "chunked", "fft", "fused")
ALL = ("sequential",) + FAST


def _close_to(out, ref, tol=1e-5):
    """assert_close with an absolute tolerance relative to the reference's scale."""
    scale = max(ref.abs().max().item(), 1.0)
    assert_close(out, ref.to(out.dtype), atol=tol * scale, rtol=tol)


@pytest.mark.parametrize("method", ALL)
def test_hand_computation_with_h0(method):
    # h0 = 4: 0.5*4 + 1 = 3, 0.5*3 + 2 = 3.5, 0.5*3.5 + 3 = 4.75
    out = linear_scan(0.5, torch.tensor([1.0, 2.0, 3.0]), torch.tensor(4.0), method=method, chunk_size=2)
    assert_close(out, torch.tensor([3.0, 3.5, 4.75]))


def test_method_registry_lists_all_methods():
    assert set(METHODS.names()) == {"auto", "triton", *ALL}


@st.composite
def problems(draw, constant_gains=False):
    """A random scan problem: b of 1-4 dims, a dim (maybe negative), gains, h0, chunk size."""
    ndim = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    dim = draw(st.integers(-ndim, ndim - 1))
    shape[dim] = draw(st.sampled_from([1, 2, 5, 16, 17, 63, 64, 65]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    b = torch.randn(shape, generator=g)
    kinds = ["scalar", "0-d", "per-channel"] + ([] if constant_gains else ["per-step"])
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        a = draw(st.floats(0.0, 1.0))
    elif kind == "0-d":
        a = torch.rand((), generator=g)
    else:  # a's shape is b's with leading dims dropped (per-step gains keep the scanned dim)
        a_shape = list(shape)
        if kind == "per-channel":
            a_shape[dim] = 1
        first = draw(st.integers(0, ndim if kind == "per-channel" else dim % ndim))
        a = torch.rand(a_shape[first:], generator=g)
    rest = shape[:dim % ndim] + shape[dim % ndim + 1:]
    h0 = {"none": None, "full": torch.randn(rest, generator=g), "0-d": torch.randn((), generator=g)}[
        draw(st.sampled_from(["none", "full", "0-d"]))]
    return a, b, h0, dim, draw(st.sampled_from([1, 3, 16, 64]))


@settings(deadline=None, max_examples=150)
@given(problems(), st.sampled_from(["parallel", "chunked", "fused", "auto"]))
def test_parallel_chunked_and_fused_scans_match_sequential(problem, method):
    a, b, h0, dim, chunk = problem
    ref = linear_scan(a, b, h0, dim, method="sequential")
    out = linear_scan(a, b, h0, dim, method=method, chunk_size=chunk)
    assert out.shape == b.shape
    _close_to(out, ref)


@settings(deadline=None, max_examples=80)
@given(problems(constant_gains=True))
def test_fft_scan_matches_sequential_for_constant_gains(problem):
    a, b, h0, dim, _ = problem
    _close_to(linear_scan(a, b, h0, dim, method="fft"), linear_scan(a, b, h0, dim, method="sequential"))


@pytest.mark.parametrize("method", ["parallel", "chunked", "fft", "fused", "auto"])
def test_long_sequence_with_gain_near_one_matches_float64_reference(method):
    g = torch.Generator().manual_seed(0)
    b = torch.randn(4096, 3, generator=g)
    a = torch.tensor([0.999, 0.9995, 0.99])
    h0 = torch.randn(3, generator=g)
    ref = linear_scan(a.double(), b.double(), h0.double(), method="sequential")
    _close_to(linear_scan(a, b, h0, method=method), ref)


def test_fft_complex_gain_near_unit_circle_long_sequence():
    g = torch.Generator().manual_seed(1)
    b = torch.randn(4096, 2, dtype=torch.complex64, generator=g)
    a = 0.999 * complex(math.cos(0.3), math.sin(0.3))
    ref = linear_scan(a, b.to(torch.complex128), method="sequential")
    out = linear_scan(a, b, method="fft")
    assert out.dtype == torch.complex64
    _close_to(out, ref)


@pytest.mark.parametrize("method", ALL)
def test_zero_gain_returns_inputs(method):
    b = torch.randn(37, 4)
    assert_close(linear_scan(0.0, b, torch.randn(4), method=method, chunk_size=8), b)


@pytest.mark.parametrize("method", ["parallel", "chunked", "fused", "auto"])
def test_zero_negative_and_complex_per_step_gains_match_sequential(method):
    g = torch.Generator().manual_seed(2)
    b = torch.randn(70, 5, generator=g)
    signed = 2 * torch.rand(70, 5, generator=g) - 1
    signed[::7] = 0.0
    turn = torch.polar(torch.rand(70, 5, generator=g), 6.3 * torch.rand(70, 5, generator=g))
    bc = torch.randn(70, 5, dtype=torch.complex64, generator=g)
    for a, b_ in [(signed, b), (-1.0, b), (turn, bc), (turn, b)]:
        ref = linear_scan(a, b_, method="sequential")
        _close_to(linear_scan(a, b_, method=method, chunk_size=16), ref)


@pytest.mark.parametrize("a", [-0.95, 0.6 - 0.7j, 1j])
def test_fft_negative_and_complex_constant_gains_match_sequential(a):
    b = torch.randn(100, 3, dtype=torch.complex64)
    h0 = torch.randn(3, dtype=torch.complex64)
    _close_to(linear_scan(a, b, h0, method="fft"), linear_scan(a, b, h0, method="sequential"))


def test_complex_gain_promotes_real_inputs():
    # h0 = 1: 1j + 1, 1j (1 + 1j) + 1 = 1j, 1j * 1j + 1 = 0
    out = linear_scan(1j, torch.ones(3), torch.tensor(1.0))
    assert_close(out, torch.tensor([1 + 1j, 1j, 0j]))


def _grad_problem(constant):
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1 if constant else 9, 2, 3, dtype=torch.float64, generator=g)
    a[0, 0] = 0.0  # zero gains must not break gradients (cumprod backward)
    b = torch.randn(9, 2, 3, dtype=torch.float64, generator=g)
    h0 = torch.randn(2, 3, dtype=torch.float64, generator=g)
    return [x.requires_grad_() for x in (a, b, h0)]


@pytest.mark.parametrize("method", ALL)
def test_gradcheck(method):
    a, b, h0 = _grad_problem(constant=method == "fft")
    scan = lambda a, b, h0: linear_scan(a, b, h0, dim=0, method=method, chunk_size=4)  # noqa: E731
    assert torch.autograd.gradcheck(scan, (a, b, h0))


@pytest.mark.parametrize("method", FAST)
def test_gradients_match_sequential(method):
    a, b, h0 = _grad_problem(constant=method == "fft")
    w = torch.randn(9, 2, 3, dtype=torch.float64)
    grads = {}
    for m in ("sequential", method):
        out = linear_scan(a, b, h0, method=m, chunk_size=4)
        grads[m] = torch.autograd.grad((out * w).sum(), (a, b, h0))
    assert_close(grads[method], grads["sequential"])


def test_complex_gradients_match_sequential():
    g = torch.Generator().manual_seed(4)
    radius, angle = torch.rand(2, 3, dtype=torch.float64, generator=g)
    a = torch.polar(radius, 6.3 * angle).requires_grad_()
    b = torch.randn(20, 3, dtype=torch.complex128, generator=g, requires_grad=True)
    grads = {}
    for m in ALL:
        out = linear_scan(a, b, method=m, chunk_size=6)
        grads[m] = torch.autograd.grad(out.abs().sum(), (a, b))
    for m in FAST:
        assert_close(grads[m], grads["sequential"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(b=[1.0, 2.0]), TypeError, "b must be a torch.Tensor"),
        (dict(b=torch.tensor(1.0)), ValueError, "b must have at least 1"),
        (dict(b=torch.arange(3)), TypeError, "b must be a floating-point"),
        (dict(a=torch.ones(4)), ValueError, r"a of shape \(4,\) must broadcast to b of shape \(5, 3\)"),
        (dict(a=torch.ones(1, 5, 3)), ValueError, "a of shape"),
        (dict(a=float("inf")), ValueError, "a must be finite"),
        (dict(a="0.5"), TypeError, "a must be a number"),
        (dict(h0=torch.ones(5)), ValueError, r"h0 of shape \(5,\) must broadcast to b without dim"),
        (dict(h0=torch.ones(2, 3)), ValueError, "h0 of shape"),
        (dict(h0=0.0), TypeError, "h0 must be a torch.Tensor"),
        (dict(method="magic"), ValueError, "scan method 'magic'.*sequential, parallel, chunked, fft, fused, auto"),
        (dict(method="fft", a=torch.rand(5, 3)), ValueError, "a of shape .*constant along dim"),
        (dict(method="fft", a=torch.rand(3), dim=-1), ValueError, "a of shape .*constant along dim"),
        (dict(dim=2), ValueError, r"dim must be in \[-2, 1\]"),
        (dict(dim=-3), ValueError, "dim must be in"),
        (dict(dim=0.0), TypeError, "dim must be an int"),
        (dict(b=torch.ones(0, 3)), ValueError, "b must have a nonzero length"),
        (dict(chunk_size=0), ValueError, "chunk_size must be >= 1"),
        (dict(chunk_size=2.0), TypeError, "chunk_size must be an int"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    args = dict(a=0.5, b=torch.randn(5, 3), h0=None, dim=0, method="auto") | kwargs
    with pytest.raises(error, match=match):
        linear_scan(**args)


@pytest.mark.parametrize("shape, dim", [((63, 5), 0), ((2, 63, 3), 1), ((3, 2, 63), -1), ((63,), 0)])
def test_fused_scan_gradients_match_sequential_at_awkward_lengths(shape, dim):
    g = torch.Generator().manual_seed(5)
    b = torch.randn(shape, generator=g, requires_grad=True)
    gains = list(shape)
    gains[dim] = 1
    a = (0.5 + 0.5 * torch.rand(gains[1:] if dim != 0 else gains, generator=g)).requires_grad_()
    h0 = torch.randn(shape[:dim % len(shape)] + shape[dim % len(shape) + 1:], generator=g, requires_grad=True)
    w = torch.randn(shape, generator=g)
    grads = {}
    for m in ("sequential", "fused"):
        out = linear_scan(a, b, h0, dim, method=m)
        grads[m] = (out.detach(), *torch.autograd.grad((out * w).sum(), (a, b, h0)))
    for fused, ref in zip(grads["fused"], grads["sequential"]):
        assert_close(fused, ref, rtol=1e-4, atol=1e-4)


def test_choose_picks_fused_where_it_runs_and_the_torch_scans_elsewhere(monkeypatch):
    b = torch.zeros(2, 4096, 8)
    expected = "fused" if fused_scan.unsupported(b) is None else "parallel"
    assert choose(b, 1) == expected
    monkeypatch.setattr(fused_scan, "unsupported", lambda b: "numba is not installed")
    assert choose(b, 1) == "parallel" and choose(torch.zeros(2, 63, 8), 1) == "sequential"
    assert choose(torch.zeros(4096, 1024), 0) == "sequential"  # too many channels for the prefix scan


def test_off_the_cpu_auto_and_fused_take_the_parallel_scan_not_a_loop():
    b = torch.empty(3, 5, 2, device="meta")
    assert choose(b, 1) == "parallel" and choose(torch.empty(2, 63, 8, device="meta"), 1) == "parallel"
    assert linear_scan(0.5, b, dim=1).device.type == "meta"
    with pytest.warns(RuntimeWarning, match="'fused' runs on the cpu only; b is on meta: using 'parallel'"):
        assert linear_scan(torch.rand(5, 1), b, dim=1, method="fused").shape == b.shape


@settings(deadline=None, max_examples=60)
@given(problems(), st.sampled_from(METHODS.names()))
def test_every_method_takes_a_b_h0_dim_and_matches_sequential(problem, name):
    a, b, h0, dim, _ = problem
    a = torch.as_tensor(a, dtype=b.dtype)
    a = a.reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape))
    if name == "fft" and a.shape[dim] != 1:
        return
    dim %= b.dim()
    _close_to(METHODS.get(name)(a, b, h0, dim), METHODS.get("sequential")(a, b, h0, dim))


def test_the_former_chooser_call_of_auto_still_names_a_method_with_a_deprecation_warning():
    b = torch.zeros(2, 63, 8)
    with pytest.warns(DeprecationWarning, match="use neurotoken.scan.choose"):
        assert METHODS.get("auto")(b, 1) == choose(b, 1)


def test_h0_joins_the_dtype_promotion():
    out = linear_scan(0.5, torch.ones(3, 2), h0=torch.ones(2, dtype=torch.complex64), method="sequential")
    assert out.dtype == torch.complex64 and out.shape == (3, 2)


def test_fused_refuses_what_its_kernel_cannot_run():
    with pytest.raises(ValueError, match="method 'fused' cannot run: .*float16"):
        linear_scan(0.5, torch.ones(5, 3, dtype=torch.float16), method="fused")


@pytest.mark.parametrize("method", METHODS.names())
def test_a_scan_reads_no_tensor_values(monkeypatch, method):
    a, b, h0 = torch.rand(1, 3), torch.randn(7, 3), torch.randn(3)  # gains constant in time (fft)

    def sync(*args, **kwargs):
        raise AssertionError("a host sync in the scan")
    for name in ("__bool__", "item", "tolist", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    assert linear_scan(a, b, h0, method=method, chunk_size=3).shape == b.shape


def test_dim_takes_any_integral_number_but_not_a_bool():
    np = pytest.importorskip("numpy")
    assert_close(linear_scan(0.5, torch.ones(3, 1), dim=np.int64(0)).flatten(), torch.tensor([1.0, 1.5, 1.75]))
    assert_close(linear_scan(0.5, torch.ones(1, 3), dim=np.int32(-1)).flatten(), torch.tensor([1.0, 1.5, 1.75]))
    with pytest.raises(TypeError, match="dim must be an int, got bool"):
        linear_scan(0.5, torch.ones(3), dim=False)
