import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.accounting import pareto_front


def test_pareto_front_keeps_points_nobody_beats():
    energy = [1.0, 2.0, 3.0, 2.0, 0.5]
    acc = [0.5, 0.9, 0.8, 0.7, 0.4]
    assert pareto_front(energy, acc) == [True, True, False, False, True]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 1)), min_size=1, max_size=12))
def test_front_points_are_undominated_and_every_other_point_is_dominated_by_one(points):
    energy, quality = zip(*points)
    front = pareto_front(energy, quality)
    assert any(front)
    for (e, q), on in zip(points, front):
        beaten = any(e2 <= e and q2 >= q and (e2, q2) != (e, q) for e2, q2 in points)
        assert on != beaten


def test_pareto_front_refuses_unpaired_axes():
    with pytest.raises(ValueError, match="energy and quality"):
        pareto_front([1.0], [0.5, 0.6])
