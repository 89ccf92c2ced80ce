"""Analog models carry extra state (calibration flags, the noise seed): checkpoints store extra states
as tensors plus JSON, and hardware-aware training resumes to the uninterrupted result."""

import copy
import json

import pytest
import torch

from neurotoken.hardware import AnalogConfig, analog, calibrate, program
from neurotoken.learning.bptt import FitConfig, Trainer, cross_entropy
from neurotoken.learning.checkpoint import (join_state, list_checkpoints, load_checkpoint, save_checkpoint,
                                            split_state)
from neurotoken.models import SNNClassifier

CFG = FitConfig(epochs=2, batch_size=8, lr=1e-2, checkpoint_every=3, seed=5)  # 5 steps per epoch
HWA = AnalogConfig(tile_rows=4, prog_noise=0.05, read_noise=0.02, drift_nu_mean=0.05, drift_nu_std=0.02,
                   t_inference_s=3600.0, adc_bits=6, train_noise=True, train_quantisation=True)


def data(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] > x[:, 1]).long() + 2 * (x[:, 2] > 0.5).long()


def chip(seed=0):
    torch.manual_seed(seed)
    return analog(SNNClassifier(6, (12,), 4, T=3, encoding="bernoulli"), HWA).train()


def interrupting_loss(at):
    calls = []

    def loss(net, xb, yb):
        value = cross_entropy(net, xb, yb)  # the forward drew fresh device noise: the RNG has moved on
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return value
    return loss


def fit(run_dir, seed=0, resume=False, loss=cross_entropy):
    model = chip(seed)
    return Trainer(model, CFG, loss_fn=loss, run_dir=run_dir).fit(*data(), resume=resume), model


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return fit(tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize("at", [2, 5, 8])
def test_interrupted_hardware_aware_training_resumes_to_the_uninterrupted_result(tmp_path, reference, at):
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, loss=interrupting_loss(at))
    assert list_checkpoints(tmp_path / "checkpoints")
    losses, model = fit(tmp_path, seed=123, resume=True)  # another init: all of it comes from the folder
    ref_losses, ref_model = reference
    assert losses == ref_losses
    ref = ref_model.state_dict()
    for name, value in model.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, ref[name]), name
    x = data()[0][:8]
    torch.manual_seed(0)
    expected = program(copy.deepcopy(ref_model), 3).eval()(x)  # the fixture stays as trained
    torch.manual_seed(0)
    assert torch.equal(program(model, 3).eval()(x), expected)  # the same chip once programmed alike


def test_a_calibrated_programmed_chip_round_trips(tmp_path):
    model = program(chip(), 7).eval()
    calibrate(model, data()[0][:16])
    path = save_checkpoint(tmp_path, 1, model)
    extra = json.loads(path.read_text())["extra_state"]["body.0.linear._extra_state"]
    assert extra["inputs_calibrated"] and extra["outputs_calibrated"] and extra["seed"] == 7 * 1_000_003
    other = chip(seed=9).eval()
    load_checkpoint(path, other)
    layer, loaded = model.body[0].linear, other.body[0].linear
    assert loaded.inputs_calibrated and loaded.input_steps == layer.input_steps == 1 and loaded._seed == layer._seed
    x = data()[0][4:12]
    torch.manual_seed(1)
    expected = program(model, 7)(x)  # the same read noise on both; calibration flags decide the ranges
    torch.manual_seed(1)
    assert torch.equal(program(other, 7)(x), expected)


class Counter(torch.nn.Linear):
    """A layer whose extra state mixes a tensor and JSON values."""

    def get_extra_state(self):
        return {"calls": 3, "history": torch.arange(4.0), "name": "c"}

    def set_extra_state(self, state):
        self.loaded = state


def test_split_and_join_invert_each_other_and_keep_json_apart_from_tensors(tmp_path):
    state = torch.nn.Sequential(chip(), Counter(2, 2)).state_dict()
    tensors, extras = split_state(state)
    assert "1._extra_state.history" in tensors and extras["1._extra_state"] == {"calls": 3, "name": "c"}
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    json.dumps(extras)  # no tensor, nothing to pickle
    joined = join_state(tensors, extras)
    assert joined.keys() == state.keys()
    for key, value in state.items():
        if isinstance(value, dict):
            assert joined[key].keys() == value.keys()
            for field, v in value.items():
                assert torch.equal(joined[key][field], v) if isinstance(v, torch.Tensor) else joined[key][field] == v
        else:
            assert torch.equal(joined[key], value)
    path = save_checkpoint(tmp_path, 1, torch.nn.Sequential(Counter(2, 2)))
    other = torch.nn.Sequential(Counter(2, 2))
    load_checkpoint(path, other)
    assert other[0].loaded["calls"] == 3 and torch.equal(other[0].loaded["history"], torch.arange(4.0))


class Odd(torch.nn.Linear):
    def get_extra_state(self):
        return {"when": object()}

    def set_extra_state(self, state):
        pass


def test_extra_state_that_json_cannot_hold_is_refused_naming_it(tmp_path):
    with pytest.raises(TypeError, match=r"'0._extra_state.when' holds a object.*never pickles"):
        save_checkpoint(tmp_path, 1, torch.nn.Sequential(Odd(2, 2)))
    assert not list_checkpoints(tmp_path)


def test_checkpoints_without_extra_state_records_still_load(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path, 1, m)
    record = json.loads(path.read_text())
    del record["extra_state"]
    path.write_text(json.dumps(record))
    other = torch.nn.Linear(3, 2)
    load_checkpoint(path, other)
    assert torch.equal(other.weight, m.weight)
