import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.data import docstring_modules, mask_bytes
from neurotoken.data.docstrings import IGNORE, MASK, MODULES, PAD, labelled_docstrings


def test_each_docstring_is_recorded_with_the_module_it_documents():
    import logging

    found = dict((doc, m) for m, doc in labelled_docstrings())
    assert found[logging.getLogger.__doc__.strip().replace("\n    ", "\n")] == "logging"
    assert {m for m, _ in labelled_docstrings()} <= set(MODULES)


def test_shapes_balance_padding_and_determinism():
    d = docstring_modules(k=4, max_len=64, per_module=12, test_per_module=3)
    assert d.modules == MODULES[:4]
    assert d.x_train.shape == (36, 64) and d.x_test.shape == (12, 64) and d.x_train.dtype == torch.int64
    assert d.y_train.bincount().tolist() == [9] * 4 and d.y_test.bincount().tolist() == [3] * 4
    assert (d.x_train != MASK).all() and (d.x_train[:, 0] != PAD).all()
    again = docstring_modules(k=4, max_len=64, per_module=12, test_per_module=3)
    assert all(torch.equal(a, b) for a, b in zip(d[:4], again[:4]))


def test_every_pinned_module_has_the_default_count():
    d = docstring_modules(k=len(MODULES), max_len=32)
    assert d.y_train.bincount().tolist() == [30] * len(MODULES) and d.y_test.bincount().tolist() == [10] * len(MODULES)


def test_train_and_test_texts_are_disjoint_and_the_seed_reselects():
    d = docstring_modules(k=3, max_len=512, seed=0)
    train, test = {tuple(r.tolist()) for r in d.x_train}, {tuple(r.tolist()) for r in d.x_test}
    assert not train & test
    assert not torch.equal(d.x_test, docstring_modules(k=3, max_len=512, seed=1).x_test)


def test_texts_decode_to_the_labelled_docstrings():
    d = docstring_modules(k=2, max_len=100_000, per_module=5, test_per_module=1)
    docs = {doc: m for m, doc in labelled_docstrings()}
    for row, label in zip(d.x_train, d.y_train):
        text = bytes(row[row != PAD].tolist()).decode()
        assert docs[text] == d.modules[label]


@settings(max_examples=20, deadline=None)
@given(p=st.floats(0.05, 0.9), seed=st.integers(0, 100))
def test_mask_bytes_masks_non_pad_bytes_and_targets_only_them(p, seed):
    ids = docstring_modules(k=2, max_len=128, per_module=6, test_per_module=1).x_train
    inputs, targets = mask_bytes(ids, p, seed)
    masked = inputs == MASK
    assert not (masked & (ids == PAD)).any()
    assert torch.equal(targets[masked], ids[masked]) and (targets[~masked] == IGNORE).all()
    assert torch.equal(inputs[~masked], ids[~masked])
    rate = masked.sum() / (ids != PAD).sum()
    assert abs(rate.item() - p) < 0.1
    assert torch.equal(mask_bytes(ids, p, seed)[0], inputs)


@pytest.mark.parametrize("kwargs, name", [({"k": 1}, "k"), ({"k": 99}, "k"), ({"max_len": 0}, "max_len"),
                                          ({"per_module": 10, "test_per_module": 10}, "test_per_module"),
                                          ({"per_module": 10_000}, "per_module")])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        docstring_modules(**kwargs)


def test_mask_bytes_refuses_float_ids_and_bad_p():
    with pytest.raises(TypeError, match="ids"):
        mask_bytes(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="p"):
        mask_bytes(torch.zeros(2, 3, dtype=torch.int64), p=0.0)


def test_transfer_texts_are_unlabelled_docstrings_chosen_by_the_seed():
    from neurotoken.data.docstrings import transfer_texts, unlabelled_docstrings

    docs = set(unlabelled_docstrings())
    assert docs and not docs & {doc for _, doc in labelled_docstrings()}  # no text of a class, test texts included
    ids = transfer_texts(6, max_len=100_000, seed=0)
    assert ids.shape[0] == 6 and ids.dtype == torch.int64
    assert all(bytes(row[row != PAD].tolist()).decode() in docs for row in ids)
    assert torch.equal(transfer_texts(6, 64, seed=0), ids[:, :64])
    assert not torch.equal(transfer_texts(6, 64, seed=1), ids[:, :64])
    with pytest.raises(ValueError, match="n must be <="):
        transfer_texts(len(docs) + 1)
