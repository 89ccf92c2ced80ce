import pytest
import torch

from neurotoken.data.text import decode, encode, load_text, stdlib_corpus, windows


def test_stdlib_corpus_is_deterministic_and_capped():
    text = stdlib_corpus()
    assert stdlib_corpus.__wrapped__(2_000_000) == text  # rebuilt from scratch: same text
    assert 500_000 < len(text.encode()) <= 2_000_000
    assert len(stdlib_corpus(1000).encode()) <= 1000
    assert "Abstract Base Classes" in text  # abc's module docstring comes first


def test_encode_decode_round_trip_bytes():
    text = "naïve ✓ text"
    tokens = encode(text)
    assert tokens.dtype == torch.long and int(tokens.max()) < 256 and len(tokens) == len(text.encode())
    assert decode(tokens) == text


def test_windows_shift_targets_by_one():
    x, y = windows(torch.arange(23), 5)
    assert x.shape == y.shape == (4, 5)
    assert torch.equal(x.flatten(), torch.arange(20)) and torch.equal(y.flatten(), torch.arange(1, 21))


def test_file_split_is_disjoint_and_in_order(tmp_path):
    path = tmp_path / "t.txt"
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    path.write_text(text, encoding="utf-8")
    split = load_text(path, L=16, val_fraction=0.2)
    tokens = encode(text)
    assert torch.equal(split.x_train.flatten(), tokens[:len(split.x_train.flatten())])
    assert torch.equal(split.x_val.flatten(), tokens[800:800 + len(split.x_val.flatten())])
    assert torch.equal(split.y_train[:, :-1], split.x_train[:, 1:])
    assert len(split.x_train) == 799 // 16 and len(split.x_val) == 199 // 16


def test_default_corpus_split_shapes():
    split = load_text(L=64)
    assert split.x_train.shape[1] == split.x_val.shape[1] == 64
    assert len(split.x_train) > 8 * len(split.x_val)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a file"):
        load_text(tmp_path / "missing.txt")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00" * 100)
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text(binary)
    short = tmp_path / "s.txt"
    short.write_text("tiny")
    with pytest.raises(ValueError, match="too short"):
        load_text(short, L=8)
    with pytest.raises(ValueError, match="val_fraction"):
        load_text(short, val_fraction=1.0)
