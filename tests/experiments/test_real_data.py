import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import real_formats
from neurotoken.cli import app
from neurotoken.experiments import EXPERIMENTS, MainJob, REAL_DATA
from neurotoken.experiments import config as cfg
from neurotoken.experiments.real_data import Batch, Cifar10Recipe, NmnistRecipe, ShdRecipe
from neurotoken.experiments.runner import Runner
from neurotoken.learning.bptt import FitConfig


@pytest.mark.parametrize("name", list(REAL_DATA))
def test_each_real_data_recipe_trains_twin_and_spiking_model_on_tiny_files(name, tmp_path):
    config_class = REAL_DATA[name]
    root = real_formats.WRITERS[config_class.DATA](tmp_path / "data")
    epochs = []
    results = EXPERIMENTS.get(name).run(config_class.quick(path=str(root)), run_dir=tmp_path / "run",
                                        on_epoch=epochs.append)
    rows = results.tables["rows"]
    assert [r["neuromorphic"] for r in rows] == [False, True]
    for r in rows:
        assert r["dataset"] == config_class.DATA and 0.0 <= r["test_accuracy"] <= 1.0
        assert r["energy_j"] > 0 and r["samples_per_s"] > 0 and r["tokens_per_s"] == r["samples_per_s"]
        assert r["train_samples"] > 0 and r["test_samples"] > 0 and math.isfinite(r["final_loss"])
        assert (tmp_path / "run" / "models").is_dir() and r["model_file"].endswith(".safetensors")
    assert rows[1]["energy_vs_twin"] == rows[1]["energy_j"] / rows[0]["energy_j"]
    assert [(e["fit"], e["epoch"]) for e in epochs] == [("twin", 0), ("spiking", 0)]


DEFAULT_MODELS = {"cifar10": "SpikingCNN", "nmnist": "SpikingCNN", "dvs-gesture": "SpikingCNN",
                  "speech-commands": "KeywordSpotter", "shd": "KeywordSpotter", "ssc": "KeywordSpotter"}


@pytest.mark.parametrize("name", list(REAL_DATA))
def test_each_recipe_trains_through_the_cli_on_the_cpu_with_its_default_model_family(name, tmp_path):
    loader = REAL_DATA[name].DATA
    root = real_formats.WRITERS[loader](tmp_path / "data")
    result = CliRunner().invoke(app, ["train", name, "--quick", "--data", f"{loader}={root}", "--device", "cpu",
                                      "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    rows = json.loads((run / "results.json").read_text())["tables"]["rows"]
    family = DEFAULT_MODELS[name]
    assert REAL_DATA[name]().model == family
    assert [r["model"] for r in rows] == [f"{family} (twin)", f"{family} (spiking)"]


def test_event_frames_reach_the_cnn_time_first_as_binned():
    xs = [torch.randint(0, 3, (4, 6, 6, 2)).float() for _ in range(3)]
    frames, _ = Batch("images", events=True)([(x, 0) for x in xs])
    assert torch.equal(frames, torch.stack(xs, 1))  # [T, B, H, W, 2]: no re-encoding, no summing


def test_a_recipe_without_its_data_folder_says_how_to_give_it():
    with pytest.raises(ValueError, match="--data shd=PATH"):
        EXPERIMENTS.get("shd").run(ShdRecipe.quick())


def test_config_refuses_a_missing_folder_and_an_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="path must name an existing folder"):
        ShdRecipe(path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="model must be one of"):
        ShdRecipe(model="ResNet")
    with pytest.raises(ValueError, match="encoding must be 'direct' for these inputs"):
        NmnistRecipe(encoding="rate")
    with pytest.raises(ValueError, match="model must read token sequences here"):
        ShdRecipe(model="SpikingCNN")


def test_cifar10_pixels_stay_in_the_unit_range_for_a_spike_encoder(tmp_path):
    root = real_formats.cifar10(tmp_path / "c")
    rate, direct = (Cifar10Recipe.quick(path=str(root), encoding=e).dataset(False) for e in ("rate", "direct"))
    assert 0 <= rate[0][0].min() and rate[0][0].max() <= 1 and direct[0][0].min() < 0
    rows = EXPERIMENTS.get("cifar10").run(Cifar10Recipe.quick(path=str(root), encoding="rate")).tables["rows"]
    assert len(rows) == 2


@pytest.mark.parametrize("name, model", [("nmnist", "SpikingSSMClassifier"), ("nmnist", "SNNClassifier"),
                                         ("shd", "SpikingSSMClassifier"), ("speech-commands", "SpikingSSMClassifier"),
                                         ("cifar10", "SpikingCNN"), ("shd", "KeywordSpotter"),
                                         ("speech-commands", "KeywordSpotter"), ("cifar10", "KeywordSpotter")])
def test_the_model_is_one_config_field(name, model, tmp_path):
    config_class = REAL_DATA[name]
    root = real_formats.WRITERS[config_class.DATA](tmp_path / "d")
    rows = EXPERIMENTS.get(name).run(config_class.quick(path=str(root), model=model)).tables["rows"]
    assert [r["model"] for r in rows] == [f"{model} (twin)", f"{model} (spiking)"]
    assert all(r["energy_j"] > 0 and 0 <= r["test_accuracy"] <= 1 for r in rows)


def test_time_first_event_frames_are_counted_per_sample(tmp_path):
    root = real_formats.nmnist(tmp_path / "d")
    config = NmnistRecipe.quick(path=str(root), model="SpikingCNN", count_batch=2)
    one = NmnistRecipe.quick(path=str(root), model="SpikingCNN", count_batch=1)
    a, b = (EXPERIMENTS.get("nmnist").run(c).tables["rows"][0] for c in (config, one))
    assert a["macs"] == b["macs"] > 0  # the twin's MACs per inference do not depend on the batch


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.lists(st.integers(1, 3), min_size=1, max_size=3))
def test_batch_sums_event_bins_into_frames_and_flattens_tokens(batch, steps, cell):
    xs = [torch.randint(0, 3, (steps, *cell)).float() for _ in range(batch)]
    pairs = [(x, i) for i, x in enumerate(xs)]
    frames, y = Batch("frames", events=True)(pairs)
    torch.testing.assert_close(frames, torch.stack([x.sum(0).flatten() for x in xs]))
    assert y.tolist() == list(range(batch)) and y.dtype == torch.long
    tokens, _ = Batch("tokens", events=True)(pairs)
    torch.testing.assert_close(tokens, torch.stack([x.reshape(steps, -1) for x in xs]))
    pixels, _ = Batch("frames", events=False)(pairs)
    torch.testing.assert_close(pixels, torch.stack([x.flatten() for x in xs]))


def test_data_assignments_set_the_path_and_refuse_what_the_experiment_does_not_take(tmp_path):
    assert cfg.data_assignments(ShdRecipe, "shd", [f"shd={tmp_path}"]) == [f'path="{tmp_path}"']
    with pytest.raises(ValueError, match="experiment 'shd' accepts --data shd, got --data nmnist"):
        cfg.data_assignments(ShdRecipe, "shd", [f"nmnist={tmp_path}"])
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        cfg.data_assignments(ShdRecipe, "shd", [f"mnist={tmp_path}"])
    with pytest.raises(ValueError, match="'digits' accepts no --data"):
        cfg.data_assignments(EXPERIMENTS.get("digits").config, "digits", [f"shd={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="nope"):
        cfg.data_assignments(ShdRecipe, "shd", [f"shd={tmp_path / 'nope'}"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        cfg.data_assignments(ShdRecipe, "shd", ["shd"])


def test_fit_keys_find_every_nested_fit():
    assert cfg.fit_keys(ShdRecipe()) == ["fit"]
    keys = cfg.fit_keys(MainJob())  # the main job's rows, in order (it gains rows over time)
    assert keys[:4] == ["intra.fit", "ssm.fit", "attention.fit", "language.fit"]
    assert "bert.distill_fit" in keys  # a FitConfig under another name is found too
    assert len(set(keys)) == len(keys) and all(k.endswith("fit") and k.count(".") == 1 for k in keys)


def test_runner_reports_throughput_per_epoch_and_returns_a_tensor_fit_on_the_data_device():
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    seen = []
    trained = Runner(on_epoch=seen.append).train("mlp", lambda: torch.nn.Linear(5, 3),
                                                 FitConfig(epochs=3, batch_size=16, device="cpu"), x, y)
    assert [e["epoch"] for e in seen] == [0, 1, 2] and all(e["fit"] == "mlp" for e in seen)
    assert [e["loss"] for e in trained.epochs] == trained.losses
    assert trained.samples_per_s == sum(e["samples_per_s"] for e in seen) / 3 > 0
    assert next(trained.model.parameters()).device == x.device
