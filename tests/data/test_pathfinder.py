import math
from collections import deque

import numpy as np
import pytest
import torch

from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.tree import DecisionTreeClassifier

from neurotoken.data.pathfinder import dot_centres, dot_gaps, pathfinder


def reachable(image: np.ndarray, start, goal, jump: int = 2) -> bool:
    """BFS over lit pixels, stepping to any lit pixel within Chebyshev distance ``jump`` (bridges a dash gap)."""
    size = len(image)
    seen, todo = {start}, deque([start])
    while todo:
        r, c = todo.popleft()
        if (r, c) == goal:
            return True
        for dr in range(-jump, jump + 1):
            for dc in range(-jump, jump + 1):
                q = (r + dr, c + dc)
                if 0 <= q[0] < size and 0 <= q[1] < size and image[q] > 0 and q not in seen:
                    seen.add(q)
                    todo.append(q)
    return False


def test_same_seed_same_images_and_another_seed_differs():
    a, b, c = pathfinder(6, seed=3), pathfinder(6, seed=3), pathfinder(6, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


@pytest.mark.parametrize("n", [7, 10])
def test_shapes_dtypes_and_balanced_labels(n):
    p = pathfinder(n, size=32, seed=0)
    assert p.x.shape == (n, 1024, 1) and p.x.dtype == torch.float32
    assert p.y.dtype == torch.int64 and int(p.y.sum()) == n // 2
    assert set(p.x.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("difficulty", ["easy", "intermediate", "hard"])
def test_positives_connect_the_dots_and_negatives_do_not(difficulty):
    p = pathfinder(12, size=32, difficulty=difficulty, seed=1)
    for x, y in zip(p.x, p.y):
        image = x.reshape(32, 32).numpy()
        dots = dot_centres(image)
        assert len(dots) == 2
        assert reachable(image, dots[0], dots[1]) == bool(y)


def test_harder_sets_draw_longer_contours():
    lit = [pathfinder(20, difficulty=d, seed=0).x.sum().item() for d in ("easy", "intermediate", "hard")]
    assert lit[0] < lit[1] < lit[2]


@pytest.mark.parametrize("kwargs, err", [({"n": 0}, ValueError), ({"n": 2.5}, TypeError),
                                          ({"n": 2, "difficulty": "medium"}, ValueError),
                                          ({"n": 2, "size": 8}, ValueError), ({"n": 2, "seed": -1}, ValueError)])
def test_bad_arguments_are_named(kwargs, err):
    name = next(k for k in ("difficulty", "size", "seed", "n") if k in kwargs and (k != "n" or len(kwargs) == 1))
    with pytest.raises(err, match=name):
        pathfinder(**kwargs)


def test_the_dot_distance_and_token_gap_do_not_predict_the_label():
    """Rules on where the dots sit, ignoring the contours, stay near chance (cross-validated)."""
    p = pathfinder(400, seed=0)
    gaps, y = dot_gaps(p.x).numpy(), p.y.numpy()
    for features in (gaps[:, :1], gaps[:, 1:], gaps):
        for rule in (DecisionTreeClassifier(max_depth=3, random_state=0), LogisticRegression()):
            assert cross_val_score(rule, features / features.std(0), y, cv=4).mean() <= 0.6


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 20), st.lists(st.integers(1, 14), min_size=4, max_size=4))
def test_dot_gaps_are_the_distance_and_token_gap_of_the_dot_centres(size, coords):
    r1, c1, r2, c2 = (min(v, size - 2) for v in coords)
    image = torch.zeros(size, size)
    for r, c in ((r1, c1), (r2, c2)):
        image[r - 1: r + 2, c - 1: c + 2] = 1
    if len(dot_centres(image.numpy())) != 2:  # overlapping dots light more (or fewer) full blocks
        return
    gaps = dot_gaps(image.reshape(1, -1, 1))
    torch.testing.assert_close(gaps, torch.tensor([[math.hypot(r1 - r2, c1 - c2), abs((r1 - r2) * size + c1 - c2)]]))


@pytest.mark.parametrize("x, message", [(torch.zeros(2, 1024), "dimensions"), (torch.zeros(2, 1000, 1), "square"),
                                         (torch.zeros(2, 1024, 1), "two 3x3 dots")])
def test_dot_gaps_refuses_images_without_two_dots_by_name(x, message):
    with pytest.raises(ValueError, match=f"x must.*{message}"):
        dot_gaps(x)


def conv(a: int, b: int) -> tuple:
    return torch.nn.Conv2d(a, b, 3, padding=1), torch.nn.ReLU()


@pytest.mark.slow
def test_a_small_cnn_learns_the_easy_set_well_above_chance():
    """The labels are learnable from the pixels: a 4-layer CNN on 2,000 easy images beats chance by far."""
    torch.manual_seed(0)
    p = pathfinder(2400, seed=0)
    x, y = p.x.reshape(-1, 1, 32, 32), p.y
    model = torch.nn.Sequential(*conv(1, 16), *conv(16, 16), torch.nn.MaxPool2d(2), *conv(16, 32),
                                torch.nn.MaxPool2d(2), *conv(32, 32), torch.nn.AdaptiveMaxPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(12):
        for idx in torch.randperm(2000).split(50):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        assert (model(x[2000:]).argmax(1) == y[2000:]).float().mean() > 0.75
