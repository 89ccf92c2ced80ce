import math

from neurotoken.experiments import EXPERIMENTS, LanguageModels, run_language
from neurotoken.learning.bptt import FitConfig


def test_language_experiment_trains_both_twins_and_reports_bits(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    config = LanguageModels(d_model=8, layers=1, L=8, path=str(path), fit=FitConfig(epochs=1, batch_size=32),
                            sample_bytes=5)
    rows = run_language(config)
    assert [r["spiking"] for r in rows] == [True, False]
    for row in rows:
        assert 0 < row["val_bpb"] < 8 + 1 and math.isfinite(row["final_train_loss"])
        assert row["sample"].startswith(config.prompt)
    assert EXPERIMENTS.get("language").config is LanguageModels
