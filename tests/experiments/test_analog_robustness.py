import pytest
import torch

from neurotoken.experiments import AnalogRobustness, run_analog_robustness
from neurotoken.experiments.analog_robustness import Devices, sweep_figure
from neurotoken.hardware import AnalogConfig
from neurotoken.hardware.analog import tiles
from neurotoken.zoo import load_model


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("analog")
    config = AnalogRobustness.quick(models=("digits",), adc_bits_sweep=(4, 6, 10))
    return config, run_analog_robustness(config, run_dir=run_dir), run_dir


def test_one_row_per_training_axis_and_setting_with_the_mean_within_the_draws(digits_run):
    config, results, _ = digits_run
    rows = results.tables["rows"]
    expected = [(t, axis, v) for t in ("digital", "hardware-aware") for axis, values in config.sweeps().items()
                for v in values]
    assert [(r["training"], r["axis"], r["setting"]) for r in rows] == expected
    for r in rows:
        assert (r["task"], r["model"], r["metric"]) == ("digits (intra-token)", "SNN (rate, T=2)", "accuracy")
        assert r["draws"] == config.draws
        assert 0.0 <= r["min"] <= r["mean"] <= r["max"] <= 1.0 and 0.0 <= r["digital"] <= 1.0


def test_the_base_point_per_training_with_its_change_against_the_digital_model(digits_run):
    config, results, _ = digits_run
    base = results.tables["base"]
    assert [r["training"] for r in base] == ["digital", "hardware-aware"]
    for r in base:
        assert len(r["values"]) == config.draws and r["mean"] == pytest.approx(sum(r["values"]) / config.draws)
        assert r["change_points"] == pytest.approx(100 * (r["mean"] - r["digital"]))


def test_one_plot_per_axis_in_the_run_folder_with_labelled_axes(digits_run):
    config, results, run_dir = digits_run
    assert [p.name for p in results.artifacts["plots"]] == [f"analog_{a}.png" for a in config.sweeps()]
    assert all((run_dir / p.name).stat().st_size > 1000 for p in results.artifacts["plots"])
    for axis in config.sweeps():
        ax = sweep_figure(results.tables["rows"], axis).axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() == "accuracy" and ax.get_title() == "SNN (rate, T=2), digits (intra-token)"
        assert len(ax.get_legend().get_texts()) == 3  # digital, hardware-aware, the digital model's line
    assert sweep_figure(results.tables["rows"], "t_inference_s").axes[0].get_xscale() == "log"


def test_the_run_folder_holds_the_digital_and_the_hardware_aware_model(digits_run):
    config, results, run_dir = digits_run
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == ["digits-digital.safetensors",
                                                                      "digits-hardware-aware.safetensors"]
    digital, spec = load_model(run_dir / "models" / "digits-digital.safetensors")
    hwa, hwa_spec = load_model(run_dir / "models" / "digits-hardware-aware.safetensors")
    assert "analog" not in spec and hwa_spec["kwargs"] == spec["kwargs"]
    assert AnalogConfig(**hwa_spec["analog"]) == config.devices.config(train_noise=True, train_quantisation=True)
    assert set(tiles(hwa)) == {name for name, m in digital.named_modules() if isinstance(m, torch.nn.Linear)}


def test_the_devices_give_the_crossbar_config_with_t0_one_second():
    base = Devices(read_noise=0.02, adc_bits=6).config(t_inference_s=3600.0)
    assert (base.read_noise, base.adc_bits, base.prog_noise, base.t_inference_s, base.t0_s) == (0.02, 6, 0.03, 3600.0, 1.0)


@pytest.mark.parametrize("changes, message", [
    ({"models": ("digits", "vision")}, "models[1] must be one of"),
    ({"drift_sweep_s": (0.5, 10.0)}, "drift_sweep_s must start at >= 1 s"),
    ({"read_noise_sweep": (0.1, 0.01)}, "read_noise_sweep"),
    ({"adc_bits_sweep": ()}, "adc_bits_sweep must hold at least 1 value"),
    ({"draws": 0}, "draws"),
])
def test_bad_configs_are_refused_naming_the_field(changes, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace("]", r"\]")):
        AnalogRobustness(**changes)


def test_bad_devices_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="read_noise must be >= 0"):
        Devices(read_noise=-0.1)
    with pytest.raises(TypeError, match="devices must be a Devices"):
        AnalogRobustness(devices={"read_noise": 0.1})
