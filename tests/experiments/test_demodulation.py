import pytest

from neurotoken.experiments import EXPERIMENTS, DemodulationSweep, run_demodulation
from neurotoken.learning.bptt import FitConfig


def _ser(rows, model, T, snr):
    return next(r["ser"] for r in rows if r["model"] == model and r["T"] == T and r["snr_db"] == snr)


@pytest.mark.slow
def test_demodulation_reaches_targets():
    rows = run_demodulation(DemodulationSweep()).tables["rows"]
    ls, twin = _ser(rows, "LS detector", None, 10.0), _ser(rows, "softmax twin", None, 10.0)
    spiking = {T: _ser(rows, "spiking transformer", T, 10.0) for T in DemodulationSweep().Ts}
    assert twin <= 1.5 * ls
    assert spiking[8] <= 2 * twin
    assert spiking[16] <= spiking[4] <= spiking[2] <= spiking[1]  # error falls as T grows
    assert spiking[8] <= spiking[2]


def test_short_demodulation_run_learns():
    config = DemodulationSweep(snrs_db=(15.0,), train_snrs_db=(15.0,), Ts=(4,), d_model=16, n_train=6400,
                               n_test=1000, fit=FitConfig(epochs=3, batch_size=64, lr=5e-3))  # 300 steps
    rows = run_demodulation(config).tables["rows"]
    assert [r["model"] for r in rows] == ["LS detector", "ML, known channel", "softmax twin", "spiking transformer"]
    assert _ser(rows, "LS detector", None, 15.0) < 0.08
    for model, T in (("softmax twin", None), ("spiking transformer", 4)):
        assert _ser(rows, model, T, 15.0) < 0.3, model  # chance: 0.75


def test_demodulation_is_registered_and_validates_its_config():
    assert EXPERIMENTS.get("demodulation").config is DemodulationSweep
    with pytest.raises(ValueError, match="scheme must be one of"):
        DemodulationSweep(scheme="bpsk")
    with pytest.raises(ValueError, match="Ts\\[1\\] must be >= 1"):
        DemodulationSweep(Ts=(4, 0))
