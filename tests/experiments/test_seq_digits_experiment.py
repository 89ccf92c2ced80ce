import pytest

from neurotoken.experiments.seq_digits import SeqDigits, run_seq_digits
from neurotoken.learning.bptt import FitConfig


def test_short_seq_digits_run_reports_both_models():
    config = SeqDigits(d_model=8, d_state=4, layers=1, fit=FitConfig(epochs=1, batch_size=256, lr=1e-2))
    seen = []
    rows = run_seq_digits(config, on_result=seen.append).tables["rows"]
    assert seen == rows and [r["model"] for r in rows] == ["P-SpikeSSM (LRU)", "LRU SSM (twin)"]
    assert 0 < rows[0]["spike_rate"] < 1 and rows[1]["spike_rate"] == 0
    assert all(0 <= r["test_accuracy"] <= 1 and r["train_seconds"] > 0 for r in rows)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="d_state"):
        SeqDigits(d_state=0)


@pytest.mark.slow
@pytest.mark.parametrize("permuted", [False])
def test_seq_digits_reaches_issue_targets(permuted):
    rows = run_seq_digits(SeqDigits(permuted=permuted)).tables["rows"]
    spiking, twin = (r["test_accuracy"] for r in rows)
    assert spiking >= 0.93 and twin >= 0.96
    assert sum(r["train_seconds"] for r in rows) < 600
