import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.data import baselines, scenes


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 20), min_size=2, max_size=5))
def test_majority_scores_the_fraction_of_the_largest_class(counts):
    y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    assert baselines.majority(y, y) == pytest.approx(max(counts) / sum(counts))


def test_logistic_regression_separates_separable_data_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    y = (x @ torch.randn(5, 3, generator=g)).argmax(-1)  # linear class boundaries
    assert baselines.logistic_regression(x[:200], y[:200], x[200:], y[200:]) > 0.9
    noise = torch.randint(2, (300,), generator=g)
    assert baselines.logistic_regression(x[:200], noise[:200], x[200:], noise[200:]) < 0.65


def test_bag_of_bytes_counts_each_byte_but_the_pad():
    ids = torch.tensor([[104, 105, 105, 0, 0], [255, 0, 0, 0, 0]])
    counts = baselines.bag_of_bytes(ids)
    assert counts.shape == (2, 256) and counts.dtype == torch.float32
    assert counts[0, 105] == 2 and counts[0, 104] == 1 and counts[1, 255] == 1 and counts[:, 0].sum() == 0
    assert counts.sum().item() == 4


def test_mean_iou_of_hand_counted_masks():
    target = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1]])
    predicted = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 1]])
    # class 0: |P & T| = 2, |P | T| = 4; class 1: 3 / 4; class 2: 1 / 2
    assert baselines.mean_iou(predicted, target, 3) == pytest.approx((2 / 4 + 3 / 4 + 1 / 2) / 3)
    assert baselines.mean_iou(target, target, 5) == 1.0  # absent classes are left out


def test_colour_threshold_finds_foreground_but_not_classes():
    train, test = scenes(60, seed=0), scenes(40, seed=1)
    score = baselines.colour_threshold(train.images, train.masks, test.images, test.masks, 5)
    background_only = baselines.mean_iou(torch.zeros_like(test.masks), test.masks, 5)
    assert background_only < score < 0.5


def test_bad_inputs_are_named():
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="x_train and y_train"):
        baselines.logistic_regression(x, y[:3], x, y)
    with pytest.raises(TypeError, match="y_test"):
        baselines.logistic_regression(x, y, x, y.float())
    with pytest.raises(ValueError, match="x_test"):
        baselines.logistic_regression(x, y, torch.zeros(4, 2), y)
    with pytest.raises(ValueError, match="predicted and target"):
        baselines.mean_iou(y, y[:2], 2)
    with pytest.raises(TypeError, match="ids"):
        baselines.bag_of_bytes(torch.zeros(2, 3))
    s = scenes(2, seed=0)
    with pytest.raises(ValueError, match="masks_test"):
        baselines.colour_threshold(s.images, s.masks, s.images, s.masks[:, :8], 5)
