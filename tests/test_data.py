import torch

from neurotoken.data import load_digits


def test_digits_split_is_fixed_stratified_and_scaled():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_test, b.x_test)
    assert len(a.x_train) + len(a.x_test) == 1797
    assert len(a.x_test) == 450  # ceil(0.25 * 1797)
    assert a.x_train.min() >= 0 and a.x_train.max() <= 1
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47
    assert not torch.equal(load_digits(seed=1).x_test, a.x_test)
