import pytest
import torch
from torch import nn

from neurotoken.experiments import DigitsSweep
from neurotoken.experiments import Results, report
from neurotoken.experiments.main_job import PARADIGMS, IntraToken, MainJob, run_main_job, spike_raster
from neurotoken.zoo import load_model


class Replay(nn.Module):
    """Emits a fixed tensor from a child module, whatever the input."""

    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out, self.child = out, nn.Identity()

    def forward(self, x):
        return self.child(self.out)


def test_raster_lists_the_events_of_the_first_discrete_layer_for_one_input():
    spikes = torch.zeros(3, 1, 4)  # [T, B=1, N]
    spikes[0, 0, 1] = spikes[2, 0, 3] = 1.0
    spikes[1, 0, 0] = -1.0
    raster = spike_raster(Replay(spikes), torch.zeros(1, 2))
    assert raster == {"layer": "child", "steps": 3, "neurons": 4, "total_neurons": 4,
                      "events": [[0, 1], [1, 0], [2, 3]], "values": [1.0, -1.0, 1.0]}


def test_raster_of_one_virtual_time_step_steps_along_the_tokens():
    spikes = torch.zeros(1, 1, 5, 3)  # [T=1, B=1, L, D]
    spikes[0, 0, 4, 2] = 1.0
    raster = spike_raster(Replay(spikes), torch.zeros(1, 2))
    assert (raster["steps"], raster["neurons"], raster["events"]) == (5, 3, [[4, 2]])


def test_raster_keeps_the_first_neurons_and_records_how_many_there_were():
    spikes = torch.zeros(2, 1, 200)
    spikes[:, 0, 150] = spikes[0, 0, 3] = 1.0
    raster = spike_raster(Replay(spikes), torch.zeros(1, 2), max_neurons=128)
    assert (raster["neurons"], raster["total_neurons"], raster["events"]) == (128, 200, [[0, 3]])


def test_raster_is_none_without_discrete_outputs():
    assert spike_raster(Replay(torch.rand(3, 1, 4) + 0.1), torch.zeros(1, 2)) is None


@pytest.mark.parametrize("changes, message", [
    ({"paradigms": ("vision",)}, "paradigms\\[0\\]"),
    ({"profile": "tpu"}, "tpu"),
    ({"count_batch": 0}, "count_batch"),
])
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        MainJob(**changes)


@pytest.mark.parametrize("changes, message", [({"reset": "soft"}, "reset"), ({"encodings": ("morse",)}, "morse"),
                                              ({"Ts": (0,)}, "Ts"), ({"Ts": ()}, "Ts"), ({"hidden": (0,)}, "hidden"),
                                              ({"beta": 1.5}, "beta"), ({"threshold": float("nan")}, "threshold")])
def test_paradigm_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        DigitsSweep(**changes)


def test_the_moved_intra_token_config_still_builds_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="DigitsSweep"):
        config = IntraToken(T=4, encoding="bernoulli")
    assert (config.Ts, config.encodings, config.reset) == ((4,), ("bernoulli",), "zero")


def test_quick_intra_token_pair_is_counted_and_saved(tmp_path):
    result = run_main_job(MainJob.quick(paradigms=("intra-token",)), run_dir=tmp_path)
    twin, snn = result.tables["rows"]
    assert (twin["neuromorphic"], snn["neuromorphic"]) == (False, True)
    assert twin["energy_vs_twin"] == 1.0
    assert snn["energy_vs_twin"] == pytest.approx(snn["energy_j"] / twin["energy_j"])
    assert twin["acs"] == 0 and twin["macs"] > 0  # real inputs: MACs
    assert snn["macs"] == 0 and snn["acs"] > 0  # rate-coded spikes everywhere: ACs only
    assert 0 <= snn["sparsity"] <= 1 and twin["sparsity"] != twin["sparsity"]  # nan: no NPE in the twin
    assert sum(snn["layer_energy_j"].values()) == pytest.approx(snn["energy_j"])
    assert result.artifacts["rasters"]["intra-token"]["steps"] == 2  # T of the quick config
    meta = result.artifacts["meta"]
    assert meta["seed"] == 0 and meta["torch"] == torch.__version__ and meta["date"].endswith("UTC")
    assert "[intra]" in meta["config"] and meta["neurotoken"]
    fits = ["intra-token-conventional", "intra-token-neuromorphic"]
    assert sorted(p.name for p in (tmp_path / "fits").iterdir()) == fits
    assert sorted(p.stem for p in (tmp_path / "models").iterdir()) == fits
    model, spec = load_model(snn["model_file"])
    assert spec["kwargs"]["T"] == 2 and spec["kwargs"]["reset"] == "zero"


@pytest.mark.slow
def test_quick_job_covers_every_paradigm():
    rows = run_main_job(MainJob.quick()).tables["rows"]
    assert [r["paradigm"] for r in rows] == [p for p in PARADIGMS for _ in range(2)]
    assert all(r["energy_j"] > 0 for r in rows)


def test_a_profile_without_mac_prices_marks_energies_instead_of_dividing_by_zero():
    result = run_main_job(MainJob.quick(paradigms=("intra-token",), profile="loihi"))
    twin, snn = result.tables["rows"]
    assert "macs" in twin["unpriced"] and twin["energy_j"] == 0
    assert snn["energy_vs_twin"] != snn["energy_vs_twin"]  # nan: no ratio to a zero
    assert report.cells(twin)[3].endswith("*") and report.cells(snn)[8] == "-"
    assert "does not price: macs" in report.unpriced_note(result)


def _chip_rows():
    base = {"paradigm": "intra-token", "task": "digits", "metric": "accuracy", "higher_is_better": True,
            "per": "inference", "fits": True, "cores": 2, "energy_breakdown_j": {}}
    return [{**base, "model": m, "neuromorphic": n, "value": v, "chip": c, "energy_j": e, "latency_s": t,
             "unpriced": u}
            for m, n, v in (("ReLU MLP", False, 0.9), ("SNN", True, 0.85))
            for c, e, t, u in (("loihi", 0.0, 2e-9, ["macs"]), ("analog_pcm", 3e-9, None, []))]


def test_hardware_table_cells_say_fit_cores_energy_latency_and_unpriced():
    from neurotoken.experiments.report import HARDWARE_COLUMNS, hardware_cells, hardware_note

    rows = _chip_rows()
    assert len(hardware_cells(rows[0])) == len(HARDWARE_COLUMNS)
    assert hardware_cells(rows[0])[2:] == ("loihi", "90.00% accuracy", "yes", "2", "0 J/inf*", "2 ns/inf")
    assert hardware_cells(rows[1])[-2:] == ("3 nJ/inf", "-")
    assert "loihi: macs" in hardware_note(Results({"rows": [], "hardware": rows}))


def test_hardware_figure_has_a_panel_per_task_labelled_axes_and_a_legend_entry_per_chip():
    from neurotoken.experiments.report import hardware_figure

    rows = _chip_rows() + [{**r, "task": "demod", "metric": "SER @ 10 dB", "higher_is_better": False}
                           for r in _chip_rows()]
    fig = hardware_figure(Results({"rows": [], "hardware": rows}))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["digits", "demod"]
    assert all("energy per inference" in ax.get_xlabel() and ax.get_xscale() == "log" for ax in visible)
    assert visible[1].get_ylabel() == "SER @ 10 dB (lower is better)"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["loihi", "analog_pcm"]
