import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken import surrogate as sg

ALL = [sg.StraightThrough(), sg.StraightThrough(0.5), sg.Sigmoid(), sg.Sigmoid(10.0), sg.Atan(), sg.Atan(0.7),
       sg.Triangle(), sg.Triangle(0.3), sg.FastSigmoid(), sg.FastSigmoid(3.0)]


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_grad_matches_finite_difference_of_primitive(s):
    # avoid the kinks of the triangle (0, +-width) where the derivative is one-sided
    x = torch.linspace(-3, 3, 601, dtype=torch.float64) + 1e-3
    eps = 1e-6
    fd = (s.primitive(x + eps) - s.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(s.grad(x), fd, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("s", [sg.Sigmoid(), sg.Atan(), sg.Triangle(), sg.Triangle(0.25)], ids=repr)
def test_smooth_surrogates_have_unit_area(s):
    x = torch.linspace(-400, 400, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(s.grad(x), x).item()
    assert area == pytest.approx(1.0, abs=2e-3)


def test_hand_values_at_zero():
    assert sg.Sigmoid(4.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)  # k/4
    assert sg.Atan(2.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)  # alpha/2
    assert sg.Triangle(0.5).grad(torch.tensor(0.0)).item() == pytest.approx(2.0)  # 1/w
    assert sg.Triangle(0.5).grad(torch.tensor(0.6)).item() == 0.0
    assert sg.FastSigmoid(25.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert sg.FastSigmoid(25.0).grad(torch.tensor(0.04)).item() == pytest.approx(0.25)  # 1/(1+1)^2
    assert sg.StraightThrough().grad(torch.tensor(5.0)).item() == 1.0


@settings(deadline=None, max_examples=40)
@given(st.floats(-5, 5))
def test_grad_is_symmetric_and_peaks_at_zero(x):
    for s in ALL:
        g = s.grad(torch.tensor([x, -x, 0.0], dtype=torch.float64))
        assert g[0] == pytest.approx(g[1].item())
        assert g[2] >= g[0] - 1e-12


@pytest.mark.parametrize("cls", [sg.StraightThrough, sg.Sigmoid, sg.Atan, sg.Triangle, sg.FastSigmoid])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_nonpositive_width_rejected(cls, bad):
    with pytest.raises(ValueError, match=cls.__name__):
        cls(bad)


def test_resolve_by_name_and_unknown_name_lists_options():
    assert sg.resolve("triangle") == sg.Triangle()
    with pytest.raises(ValueError, match="unknown surrogate 'nope'.*atan"):
        sg.resolve("nope")
    with pytest.raises(TypeError, match="surrogate"):
        sg.resolve(3)


@settings(deadline=None, max_examples=30)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), block=st.integers(1, 20),
       s=st.sampled_from(ALL), transpose=st.booleans())
def test_grad_in_blocks_equals_the_formula_on_the_whole_tensor(shape, block, s, transpose):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    if transpose and x.dim() > 1:
        x = x.transpose(0, -1)  # non-contiguous
    whole = s.formula(x, s.parameter)
    old, sg.BLOCK = sg.BLOCK, block
    try:
        blocked = s.grad(x)
    finally:
        sg.BLOCK = old
    assert blocked.shape == x.shape
    torch.testing.assert_close(blocked, whole, rtol=0, atol=0)


def test_a_new_surrogate_needs_only_its_formula_and_primitive():
    @sg.dataclass(frozen=True)
    class Quadratic(sg.Surrogate):
        width: float = 2.0

        def primitive(self, x):
            return x.clamp(-self.width, self.width) / (2 * self.width) + 0.5

        @staticmethod
        def formula(x, w):
            return (abs(x) < w) * (0.5 / w)

    assert torch.equal(Quadratic().grad(torch.tensor([0.0, 3.0])), torch.tensor([0.25, 0.0]))
    with pytest.raises(ValueError, match="Quadratic.width"):
        Quadratic(-1.0)


def test_a_surrogate_without_formula_or_grad_says_so():
    class Bare(sg.Surrogate):
        pass
    with pytest.raises(NotImplementedError, match="Bare defines neither formula nor grad"):
        Bare().grad(torch.zeros(2))


def test_config_names_the_surrogate_and_its_width():
    assert sg.config(sg.Triangle(0.3)) == {"name": "triangle", "width": 0.3}
    assert sg.resolve({"name": "atan", "alpha": 3.0}) == sg.Atan(3.0)
