import json
import re
import time

import pytest
from typer.testing import CliRunner

from neurotoken.cli import app
from experiments.real_formats import WRITERS
from neurotoken.experiments import EXPERIMENTS, MainJob
from neurotoken.experiments.config import fit_keys
from neurotoken.learning import bptt
from neurotoken.zoo import load_model

runner = CliRunner()
TINY_DIGITS = ["--set", "Ts=[2]", "--set", "encodings=['rate']", "--set", "hidden=[8]", "--set", "fit.epochs=2"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def only_run_dir(out):
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.parametrize("command", ["run", "list", "train", "sweep", "report", "export", "bench"])
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_list_shows_every_experiment_with_its_description():
    result = invoke("list")
    assert result.exit_code == 0
    for name in EXPERIMENTS.names():
        assert name in result.output
    assert "(--data shd=PATH)" in result.output and "(--data text=PATH)" in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "nope"], "unknown experiment 'nope'"),
    (["train", "digits", "--set", "fit.epochs=x"], "fit.epochs: expected int"),
    (["train", "digits", "--set", "bogus=1"], "unknown key 'bogus'"),
    (["run", "--set", "profile=tpu"], "tpu"),
    (["run", "-p", "vision"], "vision"),
    (["sweep", "digits", "--param", "Ts"], "KEY=v1,v2"),
    (["train", "digits", "--data", "shd=."], "experiment 'digits' accepts no --data"),
    (["train", "shd", "--data", "nmnist=."], "experiment 'shd' accepts --data shd, got --data nmnist"),
    (["train", "shd", "--data", "mnist=."], "unknown dataset 'mnist'"),
    (["train", "shd", "--data", "shd=/no/such/folder"], "--data shd: '/no/such/folder' does not exist"),
    (["train", "shd", "--quick"], "--data shd=PATH"),
    (["sweep", "shd", "--param", "bins=2,3"], "--data shd=PATH"),
    (["train", "digits", "--device", "floppy"], "device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    (["run", "--device", "cuda:7"], "not available"),
    (["train", "stdp-digits", "--device", "cpu"], "--device does not apply"),
])
def test_errors_are_one_line_without_traceback(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_debug_shows_the_exception():
    result = invoke("--debug", "train", "nope")
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)


def test_dump_prints_toml_that_loads_back(tmp_path):
    result = invoke("train", "digits", "--set", "fit.epochs=3", "--dump")
    assert result.exit_code == 0
    path = tmp_path / "digits.toml"
    path.write_text(result.output)
    again = invoke("train", "digits", "--config", path, "--dump")
    assert again.output == result.output and "epochs = 3" in again.output


def test_quick_run_writes_results_report_plots_and_models(tmp_path):
    result = invoke("run", "--quick", "-p", "intra-token", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    for name in ("results.json", "report.html", "pareto.png", "layer_energy.png", "rasters.png", "config.toml"):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert [r["neuromorphic"] for r in results["tables"]["rows"]] == [False, True]
    html = (run_dir / "report.html").read_text()
    for png in ("pareto.png", "layer_energy.png", "rasters.png"):
        assert re.search(rf'<img alt="{png}" src="data:image/png;base64,[A-Za-z0-9+/=]{{100,}}"', html)
    assert "SNN (rate, T=2)" in result.output and "vs twin" in result.output
    for row in results["tables"]["rows"]:
        assert (run_dir / "models" / row["model_file"].split("/")[-1]).is_file()

    again = invoke("report", run_dir)
    assert again.exit_code == 0 and "SNN (rate, T=2)" in again.output

    import nir

    exported = invoke("export", run_dir / "models" / "intra-token-neuromorphic.safetensors", "--out", tmp_path / "m.nir")
    assert exported.exit_code == 0, exported.output
    graph = nir.read(tmp_path / "m.nir")
    assert any(type(node).__name__ == "LIF" for node in graph.nodes.values())
    refused = invoke("export", run_dir / "models" / "intra-token-conventional.safetensors")
    assert refused.exit_code == 1 and "spiking=False" in refused.output


def test_run_hardware_estimates_every_model_on_every_chip_in_results_table_plot_and_report(tmp_path):
    result = invoke("run", "--quick", "-p", "intra-token", "--hardware", "loihi, analog_pcm", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    rows = json.loads((run_dir / "results.json").read_text())["tables"]["hardware"]
    assert [(r["model"], r["chip"]) for r in rows] == [(m, c) for m in ("ReLU MLP", "SNN (rate, T=2)")
                                                       for c in ("loihi", "analog_pcm")]
    for r in rows:
        assert isinstance(r["fits"], bool) and r["cores"] >= 1 and r["energy_j"] >= 0 and r["per"] == "inference"
        assert r["latency_s"] > 0 and r["energy_breakdown_j"]
    assert "Models on chips" in result.output and "analog_pcm" in result.output
    assert (run_dir / "hardware.png").is_file()
    html = (run_dir / "report.html").read_text()
    assert '<section id="chips">' in html and '<figure id="hardware"><img alt="hardware.png"' in html
    assert "hardware = [" in (run_dir / "config.toml").read_text()


def test_run_hardware_refuses_an_unknown_chip_before_anything_trains(tmp_path):
    result = invoke("run", "--quick", "--hardware", "loihi,tpu9", "--out", tmp_path)
    assert result.exit_code == 1 and "hardware[1]" in result.output and "tpu9" in result.output, result.output
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 1 and "no results.json" in result.output


def rows_of(run_dir, table="rows"):
    return json.loads((run_dir / "results.json").read_text())["tables"][table]


def test_train_writes_config_and_results_and_resume_reuses_finished_fits(tmp_path):
    result = invoke("train", "digits", *TINY_DIGITS, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path)
    rows = rows_of(run_dir)
    assert [r["model"] for r in rows] == ["ReLU MLP (twin)", "SNN"]
    assert sorted(p.name for p in (run_dir / "fits").iterdir()) == ["snn-rate-t-2", "twin"]
    resumed = invoke("train", "digits", "--resume", run_dir)
    assert resumed.exit_code == 0, resumed.output
    again = rows_of(run_dir)
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]
    # a finished fit is reloaded, not retrained: its training time stays the one first measured
    assert [r["train_seconds"] for r in again] == pytest.approx([r["train_seconds"] for r in rows], abs=0.5)


THREE_FITS = ["--set", "Ts=[2, 3]", *TINY_DIGITS[2:]]  # twin, SNN T=2, SNN T=3: 44 steps each


@pytest.fixture(scope="module")
def three_fit_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    assert invoke("train", "digits", *THREE_FITS, "--out", out).exit_code == 0
    return rows_of(only_run_dir(out))


@pytest.mark.parametrize("where", ["first fit", "middle fit", "reporting"])
def test_ctrl_c_anywhere_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, where, three_fit_reference):
    from neurotoken import cli

    original_step, original_finish, steps = bptt.Trainer._train_step, cli._finish, []

    def step(self, *args):
        steps.append(1)
        if len(steps) == {"first fit": 10, "middle fit": 60}.get(where):
            raise KeyboardInterrupt
        return original_step(self, *args)

    def finish(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bptt.Trainer, "_train_step", step)
    if where == "reporting":
        monkeypatch.setattr(cli, "_finish", finish)
    result = invoke("train", "digits", *THREE_FITS, "--out", tmp_path)
    assert result.exit_code == 130, result.output
    run_dir = only_run_dir(tmp_path)
    assert f"resume with: neurotoken train digits --resume {run_dir}" in result.output.replace("\n", " ")
    monkeypatch.setattr(bptt.Trainer, "_train_step", original_step)
    monkeypatch.setattr(cli, "_finish", original_finish)
    resumed = invoke("train", "digits", "--resume", run_dir)
    assert resumed.exit_code == 0, resumed.output
    got = rows_of(run_dir)
    for key in ("model", "T", "test_accuracy", "final_loss"):
        assert [r[key] for r in got] == [r[key] for r in three_fit_reference], key


UNSAVED = {"listops", "stdp-digits", "three-factor-digits"}  # models outside the zoo (weights in results.json)


def test_every_experiment_runs_quick_through_the_cli(tmp_path):
    """Each quick run within 15 s of CPU time (its wall time on an idle machine; helpers share the cores);
    a real-data recipe on tiny files of its format, through --data."""
    seconds = {}
    for name in EXPERIMENTS.names():
        data, loader = [], getattr(EXPERIMENTS.get(name).config, "DATA", "")
        if loader:  # a real-data recipe: tiny files of its format (a folder per experiment)
            data = ["--data", f"{loader}={WRITERS[loader](tmp_path / 'data' / name)}"]
        start = time.process_time()
        result = invoke("train", name, "--quick", *data, "--out", tmp_path / name)
        seconds[name] = time.process_time() - start
        assert result.exit_code == 0, f"{name}: {result.output}"
        run_dir = only_run_dir(tmp_path / name)
        data = json.loads((run_dir / "results.json").read_text())
        assert data["tables"] and all(data["tables"].values()), name
        saved = sorted(run_dir.glob("models/*.safetensors"))
        assert bool(saved) == (name not in UNSAVED), name  # every trained zoo model is saved, and loads
        for path in saved:
            load_model(path)
    slow = {k: round(v, 1) for k, v in seconds.items() if v > 15}
    assert not slow, f"quick runs over 15 s: {slow}"


def test_resume_refuses_new_settings(tmp_path):
    result = invoke("train", "digits", "--resume", tmp_path, "--set", "fit.epochs=1")
    assert result.exit_code == 1 and "--resume takes the run's own config.toml" in result.output


def test_sweep_runs_each_value_and_tables_the_swept_key(tmp_path):
    result = invoke("sweep", "digits", "--param", "Ts=1,2", *TINY_DIGITS[2:], "--set", "fit.epochs=1",
                    "--out", tmp_path)
    assert result.exit_code == 0, result.output
    rows = rows_of(only_run_dir(tmp_path))
    assert [(r["Ts"], r["model"]) for r in rows] == [("[1]", "ReLU MLP (twin)"), ("[1]", "SNN"),
                                                      ("[2]", "ReLU MLP (twin)"), ("[2]", "SNN")]
    assert [r["T"] for r in rows if r["model"] == "SNN"] == [1, 2]


def test_debug_after_the_command_raises_and_switches_on_debug_mode(monkeypatch):
    import neurotoken

    switched = []
    monkeypatch.setattr(neurotoken, "debug", lambda on=True: switched.append(on))
    result = invoke("train", "nope", "--debug")
    assert isinstance(result.exception, ValueError) and switched == [True]


def test_version_and_short_help():
    import neurotoken

    assert invoke("--version").output.strip() == f"neurotoken {neurotoken.__version__}"
    short = invoke("train", "-h")
    assert short.exit_code == 0 and "Example" in short.output


def test_quick_is_kept_when_a_config_file_is_given(tmp_path):
    path = tmp_path / "main.toml"
    path.write_text("[intra]\nhidden = [8]\n")
    import tomllib

    dumped = tomllib.loads(invoke("run", "--quick", "--config", path, "--dump").output)
    assert dumped["count_batch"] == 8 and dumped["intra"]["Ts"] == [2]  # the quick config's
    assert dumped["intra"]["hidden"] == [8]  # the file's


def test_a_partial_fit_table_changes_only_the_keys_it_names(tmp_path):
    path = tmp_path / "digits.toml"
    path.write_text("[fit]\nepochs = 3\n")
    dumped = invoke("train", "digits", "--config", path, "--dump").output
    assert "epochs = 3" in dumped and "lr = 0.005" in dumped  # the digits recipe's lr, not the generic 0.003


def test_sweep_interrupt_says_how_to_finish_the_point(tmp_path, monkeypatch):
    def interrupted(self, *args):
        raise KeyboardInterrupt

    original = bptt.Trainer._train_step
    monkeypatch.setattr(bptt.Trainer, "_train_step", interrupted)
    result = invoke("sweep", "digits", "--param", "Ts=1,2", *TINY_DIGITS[2:], "--out", tmp_path)
    assert result.exit_code == 130
    point = only_run_dir(tmp_path) / "point-000"
    text = result.output.replace("\n", " ")
    assert f"finish this point with: neurotoken train digits --resume {point}" in text
    assert "neurotoken sweep" not in text
    monkeypatch.setattr(bptt.Trainer, "_train_step", original)
    finished = invoke("train", "digits", "--resume", point)
    assert finished.exit_code == 0, finished.output


def test_bench_writes_a_timestamped_folder_and_none_on_bad_input(tmp_path):
    bad = invoke("bench", "--quick", "--case", "nope", "--out", tmp_path)
    assert bad.exit_code == 1 and "nope" in bad.output and not list(tmp_path.iterdir())
    for _ in range(2):
        result = invoke("bench", "--quick", "--repeats", "1", "--no-peers", "--case", "reset", "--out", tmp_path)
        assert result.exit_code == 0, result.output
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 2 and all(re.fullmatch(r"\d{8}-\d{6}-bench(-\d+)?", p.name) for p in folders)
    assert all((p / "results.json").is_file() for p in folders)


@pytest.mark.parametrize("args, message", [
    (["train", "digits", "--set", "Ts=[]"], "Ts must hold at least 1 value"),
    (["train", "digits", "--set", "Ts=[2, 2]"], "Ts must not repeat"),  # failed after the first fit before
    (["run", "--quick", "--set", "attention.heads=3"], "attention.heads must divide d_model"),
    (["run", "--set", "ssm.spike=bogus", "--dump"], "ssm.spike must be one of"),
    (["sweep", "digits", "--param", "beta=0.5,1.5"], "beta must be <= 1"),
])
def test_an_invalid_config_is_refused_before_anything_runs_and_leaves_no_run_folder(tmp_path, args, message):
    result = invoke(*args, "--out", tmp_path) if "--dump" not in args else invoke(*args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, shown", [
    (["train", "[/]"], "unknown experiment '[/]'"),
    (["report", "old[v1]"], "'old[v1]' has no results.json"),
    (["train", "digits", "--set", "bogus[x]=1"], "unknown key 'bogus[x]'"),
])
def test_error_messages_are_printed_verbatim(args, shown):
    result = invoke(*args)
    assert result.exit_code == 1 and shown in result.output and "Traceback" not in result.output


def test_device_and_data_reach_the_config_and_throughput_is_logged_per_epoch(tmp_path):
    root = WRITERS["shd"](tmp_path / "shd")
    dumped = invoke("train", "shd", "--quick", "--data", f"shd={root}", "--device", "cpu", "--dump")
    assert dumped.exit_code == 0 and f'path = "{root}"' in dumped.output and 'device = "cpu"' in dumped.output
    main = invoke("run", "--quick", "--device", "cpu", "--dump")
    assert main.output.count('device = "cpu"') == len(fit_keys(MainJob.quick()))  # every paradigm's fit
    result = invoke("train", "shd", "--quick", "--data", f"shd={root}", "--device", "cpu", "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert re.search(r"twin epoch 0: loss [\d.]+, [\d.e+]+ samples/s, [\d.e+]+ tokens/s", result.output)
    rows = rows_of(only_run_dir(tmp_path / "runs"))
    assert all(r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 for r in rows)


def test_language_and_the_main_job_take_a_text_corpus_through_data(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(2):
        (corpus / f"{k}.txt").write_text(f"text {k}: the quick brown fox jumps over the lazy dog. " * 60)
    main = invoke("run", "--quick", "--data", f"text={corpus}", "--dump")
    assert main.exit_code == 0 and f'path = "{corpus}"' in main.output
    result = invoke("train", "language", "--quick", "--data", f"text={corpus}", "--set", "twins=[false]",
                    "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (row,) = rows_of(only_run_dir(tmp_path / "runs"))
    assert row["val_bpb"] > 0 and row["tokens_per_s"] == 32 * row["samples_per_s"]


def test_run_help_names_every_paradigm():
    from neurotoken.experiments.main_job import PARADIGMS

    shown = " ".join(invoke("run", "--help").output.split())
    assert all(name in shown for name in PARADIGMS), shown
