import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from neurotoken.learning.distill import Distillation, distill_loss

F64 = torch.float64


def test_distill_loss_equals_a_hand_computation():
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]], dtype=F64)
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    T = 2.0

    def softmax(row):
        e = [math.exp(v / T) for v in row]
        return [v / sum(e) for v in e]

    rows = [sum(pt * math.log(pt / ps) for pt, ps in zip(softmax(t), softmax(s)))
            for s, t in zip(student.tolist(), teacher.tolist())]
    assert distill_loss(student, teacher, T).item() == pytest.approx(T * T * sum(rows) / 2, rel=1e-12)
    mask = torch.tensor([False, True])
    assert distill_loss(student, teacher, T, mask=mask).item() == pytest.approx(T * T * rows[1], rel=1e-12)
    hs, ht = torch.tensor([[1.0, 2.0]], dtype=F64), torch.tensor([[0.0, 4.0]], dtype=F64)
    with_hidden = distill_loss(student, teacher, T, hs, ht, hidden_weight=0.5)
    assert with_hidden.item() == pytest.approx(T * T * sum(rows) / 2 + 0.5 * (1 + 4) / 2, rel=1e-12)


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 4), st.integers(2, 6), st.floats(0.5, 4.0), st.integers(0, 1000))
def test_distill_loss_is_nonnegative_and_zero_only_for_the_teacher_itself(rows, classes, T, seed):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(rows, classes, generator=g, dtype=F64)
    student = torch.randn(rows, classes, generator=g, dtype=F64)
    assert distill_loss(student, teacher, T) >= 0
    assert distill_loss(teacher + 3.0, teacher, T).abs() <= 1e-12  # a shift of the logits: the same softmax


def test_only_the_student_receives_gradients():
    student = torch.randn(3, 4, requires_grad=True)
    teacher = torch.randn(3, 4, requires_grad=True)
    distill_loss(student, teacher, 2.0).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("call, error, match", [
    (lambda: distill_loss(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "same shape"),
    (lambda: distill_loss(torch.zeros(2, 3), torch.zeros(2, 3), T=0), ValueError, "T must be"),
    (lambda: distill_loss(torch.zeros(2, 3), torch.zeros(2, 3), student_hidden=torch.zeros(2)), ValueError,
     "given together"),
    (lambda: distill_loss(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(2)), ValueError, "mask must be"),
    (lambda: distill_loss([[0.0]], torch.zeros(1, 1)), TypeError, "student_logits"),
    (lambda: Distillation("teacher"), TypeError, "teacher must be"),
    (lambda: Distillation(torch.nn.Linear(2, 2), alpha=1.5), ValueError, "alpha"),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_distillation_loss_fn_mixes_soft_and_hard_targets_and_leaves_the_teacher_as_it_was():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(5, 3), torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Dropout(0.5))
    x, y = torch.randn(4, 5), torch.tensor([0, 2, 1, -100])
    loss = Distillation(teacher, T=2.0, alpha=0.25)(student, x, y)
    assert teacher.training
    soft = distill_loss(student(x)[:3], teacher[0](x)[:3], 2.0)
    assert_close(loss, 0.25 * soft + 0.75 * F.cross_entropy(student(x), y))


def test_transfer_rows_learn_from_the_teacher_alone():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    x, y = torch.randn(4, 5), torch.tensor([0, 2, -100, -100])
    loss = Distillation(teacher, T=2.0, alpha=0.25, transfer=True)(student, x, y)
    soft = distill_loss(student(x), teacher(x), 2.0)  # every row, the unlabelled ones too
    assert_close(loss, 0.25 * soft + 0.75 * F.cross_entropy(student(x)[:2], y[:2]))
    only_transfer = Distillation(teacher, T=2.0, alpha=0.25, transfer=True)(student, x, torch.full((4,), -100))
    assert_close(only_transfer, 0.25 * soft)  # no labelled row: no cross-entropy term, not NaN
    with pytest.raises(TypeError, match="transfer"):
        Distillation(teacher, transfer="yes")
