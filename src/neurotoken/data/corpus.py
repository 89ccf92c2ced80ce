"""A text corpus of any size (one file, or every file under a folder in sorted order, hidden ones
skipped) as fixed-length windows for next-token prediction: ``x = tokens[s : s + L]``,
``y = tokens[s + 1 : s + L + 1]`` for window starts ``s = 0, stride, 2 stride, ...``.

``tokenizer="bytes"``: the raw bytes (vocabulary 256), memory-mapped, nothing copied or capped.
``tokenizer="bpe"``: a byte-level BPE of ``vocab_size`` tokens trained on the corpus with the
``tokenizers`` library (``pip install 'neurotoken[text]'``), saved as ``save_dir/tokenizer.json``
(reused when present) with the corpus encoded once, in chunks, to a memory-mapped token file beside it.
"""

from __future__ import annotations

import codecs
import itertools
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import _checks
from .._io import atomic_write
from . import cache as _cache
from ._optional import require

TOKENIZERS = ("bytes", "bpe")
CHUNK_BYTES = 1 << 16   # tokenizers buffers hundreds of training chunks: small ones keep its memory low
ENCODE_BATCH = 16


class TokenStream:
    """Memory-mapped token arrays read as one concatenated sequence."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.starts = np.cumsum([0] + [len(a) for a in arrays])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, window: slice) -> np.ndarray:
        lo, hi = window.start, window.stop
        k = int(np.searchsorted(self.starts, lo, side="right")) - 1
        pieces = []
        while lo < hi:
            a, base = self.arrays[k], int(self.starts[k])
            take = a[lo - base: min(hi - base, len(a))]
            pieces.append(take)
            lo += len(take)
            k += 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


class TextCorpus(Dataset):
    """Windows ``(x [L], y [L])`` of int64 token ids; ``__getitems__`` gathers a batch at once."""

    def __init__(self, stream: TokenStream, seq_len: int, stride: int, vocab_size: int, tokenizer=None):
        if len(stream) <= seq_len:
            raise ValueError(f"the corpus has {len(stream)} tokens: too few for one window of seq_len={seq_len} "
                             "plus its next token")
        self.stream, self.seq_len, self.stride = stream, seq_len, stride
        self.vocab_size, self.tokenizer = vocab_size, tokenizer

    def __len__(self) -> int:
        return (len(self.stream) - self.seq_len - 1) // self.stride + 1

    def __getitems__(self, indices) -> list[tuple[torch.Tensor, torch.Tensor]]:
        rows = [self.stream[i * self.stride: i * self.stride + self.seq_len + 1] for i in indices]
        batch = torch.from_numpy(np.stack(rows).astype(np.int64))
        return list(zip(batch[:, :-1].unbind(0), batch[:, 1:].unbind(0)))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return self.__getitems__([i])[0]

    def decode(self, ids) -> str:
        """Text of token ids (invalid UTF-8 shown as U+FFFD)."""
        ids = [int(i) for i in ids]
        if self.tokenizer is None:
            return bytes(ids).decode("utf-8", errors="replace")
        return self.tokenizer.decode(ids)


def corpus_files(path: Path, skip: Path | None = None) -> list[Path]:
    """The non-empty files of the corpus: ``path`` itself, or every file under it (sorted, hidden skipped)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not any(
            part.startswith(".") for part in f.relative_to(path).parts) and (skip is None or skip not in f.resolve().parents))
    else:
        raise FileNotFoundError(f"path {str(path)!r} does not exist (expected a text file or a folder of them)")
    files = [f for f in files if f.stat().st_size > 0]
    if not files:
        raise ValueError(f"path {str(path)!r} holds no non-empty file")
    return files


def _text_chunks(path: Path):
    """The file's text in chunks of about CHUNK_BYTES ending at a line break, else at a space (a word is
    split only when longer than a chunk)."""
    decoder, rest = codecs.getincrementaldecoder("utf-8")(), ""
    with path.open("rb") as f:
        while True:
            raw = f.read(CHUNK_BYTES)
            try:
                text = rest + decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}: not UTF-8 text ({err.reason} near byte {f.tell() - len(raw) + err.start});"
                                 " use tokenizer='bytes' for binary data") from None
            if not raw:
                if text:
                    yield text
                return
            cut = text.rfind("\n") + 1 or text.rfind(" ") + 1 or (len(text) if len(text) >= CHUNK_BYTES else 0)
            if cut:
                yield text[:cut]
            rest = text[cut:]


def _bpe(files: list[Path], vocab_size: int | None, save_dir: Path):
    tk = require("tokenizers", "text", "text_corpus(tokenizer='bpe')")
    saved = save_dir / "tokenizer.json"
    if saved.is_file():
        tok = tk.Tokenizer.from_file(str(saved))
        if vocab_size is not None and tok.get_vocab_size() != vocab_size:
            raise ValueError(f"{saved} has {tok.get_vocab_size()} tokens, not vocab_size={vocab_size}; "
                             "remove it or pass a fresh save_dir to train a new one")
        return tok, saved
    if vocab_size is None:
        raise ValueError("tokenizer='bpe' needs vocab_size (the number of tokens to learn), e.g. 4096")
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
                                     show_progress=False)
    tok.train_from_iterator((chunk for f in files for chunk in _text_chunks(f)), trainer)
    save_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(saved, tok.to_str().encode())
    return tok, saved


def _encoded(files: list[Path], root: Path, tok, saved: Path) -> np.ndarray:
    """The corpus's token ids, encoded once into ``tokens-<key>.bin`` beside the tokenizer, memory-mapped."""
    dtype = np.uint16 if tok.get_vocab_size() <= 1 << 16 else np.uint32
    name = _cache.key(files=_cache.source_stamp(files, root), tokenizer=saved.read_text(), dtype=dtype.__name__)
    out = saved.parent / f"tokens-{name}.bin"
    if not out.is_file():
        chunks = (chunk for path in files for chunk in _text_chunks(path))
        with _cache.atomic_file(out) as f:
            while batch := list(itertools.islice(chunks, ENCODE_BATCH)):
                for enc in tok.encode_batch_fast(batch):
                    f.write(np.asarray(enc.ids, dtype=dtype).tobytes())
    if out.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(out, dtype=dtype, mode="r")


def text_corpus(path, tokenizer: str = "bytes", vocab_size: int | None = None, *, seq_len: int = 256,
                stride: int | None = None, save_dir=None) -> TextCorpus:
    """Windows of ``seq_len`` tokens (every ``stride``, default ``seq_len``) over the corpus at ``path``.
    ``tokenizer="bpe"`` needs ``save_dir`` (the run folder: the tokenizer and token file go there)."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    _checks.choice("tokenizer", tokenizer, TOKENIZERS)
    seq_len = _checks.positive_int("seq_len", seq_len)
    stride = seq_len if stride is None else _checks.positive_int("stride", stride)
    if vocab_size is not None:
        vocab_size = _checks.positive_int("vocab_size", vocab_size, low=257 if tokenizer == "bpe" else 256)
    path = Path(path).expanduser()
    if tokenizer == "bytes":
        if vocab_size not in (None, 256):
            raise ValueError(f"vocab_size must be 256 (or None) with tokenizer='bytes', got {vocab_size}")
        files = corpus_files(path)
        return TextCorpus(TokenStream([np.memmap(f, dtype=np.uint8, mode="r") for f in files]), seq_len, stride, 256)
    if save_dir is None:
        raise ValueError("tokenizer='bpe' needs save_dir (the run folder where tokenizer.json is saved)")
    if not isinstance(save_dir, (str, Path)):
        raise TypeError(f"save_dir must be a str or Path, got {type(save_dir).__name__}")
    save_dir = Path(save_dir).expanduser()
    files = corpus_files(path, skip=save_dir.resolve() if path.is_dir() else None)
    tok, saved = _bpe(files, vocab_size, save_dir)
    root = path if path.is_dir() else path.parent
    ids = _encoded(files, root, tok, saved)
    return TextCorpus(TokenStream([ids]), seq_len, stride, tok.get_vocab_size(), tok)
