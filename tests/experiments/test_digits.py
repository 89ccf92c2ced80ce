import pytest

from neurotoken.experiments import DigitsSweep, run_digits_sweep
from neurotoken.learning.bptt import FitConfig


@pytest.mark.slow
def test_digits_sweep_reaches_targets():
    rows = run_digits_sweep(DigitsSweep()).tables["rows"]
    acc = {(r["encoding"], r["T"]): r["test_accuracy"] for r in rows}
    assert acc[("-", None)] >= 0.975  # conventional twin
    assert acc[("direct", 8)] >= 0.975
    assert acc[("rate", 8)] >= 0.96 and acc[("bernoulli", 8)] >= 0.96
    for enc in ("direct", "rate", "bernoulli"):
        # accuracy does not fall as T grows (two test images of slack for seed noise)
        assert acc[(enc, 16)] >= acc[(enc, 1)] and acc[(enc, 8)] >= acc[(enc, 2)] - 2 / 450
        assert acc[(enc, 16)] >= acc[(enc, 4)] - 2 / 450
    # positional: digits hold 5 bits of grey level; longer codes only need to stay useful
    assert acc[("positional", 8)] >= 0.95


def test_short_digits_run_learns():
    config = DigitsSweep(Ts=(4,), encodings=("rate",), hidden=(64,),
                         fit=FitConfig(epochs=3, lr=5e-3))
    rows = run_digits_sweep(config).tables["rows"]
    assert [r["model"] for r in rows] == ["ReLU MLP (twin)", "SNN"]
    assert all(r["test_accuracy"] > 0.75 for r in rows)  # chance is 0.10; ~0.85 after 3 epochs
