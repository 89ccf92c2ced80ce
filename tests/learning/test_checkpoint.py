import os
import subprocess
import sys
import textwrap

import pytest
import torch

from neurotoken.learning.checkpoint import (CheckpointError, latest_checkpoint, list_checkpoints,
                                            load_checkpoint, read_checkpoint, save_checkpoint)


def make():
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(m.parameters())
    m(torch.rand(4, 3)).sum().backward()
    opt.step()
    return m, opt


def test_round_trip_restores_model_optimizer_rng_and_state(tmp_path):
    m, opt = make()
    torch.manual_seed(7)
    path = save_checkpoint(tmp_path, 3, m, opt, {"step": 3, "note": "x"})
    expected_draw = torch.rand(3)
    m2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(m2.parameters())
    state = load_checkpoint(path, m2, opt2)
    assert state == {"step": 3, "note": "x"}
    assert torch.equal(m.weight, m2.weight)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(3), expected_draw)


def test_truncated_checkpoint_is_rejected_and_previous_one_used(tmp_path):
    m, opt = make()
    save_checkpoint(tmp_path, 1, m, opt)
    newest = save_checkpoint(tmp_path, 2, m, opt)
    blob = newest.with_suffix(".safetensors")
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(newest)
    path, problems = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000001.json" and "ckpt-00000002" in problems[0]


def test_no_valid_checkpoint_is_a_clear_error(tmp_path):
    m, opt = make()
    p = save_checkpoint(tmp_path, 1, m, opt)
    p.with_suffix(".safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        latest_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path / "empty") is None


def test_kill_between_write_and_rename_leaves_old_checkpoint_valid(tmp_path):
    # a real SIGKILL inside the second save, after its tensor file is written but before rename
    script = textwrap.dedent(f"""
        import os, signal, torch
        from neurotoken.learning import checkpoint as ck
        m = torch.nn.Linear(3, 2)
        ck.save_checkpoint({str(tmp_path)!r}, 1, m)
        real = os.replace
        def dying_replace(src, dst):
            if "00000002" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        ck.os.replace = dying_replace
        ck.save_checkpoint({str(tmp_path)!r}, 2, m)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000001.json"]
    path, problems = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000001.json" and problems == []
    read_checkpoint(path)
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))  # the torn write stayed a temp file


def test_checkpoint_of_another_model_is_refused_before_anything_changes(tmp_path):
    m, opt = make()
    path = save_checkpoint(tmp_path, 1, m, opt)
    other = torch.nn.Linear(3, 5)
    before = other.weight.clone()
    with pytest.raises(ValueError, match="another model .*: bias, weight"):
        load_checkpoint(path, other)
    assert torch.equal(other.weight, before)


def test_leftovers_of_interrupted_saves_are_discarded_and_committed_checkpoints_kept(tmp_path):
    from neurotoken.learning.checkpoint import discard_incomplete

    m, opt = make()
    save_checkpoint(tmp_path, 1, m, opt)
    (tmp_path / ".ckpt-00000002.safetensors.x1.tmp").write_bytes(b"torn")
    (tmp_path / "ckpt-00000002.safetensors").write_bytes(b"tensors whose record was never written")
    (tmp_path / "notes.txt").write_text("not ours")
    discard_incomplete(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000001.json", "ckpt-00000001.safetensors",
                                                          "notes.txt"]


def test_every_rng_in_use_is_recorded_and_a_bare_cpu_state_still_saves(tmp_path):
    from neurotoken.learning.checkpoint import rng_states

    m, opt = make()
    states = rng_states()
    assert "rng.torch" in states
    assert any(k.startswith("rng.cuda.") for k in states) == (torch.cuda.is_available() and torch.cuda.is_initialized())
    torch.manual_seed(11)
    cpu_only = torch.get_rng_state()
    expected = torch.rand(2)
    path = save_checkpoint(tmp_path, 1, m, opt, rng_state=cpu_only)  # the previous release's argument
    torch.manual_seed(12)
    load_checkpoint(path, m, opt)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rng_states_are_saved_and_restored(tmp_path):
    m, opt = make()
    torch.manual_seed(3)
    torch.rand(1, device="cuda")  # CUDA initialised and its generator moved on
    path = save_checkpoint(tmp_path, 1, m, opt)
    expected = torch.rand(4, device="cuda")
    torch.manual_seed(4)
    load_checkpoint(path, m, opt)
    assert torch.equal(torch.rand(4, device="cuda"), expected)
