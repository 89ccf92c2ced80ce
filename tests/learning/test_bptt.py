import json
import math

import pytest
import torch

from neurotoken.learning.bptt import FitConfig, Trainer, cross_entropy, learning_rate
from neurotoken.learning.checkpoint import list_checkpoints
from neurotoken.models import SNNClassifier


def data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] > x[:, 1]).long() + 2 * (x[:, 2] > 0.5).long()


def model(seed=0):
    torch.manual_seed(seed)
    return SNNClassifier(6, (12,), 4, T=3, encoding="bernoulli")  # uses the global RNG every forward


CFG = FitConfig(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=4, seed=5)


def test_learning_rate_schedule_by_hand():
    cfg = FitConfig(lr=1.0, warmup_steps=2)
    assert [learning_rate(cfg, s, 10) for s in (0, 1)] == [0.5, 1.0]
    assert learning_rate(cfg, 2, 10) == 1.0 and learning_rate(cfg, 6, 10) == pytest.approx(0.5)
    assert learning_rate(FitConfig(lr=0.3, schedule="constant"), 7, 10) == 0.3


def test_training_reduces_loss_and_logs_every_step(tmp_path):
    x, y = data()
    losses = Trainer(model(), FitConfig(epochs=8, batch_size=8, lr=2e-2), run_dir=tmp_path).fit(x, y)
    assert len(losses) == 8 and losses[-1] < 0.9 * losses[0]
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 41))


def test_interrupted_then_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path):
    x, y = data()
    ref_model = model()
    ref = Trainer(ref_model, CFG, run_dir=tmp_path / "ref").fit(x, y)

    calls = {"n": 0}

    def interrupting_loss(net, xb, yb):
        calls["n"] += 1
        if calls["n"] == 10:  # during step 10, after the step-8 checkpoint
            raise KeyboardInterrupt
        return cross_entropy(net, xb, yb)

    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), CFG, loss_fn=interrupting_loss, run_dir=tmp_path / "run").fit(x, y)
    assert list_checkpoints(tmp_path / "run/checkpoints")[-1].name == "ckpt-00000009.json"
    resumed_model = model(seed=123)  # a different init: everything must come from the checkpoint
    resumed = Trainer(resumed_model, CFG, run_dir=tmp_path / "run").fit(x, y, resume=True)
    assert resumed == ref
    for a, b in zip(ref_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    steps = [json.loads(s)["step"] for s in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 16))


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(tmp_path):
    x, y = data()
    calls = {"n": 0}

    def nan_at_step_7(net, xb, yb):
        calls["n"] += 1
        loss = cross_entropy(net, xb, yb)
        return loss * math.nan if calls["n"] == 7 else loss

    with pytest.raises(FloatingPointError, match=r"at step 6 .*last good checkpoint: .*ckpt-00000004"):
        Trainer(model(), CFG, loss_fn=nan_at_step_7, run_dir=tmp_path).fit(x, y)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000004.json"]


def test_keep_last_and_gradient_clipping(tmp_path):
    x, y = data()
    cfg = FitConfig(epochs=2, batch_size=8, checkpoint_every=2, keep_last=2, grad_clip=1e-3)
    m = model()
    before = [p.detach().clone() for p in m.parameters()]
    Trainer(m, cfg, run_dir=tmp_path).fit(x, y)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000008.json", "ckpt-00000010.json"]
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs"), (dict(lr=0.0), "lr"), (dict(schedule="step"), "schedule must be one of"),
    (dict(grad_clip=-1.0), "grad_clip"), (dict(keep_last=0), "keep_last"), (dict(seed=-1), "seed must be >= 0"),
    (dict(epochs=True), "epochs must be an int"), (dict(batch_size=2.0), "batch_size must be an int"),
])
def test_bad_config_is_rejected(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FitConfig(**kw)


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    import numpy as np

    cfg = FitConfig(epochs=np.int64(2), batch_size=np.int32(8), seed=np.uint8(3), lr=np.float32(0.5),
                    warmup_steps=np.int16(0))
    assert (cfg.epochs, cfg.batch_size, cfg.seed, cfg.lr, cfg.warmup_steps) == (2, 8, 3, 0.5, 0)
    assert {type(v) for v in (cfg.epochs, cfg.batch_size, cfg.seed, cfg.warmup_steps)} == {int}
    assert type(cfg.lr) is float
    assert json.loads(json.dumps(cfg.trajectory())) == cfg.trajectory()  # as recorded in checkpoints
    for bad in (np.bool_(True), np.float64(2.0)):
        with pytest.raises(TypeError, match="epochs must be an int"):
            FitConfig(epochs=bad)


def test_mismatched_data_is_rejected():
    with pytest.raises(ValueError, match="same length"):
        Trainer(model()).fit(torch.rand(4, 6), torch.zeros(3, dtype=torch.long))


def test_empty_data_is_refused_naming_x():
    with pytest.raises(ValueError, match=r"x must hold at least one sample, got shape \(0, 6\)"):
        Trainer(model()).fit(torch.rand(0, 6), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("args, kwargs, match", [
    (("model",), {}, "model must be a torch.nn.Module, got str"),
    ((None,), {"config": {"epochs": 1}}, "model must be a torch.nn.Module"),
    ((), {"config": {"epochs": 1}}, r"config must be a FitConfig, got dict; build one with FitConfig\(\*\*config\)"),
    ((), {"loss_fn": "cross_entropy"}, "loss_fn must be callable, got str"),
    ((), {"evaluate": 3}, "evaluate must be callable or None, got int"),
    ((), {"run_dir": 5}, "run_dir must be a path"),
])
def test_bad_trainer_arguments_are_type_errors_naming_the_argument(args, kwargs, match):
    with pytest.raises(TypeError, match=match):
        Trainer(*(args or (model(),)), **kwargs)


@pytest.mark.parametrize("bad, shown", [(4, "from 0 to 4"), (-1, "from -1 to 3")])
def test_out_of_range_labels_are_refused_before_training(bad, shown):
    x, y = data()
    y[7] = bad
    m = model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=rf"y must hold class labels in \[0, 3\] \(the model has 4 outputs\), "
                                         rf"got values {shown}"):
        Trainer(m, FitConfig(epochs=1, batch_size=8)).fit(x, y)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


def test_labels_of_the_wrong_shape_are_refused_naming_the_expected_shape():
    x, y = data()
    with pytest.raises(ValueError, match=r"y must have shape \(40,\) to label the model's outputs \(40, 4\)"):
        Trainer(model(), FitConfig(epochs=1, batch_size=8)).fit(x, y[:, None].expand(40, 3))


def test_float_targets_must_be_class_probabilities_of_the_logits_shape():
    x, y = data()
    with pytest.raises(ValueError, match=r"integer class labels of shape \(40,\) or class probabilities of the "
                                         r"logits' shape \(40, 4\), got float y of shape \(40,\)"):
        Trainer(model(), CFG).fit(x, y.float())
    with pytest.raises(TypeError, match="y must hold integer class labels .* got torch.bool"):
        Trainer(model(), CFG).fit(x, y > 1)
    soft = torch.nn.functional.one_hot(y, 4).float()
    hard_losses = Trainer(model(), FitConfig(epochs=1, batch_size=8)).fit(x, y)
    assert Trainer(model(), FitConfig(epochs=1, batch_size=8)).fit(x, soft) == pytest.approx(hard_losses, rel=1e-5)


def test_label_check_leaves_rng_and_mode_alone():
    from neurotoken.learning.bptt import check_labels

    x, y = data()
    m = model().train()
    torch.manual_seed(3)
    check_labels(m, x, y)
    after = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(4)) and m.training


def test_resume_needs_a_run_dir():
    with pytest.raises(ValueError, match="resume=True needs a run_dir"):
        Trainer(model()).fit(*data(), resume=True)


def test_fit_classifier_checkpoints_into_the_given_run_dir(tmp_path):
    from neurotoken.learning.bptt import fit_classifier

    x, y = data()
    losses = fit_classifier(model(), x, y, FitConfig(epochs=1, batch_size=8), run_dir=tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000005.json"]
    assert fit_classifier(model(), x, y, FitConfig(epochs=1, batch_size=8), run_dir=tmp_path, resume=True) == losses


def test_accuracy_moved_to_metrics_and_the_old_names_warn():
    from neurotoken import learning, metrics
    from neurotoken.learning import bptt

    for old_home in (bptt, learning):
        with pytest.warns(DeprecationWarning, match="accuracy moved to neurotoken.metrics"):
            assert old_home.accuracy is metrics.accuracy
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        learning.nope


def test_evaluation_hook_runs_each_epoch_in_eval_mode_and_is_logged(tmp_path):
    from neurotoken.metrics import accuracy

    x, y = data()
    modes = []

    def evaluate(m):
        modes.append(m.training)
        return {"accuracy": accuracy(m, x, y)}

    m = model()
    Trainer(m, FitConfig(epochs=2, batch_size=8), run_dir=tmp_path, evaluate=evaluate).fit(x, y)
    records = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "accuracy" in r]
    assert [r["step"] for r in evals] == [5, 10] and modes == [False, False] and m.training
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in evals)


def test_next_token_targets_pass_the_label_check_and_out_of_vocab_ones_do_not(tmp_path):
    from neurotoken.models import SpikingLM

    torch.manual_seed(0)
    lm = SpikingLM(vocab=16, d_model=8, layers=1)
    x = torch.randint(0, 16, (6, 7))
    y = torch.roll(x, -1, dims=1)
    cfg = FitConfig(epochs=1, batch_size=3)
    assert len(Trainer(lm, cfg, run_dir=tmp_path).fit(x, y)) == 1
    with pytest.raises(ValueError, match=r"labels in \[0, 15\] .* got values from 0 to 16"):
        Trainer(lm, cfg).fit(x, torch.where(y == y.max(), 16, y))


def test_a_trainer_without_run_dir_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(model(), FitConfig(epochs=1, batch_size=8, checkpoint_every=2)).fit(*data())
    assert list(tmp_path.iterdir()) == []
