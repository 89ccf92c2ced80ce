import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.kernels import bitpack
from neurotoken.mixers import attention

needs_numba = pytest.mark.skipif(not bitpack.available(), reason="numba is not installed")


def test_pack_bits_puts_element_64w_plus_b_in_bit_b_of_word_w():
    bits = torch.zeros(2, 3, 130)
    bits[1, 2, [0, 63, 64, 129]] = 1
    words = bitpack.pack_bits(bits)
    assert words.shape == (2, 3, 3) and words.dtype == np.uint64
    assert words[1, 2].tolist() == [1 | 1 << 63, 1, 2] and not words[0].any()


@needs_numba
@settings(max_examples=12, deadline=None)
@given(T=st.integers(1, 5), d=st.sampled_from([1, 13, 16, 64, 65]), L=st.sampled_from([1, 7, 63]),
       S=st.sampled_from([1, 9]), rate=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 99))
def test_bitpacked_scores_equal_dense_reference_exactly(T, d, L, S, rate, seed):
    g = torch.Generator().manual_seed(seed)
    qs = (torch.rand(T, 2, L, d, generator=g) < rate).float()
    ks = (torch.rand(T, 2, S, d, generator=g) < rate).float()
    for fn in (attention.and_scores, attention.xnor_scores):
        packed = fn(qs, ks, method="bitpack")
        assert packed.dtype == torch.float32 and torch.equal(packed, fn(qs, ks, method="dense"))


def test_bitpack_refuses_gradients_and_falls_back_with_a_warning_without_numba(monkeypatch):
    qs = (torch.rand(2, 1, 5, 3) < 0.5).float()
    with pytest.raises(ValueError, match="bitpack' has no gradient"):
        attention.and_scores(qs.requires_grad_(), qs, method="bitpack")
    monkeypatch.setattr(bitpack, "available", lambda: False)
    with pytest.warns(RuntimeWarning, match="numba is not installed"), torch.no_grad():
        assert torch.equal(attention.xnor_scores(qs, qs, method="bitpack"), attention.xnor_scores(qs, qs))


def test_importing_the_attention_mixers_does_not_import_numba():
    code = "import sys, neurotoken.mixers.attention; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unsupported_says_why_the_kernel_steps_aside(monkeypatch):
    cpu = torch.zeros(2, 3, 4)
    assert bitpack.unsupported(cpu) is (None if bitpack.available() else "numba is not installed")
    monkeypatch.setattr(bitpack, "available", lambda: True)
    assert bitpack.unsupported(cpu.to("meta")) == "the spikes are on meta; the popcount kernel runs on the cpu"
    monkeypatch.setattr(bitpack, "available", lambda: False)
    assert bitpack.unsupported(cpu) == "numba is not installed"
