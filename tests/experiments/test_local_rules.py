import pytest

from neurotoken.experiments.local_rules import (STDPDigits, ThreeFactorDigits, run_stdp_digits,
                                                run_three_factor_digits)


def test_short_stdp_run_specialises_neurons():
    r = run_stdp_digits(STDPDigits(neurons=40, epochs=1))
    assert r.tables["rows"][0]["label_assignment_accuracy"] > 0.4  # chance is 0.10
    assert len(set(r.artifacts["labels"].tolist())) >= 7  # neurons specialise on different digits


def test_short_three_factor_runs_learn():
    teacher = run_three_factor_digits(ThreeFactorDigits(mode="teacher", epochs=1)).tables["rows"][0]
    assert teacher["test_accuracy"] > 0.6
    bandit = run_three_factor_digits(ThreeFactorDigits(mode="bandit", epochs=3))
    curve = bandit.artifacts["reward_curve"]
    assert sum(curve[-50:]) / 50 > sum(curve[:50]) / 50 + 0.1  # reward rises without a teacher


def test_bad_mode_rejected():
    with pytest.raises(ValueError, match="mode must be one of"):
        ThreeFactorDigits(mode="supervised")


@pytest.mark.slow
def test_local_rules_reach_reported_figures():
    assert run_stdp_digits().tables["rows"][0]["label_assignment_accuracy"] >= 0.70
    assert run_three_factor_digits(ThreeFactorDigits(mode="teacher")).tables["rows"][0]["test_accuracy"] >= 0.85
    bandit = run_three_factor_digits(ThreeFactorDigits(mode="bandit", epochs=20))
    assert bandit.tables["rows"][0]["test_accuracy"] >= 0.65
