import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from neurotoken.data import corpus, text_corpus


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4), st.integers(1, 9), st.integers(1, 7),
       st.data())
def test_bytes_windows_are_the_concatenated_files(tmp_path_factory, parts, seq_len, stride, data):
    folder = tmp_path_factory.mktemp("corpus")
    for k, part in enumerate(parts):
        (folder / f"{k:02d}.txt").write_bytes(part)
    whole = b"".join(parts)
    if len(whole) <= seq_len:
        with pytest.raises(ValueError, match="too few"):
            text_corpus(folder, seq_len=seq_len)
        return
    ds = text_corpus(folder, seq_len=seq_len, stride=stride)
    assert len(ds) == (len(whole) - seq_len - 1) // stride + 1
    i = data.draw(st.integers(0, len(ds) - 1))
    x, y = ds[i]
    s = i * stride
    assert x.dtype == torch.int64 and x.tolist() == list(whole[s: s + seq_len]) and y.tolist() == list(whole[s + 1: s + seq_len + 1])


def test_folder_order_hidden_files_and_loader_batches(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_bytes(b"world!")
    (tmp_path / "a.txt").write_bytes(b"hello ")
    (tmp_path / ".hidden").write_bytes(b"XXXX")
    (tmp_path / "empty.txt").write_bytes(b"")
    ds = text_corpus(tmp_path, seq_len=3)
    assert ds.vocab_size == 256 and ds.decode(ds[1][0]) == "lo " and ds.decode(ds[2][1]) == "orl"
    x, y = next(iter(DataLoader(ds, batch_size=2)))
    assert x.shape == (2, 3) and x[1].tolist() == list(b"lo ") and y[1].tolist() == list(b"o w")


def test_bpe_trains_saves_reuses_and_round_trips(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    text = "the quick brown fox jumps over the lazy dog\n" * 200 + "ünïcödé text\n" * 50
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    run = tmp_path / "run"
    ds = text_corpus(tmp_path / "c.txt", "bpe", 300, seq_len=16, save_dir=run)
    assert (run / "tokenizer.json").is_file() and ds.vocab_size == 300
    ids = np.concatenate([ds.stream.arrays[0]])
    assert ds.decode(ids) == text and ids.max() < 300
    assert len(ids) < len(text.encode()) / 2   # merges learnt
    x, y = ds[3]
    assert x.shape == (16,) and torch.equal(x[1:], y[:-1])
    again = text_corpus(tmp_path / "c.txt", "bpe", seq_len=16, save_dir=run)
    np.testing.assert_array_equal(again.stream.arrays[0], ids)
    assert isinstance(again.tokenizer, tokenizers.Tokenizer)
    with pytest.raises(ValueError, match="tokenizer.json has 300 tokens, not vocab_size=500"):
        text_corpus(tmp_path / "c.txt", "bpe", 500, save_dir=run)


def test_text_chunks_end_at_line_breaks_else_spaces(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 7)
    (tmp_path / "c.txt").write_text("ab cd\nefgh ij\nk", encoding="utf-8")
    assert list(corpus._text_chunks(tmp_path / "c.txt")) == ["ab cd\n", "efgh ij\n", "k"]
    (tmp_path / "c.txt").write_text("ab cdefghijklmn opq", encoding="utf-8")
    assert list(corpus._text_chunks(tmp_path / "c.txt")) == ["ab ", "cdefghijklm", "n ", "opq"]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        text_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no non-empty file"):
        text_corpus(tmp_path)
    (tmp_path / "c.txt").write_bytes(b"abc \xff\xfe def\n" * 10)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        text_corpus(tmp_path, "words")
    with pytest.raises(ValueError, match="needs save_dir"):
        text_corpus(tmp_path, "bpe", 300)
    with pytest.raises(ValueError, match="vocab_size must be 256"):
        text_corpus(tmp_path, vocab_size=300)
    pytest.importorskip("tokenizers")
    with pytest.raises(ValueError, match="c.txt: not UTF-8"):
        text_corpus(tmp_path / "c.txt", "bpe", 300, save_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="needs vocab_size"):
        text_corpus(tmp_path / "c.txt", "bpe", save_dir=tmp_path / "run")


def test_missing_tokenizers_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    import sys

    (tmp_path / "c.txt").write_text("some text\n")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match=r"needs tokenizers: pip install 'neurotoken\[text\]'"):
        text_corpus(tmp_path / "c.txt", "bpe", 300, save_dir=tmp_path / "run")
