import math

import pytest

from neurotoken.experiments import EXPERIMENTS, LanguageModels, run_language
from neurotoken.learning.bptt import FitConfig


def test_language_experiment_trains_both_twins_and_reports_bits(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    config = LanguageModels(d_model=8, layers=1, L=8, path=str(path), fit=FitConfig(epochs=1, batch_size=32),
                            sample_bytes=5)
    rows = run_language(config).tables["rows"]
    assert [r["spiking"] for r in rows] == [True, False]
    for row in rows:
        assert 0 < row["val_bpb"] < 8 + 1 and math.isfinite(row["final_train_loss"])
        assert row["sample"].startswith(config.prompt)
    assert EXPERIMENTS.get("language").config is LanguageModels


@pytest.mark.slow
def test_default_recipe_meets_the_text_target():
    """Issue 4: the SpikeGPT-style LM within 10% of its RWKV twin, both below 2.6 bits/byte, both
    trained in under 15 min (on 2 idle cores; one loaded thread is up to ~2x slower), and generating."""
    spiking, twin = run_language(LanguageModels()).tables["rows"]
    assert spiking["val_bpb"] < 2.6 and twin["val_bpb"] < 2.6
    assert spiking["val_bpb"] <= 1.1 * twin["val_bpb"]
    assert 0 < spiking["spike_rate"] < 1 and twin["spike_rate"] == 0
    assert spiking["train_seconds"] + twin["train_seconds"] < 2 * 15 * 60
    assert all(len(row["sample"]) > len(LanguageModels().prompt) for row in (spiking, twin))
