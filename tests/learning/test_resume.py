"""Interrupt a fit at many points; the resumed fit must equal the uninterrupted one bit for bit."""

import json
import os
import signal
import time

import pytest
import torch

from neurotoken.learning import bptt, checkpoint
from neurotoken.learning.bptt import FitConfig, Trainer, cross_entropy
from neurotoken.learning.checkpoint import list_checkpoints
from neurotoken.models import SNNClassifier

CFG = FitConfig(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=4, seed=5)  # 5 steps per epoch, 15 in all


def data(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] > x[:, 1]).long() + 2 * (x[:, 2] > 0.5).long()


def model(seed=0):
    torch.manual_seed(seed)
    return SNNClassifier(6, (12,), 4, T=3, encoding="bernoulli")  # draws from the global RNG every forward


class Hooks:
    """Loss and evaluation callbacks that raise a KeyboardInterrupt at a chosen point."""

    def __init__(self, where=None, at=0):
        self.where, self.at, self.calls = where, at, {"loss": 0, "evaluate": 0}

    def fire(self, where):
        if where == self.where and self.calls[where.split("-")[0]] == self.at:
            self.where = None
            raise KeyboardInterrupt

    def loss(self, net, xb, yb):
        self.calls["loss"] += 1
        self.fire("loss-before")
        value = cross_entropy(net, xb, yb)  # draws Bernoulli spikes: the RNG has moved on
        self.fire("loss-after-forward")
        return value

    def evaluate(self, m):
        self.calls["evaluate"] += 1
        self.fire("evaluate")  # inside the step, after the weights changed
        return {"mean_logit": m(data()[0]).mean().item()}


def run(run_dir, hooks=None, resume=False, seed=0):
    hooks = hooks or Hooks()
    m = model(seed)
    losses = Trainer(m, CFG, loss_fn=hooks.loss, evaluate=hooks.evaluate, run_dir=run_dir).fit(*data(), resume=resume)
    return losses, m


TIMING = ("samples_per_s", "tokens_per_s")  # wall-clock throughput differs between any two runs


def records(run_dir):
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


@pytest.fixture(autouse=True)
def default_sigint():
    """Ctrl-C deferral applies under Python's own SIGINT handler only: start each test with it (another
    test in the same process may have left its own handler) and put back what was there."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref")
    losses, m = run(run_dir)
    return losses, m.state_dict(), records(run_dir)


def assert_same_as_reference(run_dir, losses, m, reference):
    ref_losses, ref_state, ref_records = reference
    assert losses == ref_losses
    for name, value in m.state_dict().items():
        assert torch.equal(value, ref_state[name]), name
    assert records(run_dir) == ref_records


def resume_and_compare(run_dir, reference):
    losses, m = run(run_dir, resume=True, seed=123)  # another init: everything must come from the run folder
    assert_same_as_reference(run_dir, losses, m, reference)


@pytest.mark.parametrize("where, at", [
    ("loss-before", 1), ("loss-before", 7), ("loss-after-forward", 7), ("loss-after-forward", 13),
    ("evaluate", 2),  # while the weights of step 10 are being committed: resume from step 8
])
def test_keyboard_interrupt_anywhere_in_a_step_resumes_to_the_uninterrupted_result(tmp_path, reference, where, at):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks(where, at))
    resume_and_compare(tmp_path, reference)


def test_interrupt_while_updating_weights_saves_nothing_new(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("evaluate", 2))  # step 10's update is half-committed
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000004.json", "ckpt-00000008.json"]


def test_ctrl_c_takes_effect_at_the_end_of_the_step(tmp_path, reference):
    class CtrlC(Hooks):
        def loss(self, net, xb, yb):
            if self.calls["loss"] == 5:  # a real SIGINT in the middle of step 6
                os.kill(os.getpid(), signal.SIGINT)
            return super().loss(net, xb, yb)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, CtrlC())
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000006.json"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resume_and_compare(tmp_path, reference)


# a save renames 2 files (tensors, then the JSON record): saves at steps 4, 8, 12 and the final 15;
# {3, 5}: interrupted in the step-8 save, then again in the save the interrupt itself makes
def test_ctrl_c_during_the_final_save_finishes_it_then_stops(tmp_path, reference, monkeypatch):
    real, calls = os.replace, []

    def ctrl_c_on_final_record(src, dst):
        calls.append(dst)
        if len(calls) == 8:  # the JSON record of the final (step 15) checkpoint
            os.kill(os.getpid(), signal.SIGINT)
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", ctrl_c_on_final_record)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000015.json"
    resume_and_compare(tmp_path, reference)


@pytest.mark.parametrize("interrupted_calls", [{1}, {2}, {6}, {7}, {8}, {3, 5}])
def test_interrupt_inside_a_checkpoint_write_resumes(tmp_path, reference, monkeypatch, interrupted_calls):
    real, calls = os.replace, []

    def interrupted_replace(src, dst):
        calls.append(dst)
        if len(calls) in interrupted_calls:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.setattr(checkpoint.os, "replace", real)
    resume_and_compare(tmp_path, reference)


def test_leftovers_of_a_killed_save_are_ignored_and_removed(tmp_path, reference):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 11))
    ckpts = tmp_path / "checkpoints"
    (ckpts / ".ckpt-00000014.safetensors.abc123.tmp").write_bytes(b"\x00" * 100)  # a torn temp file
    (ckpts / "ckpt-00000014.safetensors").write_bytes(b"never committed")  # its JSON was never written
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "epoch": 2, "lo')  # a line torn by the kill
    resume_and_compare(tmp_path, reference)
    assert not list(ckpts.glob(".*.tmp")) and not (ckpts / "ckpt-00000014.safetensors").exists()


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, reference):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 10))
    newest = list_checkpoints(tmp_path / "checkpoints")[-1]
    assert newest.name == "ckpt-00000009.json"
    blob = newest.with_suffix(".safetensors")
    blob.write_bytes(blob.read_bytes()[:-7])
    with pytest.warns(RuntimeWarning, match="ckpt-00000009.*resuming from ckpt-00000008"):
        resume_and_compare(tmp_path, reference)


def test_cutting_metrics_back_is_atomic(tmp_path, reference, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 10))
    logged = (tmp_path / "metrics.jsonl").read_text()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "epoch": 1, "loss": 1.0, "lr": 0.01}\n')  # logged after the newest checkpoint

    before, real = (tmp_path / "metrics.jsonl").read_bytes(), os.replace

    def killed_on_metrics(src, dst):
        if os.path.basename(dst) == "metrics.jsonl":
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", killed_on_metrics)
    with pytest.raises(KeyboardInterrupt):  # dies while cutting metrics.jsonl back to step 9
        run(tmp_path, resume=True)
    monkeypatch.undo()
    assert (tmp_path / "metrics.jsonl").read_bytes() == before  # never truncated in place
    assert before.decode().startswith(logged)
    resume_and_compare(tmp_path, reference)


def test_resume_into_a_fresh_folder_starts_training(tmp_path):
    x, y = data()
    fresh = Trainer(model(), FitConfig(epochs=1, batch_size=8), run_dir=tmp_path / "plain").fit(x, y)
    trainer = Trainer(model(), FitConfig(epochs=1, batch_size=8), run_dir=tmp_path / "new")
    assert trainer.fit(x, y, resume=True) == fresh and trainer.start_step == 0
    assert [r["step"] for r in records(tmp_path / "new")] == [1, 2, 3, 4, 5]


def test_resuming_a_finished_fit_neither_trains_nor_rewrites(tmp_path, reference):
    run(tmp_path)
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    hooks = Hooks()
    m = model(123)
    trainer = Trainer(m, CFG, loss_fn=hooks.loss, evaluate=hooks.evaluate, run_dir=tmp_path)
    losses = trainer.fit(*data(), resume=True)
    assert hooks.calls == {"loss": 0, "evaluate": 0} and trainer.start_step == trainer.total_steps == 15
    assert_same_as_reference(tmp_path, losses, m, reference)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()} == files


def test_resume_with_another_config_or_data_is_refused_naming_what_differs(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 6))
    x, y = data()
    other = FitConfig(epochs=4, batch_size=8, lr=2e-2, checkpoint_every=2, seed=5)  # the file policy may change
    with pytest.raises(ValueError, match=r"epochs \(3 -> 4\), lr \(0.01 -> 0.02\); resume with the run's own"):
        Trainer(model(), other, run_dir=tmp_path).fit(x, y, resume=True)
    with pytest.raises(ValueError, match="x has 32 samples but the run being resumed .* was trained on 40"):
        Trainer(model(), CFG, run_dir=tmp_path).fit(x[:32], y[:32], resume=True)
    with pytest.raises(ValueError, match="the checkpoint holds another model"):
        Trainer(SNNClassifier(6, (7,), 4, T=3), CFG, run_dir=tmp_path).fit(x, y, resume=True)


def test_a_fresh_fit_refuses_a_folder_holding_another_fits_checkpoints(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 6))
    with pytest.raises(ValueError, match="run_dir .* already holds checkpoints .* resume=True"):
        run(tmp_path)


def test_checkpoints_written_before_configs_were_recorded_still_resume(tmp_path, reference):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Hooks("loss-before", 10))
    for path in list_checkpoints(tmp_path / "checkpoints"):  # as the previous release wrote them
        record = json.loads(path.read_text())
        del record["trainer"]["config"], record["trainer"]["samples"]
        path.write_text(json.dumps(record))
    resume_and_compare(tmp_path, reference)
    newest = json.loads(list_checkpoints(tmp_path / "checkpoints")[-1].read_text())
    assert newest["trainer"]["config"] == CFG.trajectory() and newest["trainer"]["samples"] == 40


def test_a_second_ctrl_c_interrupts_at_once_and_distributed_runs_never_defer():
    from neurotoken.learning.bptt import _deferred_interrupts

    with _deferred_interrupts() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupted()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the latest here
    with pytest.raises(KeyboardInterrupt):
        with _deferred_interrupts(enabled=False) as interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            assert not interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
