import math

import pytest
import torch

import real_formats
from neurotoken import zoo
from neurotoken.data.pathfinder import Pathfinder
from neurotoken.experiments import lra
from neurotoken.experiments.lra import GreySequence, LraImage, PathfinderLRA, run_lra_image, run_pathfinder, ssm_kwargs
from neurotoken.learning.bptt import FitConfig


def test_pathfinder_quick_run_reports_chance_a_pixel_baseline_and_both_models(tmp_path):
    rows = run_pathfinder(PathfinderLRA.quick(), run_dir=tmp_path).tables["rows"]
    assert [r["model"] for r in rows] == ["majority class", "logistic regression", "dot distance tree",
                                          "SSM twin (lru)", "spiking SSM (lru)"]
    chance = rows[0]["test_accuracy"]
    assert chance == 0.5  # balanced labels
    for r in rows:
        assert 0 <= r["test_accuracy"] <= 1 and r["vs_chance"] == pytest.approx(r["test_accuracy"] - chance)
        assert (r["train_samples"], r["test_samples"]) == (64, 32)
    twin, spiking = rows[3:]
    assert [twin["neuromorphic"], spiking["neuromorphic"]] == [False, True]
    assert twin["energy_j"] > 0 and spiking["energy_j"] > 0 and math.isfinite(spiking["final_loss"])
    assert spiking["energy_vs_twin"] == spiking["energy_j"] / twin["energy_j"]
    assert twin["spike_rate"] == 0 and spiking["spike_rate"] >= 0
    model, spec = zoo.load_model(spiking["model_file"])
    assert spec["kwargs"]["in_features"] == 1 and spec["kwargs"]["classes"] == 2
    assert model(torch.zeros(1, 32 * 32, 1)).shape == (1, 2)  # 1024 one-pixel tokens


def test_the_dot_distance_tree_finds_a_distance_shortcut_when_the_data_has_one(tmp_path, monkeypatch):
    def shortcut(n, size, difficulty, seed):  # positives' dots 6 pixels apart, negatives' 12
        y, rows = torch.arange(n) % 2, torch.randint(1, size - 1, (n,), generator=torch.Generator().manual_seed(seed))
        images = torch.zeros(n, size, size)
        for i, (label, row) in enumerate(zip(y, rows)):
            for col in (2, 8 if label else 14):
                images[i, row - 1: row + 2, col - 1: col + 2] = 1
        return Pathfinder(images.reshape(n, -1, 1), y)

    monkeypatch.setattr(lra, "pathfinder", shortcut)
    rows = run_pathfinder(PathfinderLRA.quick(), run_dir=tmp_path).tables["rows"]
    assert rows[2]["model"] == "dot distance tree" and rows[2]["test_accuracy"] == 1.0


def test_pathfinder_trains_bidirectional_batch_norm_max_pool_models_and_lra_image_keeps_its_own():
    model = zoo.build("SpikingSSMClassifier", ssm_kwargs(PathfinderLRA(), 2, False))
    assert model.pool == "max" and type(model.norm).__name__ == "TimeBatchNorm"
    assert type(model.blocks[0].sublayers[0]).__name__ == "Bidirectional"
    kwargs = LraImage(fit=FitConfig(epochs=1)).model_kwargs(1, True)
    assert (kwargs["bidirectional"], kwargs["pool"], kwargs["norm"]) == (False, "mean", "layer")
    with pytest.raises(ValueError, match="norm must be one of"):
        PathfinderLRA(norm="group")


def test_the_selective_mixer_takes_the_configured_dt_range():
    kwargs = ssm_kwargs(PathfinderLRA(mixer="selective", dt_range=(0.01, 0.2)), 2, True)
    assert kwargs["dt_range"] == [0.01, 0.2] and kwargs["neuron"]["spike"]["name"] == "multilevel"
    assert "dt_range" not in ssm_kwargs(PathfinderLRA(), 2, True)
    model = zoo.build("SpikingSSMClassifier", kwargs)
    assert model(torch.zeros(2, 5, 1)).shape == (2, 2)


@pytest.mark.parametrize("change, message", [
    ({"difficulty": "extreme"}, "difficulty must be one of"), ({"size": 8}, "size must be"),
    ({"mixer": "s4"}, "mixer must be one of"), ({"dt_range": (0.5, 0.1)}, "dt_range must be \\(low, high\\)"),
    ({"n_train": 0}, "n_train must be"), ({"spike": "loud"}, "spike must be one of")])
def test_pathfinder_config_refuses_bad_fields_by_name(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PathfinderLRA(**change)


def test_grey_sequence_is_the_channel_mean_row_by_row(tmp_path):
    root = real_formats.cifar10(tmp_path / "c")
    grey = LraImage.quick(path=str(root)).dataset(False)
    assert isinstance(grey, GreySequence) and len(grey) == 6
    (image, label), (tokens, same) = grey.images[0], grey[0]
    assert image.shape == (32, 32, 3) and tokens.shape == (1024, 1) and same == label
    torch.testing.assert_close(tokens[:, 0], image.mean(-1).flatten())
    assert tokens[33, 0] == image[1, 1].mean()  # token 33 is row 1, column 1


def test_lra_image_runs_end_to_end_on_tiny_cifar_files(tmp_path):
    root = real_formats.cifar10(tmp_path / "c")
    rows = run_lra_image(LraImage.quick(path=str(root))).tables["rows"]
    assert [r["model"] for r in rows] == ["SpikingSSMClassifier (twin)", "SpikingSSMClassifier (spiking)"]
    for r in rows:
        assert r["dataset"] == "cifar10" and 0 <= r["test_accuracy"] <= 1 and r["energy_j"] > 0
        assert r["test_samples"] == 6 and r["tokens_per_s"] == r["samples_per_s"] > 0


def test_lra_image_without_data_says_it_needs_the_cifar10_folder():
    with pytest.raises(ValueError, match="--data cifar10=PATH"):
        run_lra_image(LraImage.quick())
    assert LraImage.data_fields() == {"cifar10": "path"}


def test_lra_image_reads_token_sequences_only():
    with pytest.raises(ValueError, match="model must be one of"):
        LraImage(model="SpikingCNN")
    with pytest.raises(ValueError, match="dt_range must be"):
        LraImage(dt_range=(0.2, 0.1))
    assert LraImage(fit=FitConfig(epochs=1)).model_kwargs(1, True)["in_features"] == 1
