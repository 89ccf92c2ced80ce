import pytest
import torch

from neurotoken.data import load_listops
from neurotoken.data.listops import END, OPERATORS, PAD, VOCAB, evaluate, generate, majority_accuracy, tokenize


@pytest.mark.parametrize("expression, value", [
    ("7", 7),
    ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
    ("[MIN 3 [MAX 1 8 ] 5 ]", 3),
    ("[SM 9 8 7 ]", 4),             # 24 mod 10
    ("[MED 1 9 4 ]", 4),            # odd count: the middle value
    ("[MED 2 5 ]", 3),              # even count: int((2 + 5) / 2) = int(3.5)
    ("[MED 1 3 8 9 ]", 5),          # int((3 + 8) / 2) = int(5.5)
    ("[SM [MED 0 1 ] [MAX 0 0 ] 6 ]", 6),
])
def test_evaluator_computes_lra_semantics(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("bad", ["", "[MAX 1 2", "1 2", "[MAX 1 ]", "]", "[MAX 1 12 ]", "[FIRST 1 2 ]"])
def test_evaluator_rejects_malformed_expressions(bad):
    with pytest.raises(ValueError, match="expression"):
        evaluate(bad)


def test_generated_labels_equal_the_evaluator_and_respect_the_grammar():
    expressions, values = generate(2000, max_depth=5, max_args=6, min_length=4, max_length=96, seed=3)
    assert len(set(expressions)) == 2000
    for e, v in zip(expressions, values):
        assert evaluate(e) == v
        tokens = e.split()
        assert 4 <= len(tokens) <= 96 and tokens[0] in OPERATORS
        depth = deepest = 0
        for t in tokens:
            depth += (t in OPERATORS) - (t == END)
            deepest = max(deepest, depth)
        assert deepest <= 4  # operators sit above max_depth; nodes at depth 5 are digits
    assert set(values) == set(range(10))
    assert {t for e in expressions for t in e.split()} == set(VOCAB) - {PAD}


def test_generator_is_deterministic_in_its_seed():
    assert generate(50, seed=1) == generate(50, seed=1)
    assert generate(50, seed=1) != generate(50, seed=2)


def test_tokenize_pads_with_id_zero():
    ids = tokenize(["[MAX 2 9 ]", "3"], length=6)
    assert ids.dtype == torch.int64 and ids.shape == (2, 6)
    want = [VOCAB.index(t) for t in ("[MAX", "2", "9", "]")]
    assert ids[0].tolist() == want + [0, 0] and ids[1].tolist() == [VOCAB.index("3")] + [0] * 5
    assert tokenize(["[MAX 2 9 ]", "3"]).shape == (2, 4)
    with pytest.raises(ValueError, match="unknown tokens"):
        tokenize(["[MAX 2 X ]"])
    with pytest.raises(ValueError, match="length must be >= 4"):
        tokenize(["[MAX 2 9 ]"], length=3)


def test_loader_splits_distinct_expressions_and_reports_the_majority_class():
    data = load_listops(n_train=300, n_test=100, max_length=64, seed=5)
    assert data.x_train.shape[0] == 300 and data.x_test.shape[0] == 100
    assert data.x_train.shape[1] == data.x_test.shape[1] <= 64
    train, test = {tuple(r.tolist()) for r in data.x_train}, {tuple(r.tolist()) for r in data.x_test}
    assert len(train) == 300 and not train & test
    baseline = majority_accuracy(data.y_train, data.y_test)
    assert baseline == (data.y_test == torch.bincount(data.y_train).argmax()).float().mean().item()
    assert 0.05 < baseline < 0.3


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be >= 1"),
    ({"n": 10, "max_depth": 1}, "max_depth must be >= 2"),
    ({"n": 10, "max_args": 1}, "max_args must be >= 2"),
    ({"n": 10, "min_length": 9, "max_length": 8}, "max_length must be >= 9"),
    ({"n": 10, "max_depth": 2, "max_args": 3, "min_length": 6}, "exceeds the longest expression"),
    ({"n": 500, "max_depth": 2, "max_args": 2}, "found only"),  # 400 exist,
])
def test_generator_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(**kwargs)
