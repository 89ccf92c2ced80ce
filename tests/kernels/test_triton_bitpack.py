"""The Triton bit-packed AND / XNOR scores equal the dense float reference exactly, with words packed on
the spikes' device (partial word and token tiles: n = 7 x 13 bits, L = 63, S = 33)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.mixers import attention

pytestmark = pytest.mark.usefixtures("triton_device")


def _scores(qs, ks):
    from neurotoken.kernels.triton.bitpack import packed_scores

    return {op: packed_scores(attention._bits(qs), attention._bits(ks), op) for op in ("and", "xnor")}


def test_pack_words_puts_element_32w_plus_b_in_bit_b_of_word_w(triton_device):
    from neurotoken.kernels.triton.bitpack import pack_words

    bits = torch.zeros(2, 3, 70, device=triton_device)
    bits[1, 2, [0, 31, 32, 65]] = 1
    words = pack_words(bits)
    assert words.shape == (2, 3, 3) and words.dtype == torch.int32 and words.device == bits.device
    assert words[1, 2].tolist() == [1 - 2 ** 31, 1, 2] and not words[0].any()


def test_triton_bitpacked_scores_equal_dense_reference_exactly(triton_device):
    g = torch.Generator().manual_seed(0)
    qs = (torch.rand(7, 2, 63, 13, generator=g) < 0.3).float().to(triton_device)
    ks = (torch.rand(7, 2, 33, 13, generator=g) < 0.3).float().to(triton_device)
    got = _scores(qs, ks)
    assert torch.equal(got["and"], attention.and_scores(qs, ks))
    assert torch.equal(got["xnor"], attention.xnor_scores(qs, ks))


@settings(max_examples=4, deadline=None)
@given(T=st.integers(1, 3), d=st.sampled_from([1, 16, 33]), L=st.sampled_from([1, 7]), S=st.sampled_from([1, 9]),
       rate=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 99))
def test_triton_bitpacked_scores_on_random_shapes(triton_device, T, d, L, S, rate, seed):
    g = torch.Generator().manual_seed(seed)
    qs = (torch.rand(T, L, d, generator=g) < rate).double().to(triton_device)
    ks = (torch.rand(T, S, d, generator=g) < rate).double().to(triton_device)
    got = _scores(qs, ks)
    assert got["and"].dtype == torch.float64
    assert torch.equal(got["and"], attention.and_scores(qs, ks))
    assert torch.equal(got["xnor"], attention.xnor_scores(qs, ks))


def test_bitpack_method_runs_the_triton_kernel_on_cuda(triton_device):
    if triton_device.type != "cuda":
        pytest.skip("the Triton scores are chosen on CUDA")
    qs = (torch.rand(3, 1, 9, 5, device=triton_device) < 0.5).float()
    assert torch.equal(attention.and_scores(qs, qs, method="bitpack"), attention.and_scores(qs, qs))
