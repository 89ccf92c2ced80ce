import inspect
import json
from pathlib import Path

import pytest
import torch

from neurotoken.experiments import EXPERIMENTS, DigitsSweep, Results, run_digits_sweep
from neurotoken.experiments import config as cfg
from neurotoken.experiments.runner import Runner, slug
from neurotoken.learning import bptt
from neurotoken.learning.bptt import FitConfig

TINY = DigitsSweep(Ts=(2, 3), encodings=("rate",), hidden=(8,), fit=FitConfig(epochs=2, lr=5e-3))  # 3 fits, 44 steps


@pytest.mark.parametrize("name", EXPERIMENTS.names())
def test_every_experiment_follows_the_contract(name):
    exp = EXPERIMENTS.get(name)
    params = inspect.signature(exp.run).parameters
    for keyword in ("on_result", "run_dir", "resume", "progress"):
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword
    quick = exp.config.quick()
    assert isinstance(quick, exp.config) and quick != exp.config()
    assert cfg.from_dict(exp.config, cfg.to_dict(quick)) == quick  # the quick config survives config.toml
    assert exp.description


def test_a_recipe_refuses_a_config_of_another_experiment():
    with pytest.raises(TypeError, match="config must be a DigitsSweep"):
        run_digits_sweep(EXPERIMENTS.get("language").config())


def test_fit_names_are_stable_folders_and_unique_per_run(tmp_path):
    runner = Runner(run_dir=tmp_path)
    assert runner.fit_dir("SNN rate T=2") == tmp_path / "fits" / "snn-rate-t-2"
    assert slug("snn rate t 2") == "snn-rate-t-2"
    with pytest.raises(ValueError, match="share the name"):
        runner.fit_dir("snn rate T=2")


def test_results_are_plain_json():
    results = Results({"rows": [{"a": 1.0}]}, {"weights": torch.eye(2), "file": Path("x/y")})
    data = json.loads(json.dumps(results.to_json()))
    assert data == {"tables": {"rows": [{"a": 1.0}]}, "artifacts": {"weights": [[1.0, 0.0], [0.0, 1.0]], "file": "x/y"}}
    assert Results.from_json(data).tables == results.tables


def comparable(results: Results) -> list[tuple]:
    return [(r["model"], r["T"], r["test_accuracy"], r["final_loss"]) for r in results.tables["rows"]]


@pytest.fixture(scope="module")
def uninterrupted():
    return run_digits_sweep(TINY)


@pytest.mark.parametrize("stop_at", [10, 60, 100])  # inside the first, the middle and the last fit
def test_an_interrupt_in_any_fit_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch, stop_at, uninterrupted):
    original, steps = bptt.Trainer._train_step, []

    def step(self, *args):
        steps.append(1)
        if len(steps) == stop_at:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(bptt.Trainer, "_train_step", step)
    with pytest.raises(KeyboardInterrupt):
        run_digits_sweep(TINY, run_dir=tmp_path)
    monkeypatch.setattr(bptt.Trainer, "_train_step", original)
    resumed = run_digits_sweep(TINY, run_dir=tmp_path, resume=True)
    assert comparable(resumed) == comparable(uninterrupted)
    assert sorted(p.name for p in (tmp_path / "fits").iterdir()) == ["snn-rate-t-2", "snn-rate-t-3", "twin"]


def test_resuming_a_finished_run_keeps_its_training_times(tmp_path):
    first = run_digits_sweep(TINY, run_dir=tmp_path)
    again = run_digits_sweep(TINY, run_dir=tmp_path, resume=True)
    assert comparable(again) == comparable(first)
    for a, b in zip(first.tables["rows"], again.tables["rows"]):
        assert b["train_seconds"] == pytest.approx(a["train_seconds"], abs=0.5)
