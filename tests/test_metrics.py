import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neurotoken import metrics
from neurotoken.models import SNNClassifier


class Lookup(nn.Module):
    """Logits one-hot at a fixed answer per input id (x holds ids as floats)."""

    def __init__(self, answers: torch.Tensor, classes: int):
        super().__init__()
        self.table = nn.functional.one_hot(answers, classes).float()

    def forward(self, x):
        return self.table[x.long()]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 37), classes=st.integers(2, 5), batch=st.integers(1, 40), seed=st.integers(0, 99))
def test_accuracy_is_the_fraction_of_correct_argmax_whatever_the_batch(n, classes, batch, seed):
    g = torch.Generator().manual_seed(seed)
    answers, y = torch.randint(classes, (n,), generator=g), torch.randint(classes, (n,), generator=g)
    model, x = Lookup(answers, classes), torch.arange(n).float()
    expected = (answers == y).double().mean().item()
    assert metrics.accuracy(model, x, y, batch_size=batch) == pytest.approx(expected, abs=1e-12)
    assert metrics.symbol_error_rate(metrics.predict(model, x, batch), y) == pytest.approx(1 - expected, abs=1e-12)
    assert torch.equal(metrics.predict(model, x, batch), answers)


@settings(max_examples=15, deadline=None)
@given(vocab=st.integers(2, 300), L=st.integers(1, 9), B=st.integers(1, 5))
def test_bits_per_byte_of_uniform_logits_is_log2_of_the_vocabulary(vocab, L, B):
    class Uniform(nn.Module):
        def forward(self, x):
            return x.new_zeros(*x.shape, vocab)

    x, y = torch.zeros(B, L), torch.randint(vocab, (B, L))
    assert metrics.bits_per_byte(Uniform(), x, y, batch_size=2) == pytest.approx(math.log2(vocab))


def test_spike_rate_is_a_fraction_for_an_snn_and_zero_for_its_twin():
    torch.manual_seed(0)
    x = torch.rand(5, 64)
    snn = SNNClassifier(64, [16], 10, T=3, encoding="rate")
    assert 0 < metrics.spike_rate(snn, x) < 1
    assert metrics.spike_rate(SNNClassifier(64, [16], 10, spiking=False), x) == 0


def test_metrics_refuse_unpaired_inputs_naming_them():
    model = Lookup(torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="x and y"):
        metrics.accuracy(model, torch.zeros(4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="predicted and labels"):
        metrics.symbol_error_rate(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        metrics.predict(model, [1, 2])
    with pytest.raises(ValueError, match="batch_size"):
        metrics.accuracy(model, torch.zeros(4), torch.zeros(4, dtype=torch.long), batch_size=0)
