import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from neurotoken import _checks

INTEGER_TYPES = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32)


@given(st.integers(1, 100), st.sampled_from(INTEGER_TYPES))
def test_positive_int_accepts_any_integral_number_and_returns_a_python_int(n, kind):
    out = _checks.positive_int("T", kind(n))
    assert out == n and type(out) is int


@pytest.mark.parametrize("bad", [True, np.bool_(True), torch.tensor(True), 4.0, np.float32(4.0), "4", None])
def test_positive_int_refuses_bools_floats_and_strings(bad):
    with pytest.raises(TypeError, match="T must be an int"):
        _checks.positive_int("T", bad)


@given(st.floats(-1e6, 1e6), st.sampled_from((float, np.float32, np.float64)))
def test_number_accepts_numpy_reals(x, kind):
    assert _checks.number("beta", kind(x)) == pytest.approx(float(kind(x)))


@pytest.mark.parametrize("bad, error", [(True, TypeError), (np.bool_(False), TypeError), (1j, TypeError),
                                        (float("nan"), ValueError), (np.float32("inf"), ValueError)])
def test_number_refuses_bools_complex_and_non_finite(bad, error):
    with pytest.raises(error, match="beta"):
        _checks.number("beta", bad)


def test_tensor_checks_values_only_when_asked():
    x = torch.tensor([1.0, float("nan")])
    assert _checks.tensor("x", x) is x
    with pytest.raises(ValueError, match="x must hold finite values"):
        _checks.tensor("x", x, finite=True)


def test_real_refuses_complex_tensors():
    with pytest.raises(TypeError, match="x must be a real tensor, got torch.complex128"):
        _checks.real("x", torch.zeros(2, dtype=torch.complex128))
