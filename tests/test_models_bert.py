import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import neurotoken as nt
from neurotoken.data.docstrings import IGNORE, mask_bytes
from neurotoken.learning.distill import Distillation
from neurotoken.models import SpikingBERT, masked_lm_loss
from neurotoken.zoo import load_model, save_model

KWARGS = {"d_model": 16, "heads": 2, "layers": 1, "max_len": 24, "classes": 3, "T": 2}


def bert(spiking=True, seed=0, **kwargs):
    torch.manual_seed(seed)
    if not spiking:
        kwargs.pop("neuron", None)
    return SpikingBERT(**{**KWARGS, **kwargs}, spiking=spiking)


def tokens(B=3, L=20, seed=1):
    return torch.randint(1, 255, (B, L), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spiking", [True, False])
def test_heads_give_class_and_byte_logits_and_hidden_states(spiking):
    model, x = bert(spiking), tokens()
    logits, hidden = model(x, return_hidden=True)
    assert logits.shape == (3, 3) and hidden.shape == (3, 20, 16)
    assert model(x, task="mlm").shape == (3, 20, 256)
    real = x.clone()
    real[:, 10:] = 0  # PAD positions are left out of the mean
    h = model.encode(real)
    assert_close(model(real), model.classifier(h[:, :10].mean(1)))


@pytest.mark.parametrize("spiking", [True, False])
def test_the_encoder_is_bidirectional(spiking):
    """The first position's output depends on the last position's input (surrogate gradients)."""
    model, x = bert(spiking, neuron=nt.LIF(threshold=0.25)).double(), tokens()
    embedded = []
    model.embed.register_forward_hook(lambda m, i, out: embedded.append(out) or out.retain_grad())
    model(x, task="mlm")[:, 0].sum().backward()
    assert embedded[0].grad[:, -1].abs().sum() > 0
    if not spiking:
        later = x.clone()
        later[:, -1] = (later[:, -1] + 7) % 255 + 1
        assert not torch.allclose(model(x, task="mlm")[:, 0], model(later, task="mlm")[:, 0])


def test_spiking_encoder_runs_blocks_along_tau_with_accumulates_and_the_twin_multiplies():
    x = tokens()
    with nt.accounting.count(bert(True)) as s:
        bert(True)  # built inside: not counted
    spiking, twin = bert(True), bert(False)
    with nt.accounting.count(spiking) as s:
        spiking(x)
    with nt.accounting.count(twin) as t:
        twin(x)
    assert s.totals["acs"] > 0 and s.totals["spikes"] > 0
    assert t.totals["acs"] == 0 and t.totals["spikes"] == 0
    assert s.layers["blocks.0.sublayers.1.1.linear"]["macs"] == 0


def test_every_parameter_of_the_spiking_encoder_gets_a_gradient():
    model = bert(True, neuron=nt.LIF(threshold=0.25))  # at threshold 1 the attention's output is silent at init
    x = tokens()
    (model(x).sum() + model(x, task="mlm").logsumexp(-1).sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert name == "position" or p.grad.abs().sum() > 0, name


def test_masked_lm_loss_is_cross_entropy_at_the_masked_bytes():
    model, x = bert(False), tokens()
    masked, target = mask_bytes(x, p=0.3, seed=0)
    where = target != IGNORE
    expected = F.cross_entropy(model(masked, task="mlm")[where], x[where])
    assert_close(masked_lm_loss(model, masked, target), expected)


def test_zoo_round_trip_rebuilds_the_same_model(tmp_path):
    model = bert(True).eval()
    path = save_model(tmp_path / "bert.safetensors", "SpikingBERT", KWARGS, model)
    loaded, spec = load_model(path)
    assert spec["class"] == "SpikingBERT"
    x = tokens()
    assert torch.equal(loaded.eval()(x), model(x))


def test_a_tiny_distillation_run_from_the_twin_lowers_the_loss():
    teacher, student = bert(False), bert(True, seed=1)
    x = tokens(B=12, L=12, seed=3)
    y = (x[:, 0] % 3).long()  # the class is a function of the first byte
    teacher_opt = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    for _ in range(10):
        teacher_opt.zero_grad()
        F.cross_entropy(teacher(x), y).backward()
        teacher_opt.step()
    teacher_opt.zero_grad()
    loss_fn = Distillation(teacher, T=2.0, alpha=0.5, hidden_weight=0.1)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss = loss_fn(student, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is not trained by the student's loss


@pytest.mark.parametrize("spiking", [True, False])
def test_embedding_dropout_acts_only_in_training(spiking):
    plain, dropped, x = bert(spiking), bert(spiking, dropout=0.5), tokens()
    assert_close(dropped.eval()(x), plain.eval()(x))
    torch.manual_seed(2)
    zeroed = []
    dropped.drop.register_forward_hook(lambda m, i, o: zeroed.append(((o == 0) & (i[0] != 0)).float().mean().item()))
    dropped.train()(x)
    assert 0.4 < zeroed[0] < 0.6


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m(torch.zeros(2, 25, dtype=torch.long)), ValueError, "tokens must have at most max_len=24"),
    (lambda m: m(torch.zeros(2, 5)), TypeError, "tokens must be integer token ids"),
    (lambda m: m(torch.zeros(2, 5, dtype=torch.long), task="lm"), ValueError, "task must be one of"),
    (lambda m: SpikingBERT(spiking="yes"), TypeError, "spiking must be a bool"),
    (lambda m: SpikingBERT(max_len=0), ValueError, "max_len"),
    (lambda m: SpikingBERT(dropout=1.0), ValueError, "dropout must be"),
])
def test_bad_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call(bert(True))


@settings(max_examples=15, deadline=None)
@given(ngram=st.integers(1, 6), j=st.integers(0, 19))
def test_each_position_embeds_the_bytes_of_its_ngram_window_only(ngram, j):
    model = bert(False, ngram=ngram)
    embedded = []
    model.drop.register_forward_hook(lambda m, i, out: embedded.append(out))
    x = tokens()
    changed = x.clone()
    changed[:, j] = changed[:, j] % 254 + 1
    model(x), model(changed)
    moved = (embedded[0] - embedded[1]).abs().sum((0, 2)) > 0
    left = (ngram - 1) // 2
    window = torch.zeros(20, dtype=torch.bool)
    window[max(0, j - (ngram - 1 - left)):j + left + 1] = True  # the positions whose window holds j
    assert torch.equal(moved, window)
    if ngram == 1:
        assert_close(embedded[0], model.embed(x) + model.position[:20])


@settings(max_examples=6, deadline=None)
@given(layers=st.integers(1, 2), ngram=st.integers(1, 4))
def test_load_twin_copies_every_weight_so_the_spiking_model_embeds_and_reads_out_as_the_twin(layers, ngram):
    twin, student = bert(False, layers=layers, ngram=ngram), bert(True, seed=1, layers=layers, ngram=ngram)
    assert student.load_twin(twin) is student
    for p, q in zip(student.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()  # copied, not shared
    embedded = []
    for model in (twin, student):
        model.drop.register_forward_hook(lambda m, i, out: embedded.append(out))
    x = tokens()
    twin(x), student(x)
    assert torch.equal(embedded[0], embedded[1])
    h = twin.encode(x)
    assert torch.equal(student.classifier(h), twin.classifier(h))


@pytest.mark.parametrize("twin, error, match", [
    (lambda: bert(False, d_model=8), ValueError, "twin must have this model's parameter shapes"),
    (lambda: bert(False, ngram=3), ValueError, "twin must have this model's parameter shapes"),
    (lambda: torch.nn.Linear(2, 2), TypeError, "twin must be a SpikingBERT"),
])
def test_load_twin_refuses_a_model_of_another_shape(twin, error, match):
    with pytest.raises(error, match=match):
        bert(True).load_twin(twin())
