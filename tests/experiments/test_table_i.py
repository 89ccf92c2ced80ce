import pytest
import torch

from neurotoken.data import load_digits
from neurotoken.experiments.config import with_overrides
from neurotoken.experiments.main_job import MainJob, run_main_job
from neurotoken.experiments.table_i import ConvImages, KeywordSpotting, Segmentation, placed_digits

from real_formats import WRITERS


@pytest.mark.parametrize("paradigm, metric, baseline", [("keyword-spotting", "accuracy", "logistic regression"),
                                                        ("image-conv", "accuracy", "logistic regression"),
                                                        ("segmentation", "mean IoU", "colour threshold")])
def test_quick_row_trains_the_twin_and_the_spiking_model_beside_a_baseline(paradigm, metric, baseline):
    result = run_main_job(MainJob.quick(paradigms=(paradigm,)))
    twin, snn = result.tables["rows"]
    assert (twin["neuromorphic"], snn["neuromorphic"]) == (False, True)
    assert twin["metric"] == snn["metric"] == metric and twin["higher_is_better"]
    assert all(0 <= r["value"] <= 1 and r["energy_j"] > 0 for r in (twin, snn))
    assert snn["spikes"] > 0 and twin["spikes"] == 0
    assert result.artifacts["rasters"][paradigm] is not None
    assert twin["baseline"] == snn["baseline"] == baseline  # scored once, on the same split and metric
    assert 0 <= twin["baseline_value"] == snn["baseline_value"] <= 1


def test_real_sets_replace_the_miniatures_through_the_data_fields(tmp_path):
    roots = {name: WRITERS[name](tmp_path / name) for name in ("speech_commands", "cifar10")}
    fields = MainJob.data_fields()
    config = with_overrides(MainJob.quick(paradigms=("keyword-spotting", "image-conv")),
                            [f'{fields[name]}="{root}"' for name, root in roots.items()])
    assert (config.kws.path, config.conv.path) == (str(roots["speech_commands"]), str(roots["cifar10"]))
    result = run_main_job(config)
    kws, kws_snn, conv, conv_snn = result.tables["rows"]
    assert [r["task"] for r in (kws, conv)] == ["Speech Commands (KWS)", "CIFAR-10 (conv)"]
    assert all(0 <= r["value"] <= 1 and r["energy_j"] > 0 for r in (kws, kws_snn, conv, conv_snn))
    assert not any("baseline" in r for r in result.tables["rows"])  # baselines judge the miniatures only


@pytest.mark.parametrize("cls, changes, message", [
    (KeywordSpotting, {"snr_db": (20.0, 0.0)}, "snr_db must be \\(low, high\\)"),
    (KeywordSpotting, {"spike": "morse"}, "spike"),
    (KeywordSpotting, {"hidden": (0,)}, "hidden\\[0\\]"),
    (KeywordSpotting, {"path": "/no/such/folder"}, "path"),
    (ConvImages, {"canvas": 7}, "canvas"),
    (ConvImages, {"block": "dense"}, "block"),
    (ConvImages, {"beta": 1.5}, "beta"),
    (Segmentation, {"size": 36}, "size must be a multiple of 2 \\*\\* \\(len\\(channels\\) - 1\\)"),
    (Segmentation, {"threshold": 0.0}, "threshold"),
])
def test_row_configs_refuse_bad_values_naming_the_key(cls, changes, message):
    with pytest.raises(ValueError, match=message):
        cls(**changes)


def test_row_configs_refuse_wrong_types_from_overrides_naming_the_key():
    with pytest.raises(TypeError, match="kws.hidden"):
        with_overrides(MainJob(), ['kws.hidden="wide"'])


def test_placed_digits_hold_each_digit_once_at_a_seeded_offset():
    x, y, x_test, y_test = placed_digits(11, seed=3)
    plain = load_digits(seed=3)
    assert x.shape == (len(plain.x_train), 11, 11, 1) and x_test.shape == (len(plain.x_test), 11, 11, 1)
    assert torch.equal(y, plain.y_train) and torch.equal(y_test, plain.y_test)
    torch.testing.assert_close(x.flatten(1).sum(1), plain.x_train.sum(1))
    assert len({tuple(torch.nonzero(img[..., 0]).min(0).values.tolist()) for img in x[:200]}) > 4  # offsets vary
    assert all(torch.equal(a, b) for a, b in zip(placed_digits(11, seed=3), (x, y, x_test, y_test)))
    assert torch.equal(placed_digits(8)[0].flatten(1), load_digits().x_train)  # canvas 8: the plain digits
