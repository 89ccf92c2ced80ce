"""Analog models in the zoo: the AnalogConfig and the layers' extra states travel with the weights."""

import json
from dataclasses import asdict, replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from neurotoken.hardware import AnalogConfig, analog, calibrate
from neurotoken.hardware.analog import configure, tiles
from neurotoken.zoo import CHECKSUM, EXTRAS, KEY, MODELS, _digest, load_model, save_model

SNN = {"in_features": 8, "hidden": [6], "classes": 3, "T": 2, "encoding": "rate", "reset": "zero"}
CNN = {"in_channels": 1, "classes": 3, "channels": [4], "T": 2}
NOISY = AnalogConfig(tile_rows=4, tile_cols=4, levels=16, prog_noise=0.05, read_noise=0.02, drift_nu_mean=0.05,
                     drift_nu_std=0.02, t_inference_s=86_400.0, adc_bits=6, seed=3)


def chip(name="SNNClassifier", kwargs=SNN, config=NOISY, x=None):
    """A calibrated analog copy of a fresh ``name(**kwargs)`` and its calibration inputs."""
    torch.manual_seed(0)
    x = torch.rand(16, kwargs["in_features"]) if x is None else x
    return calibrate(analog(MODELS.get(name)(**kwargs), config), x).eval(), x


def restarted(model):
    """``model`` with every layer's read noise generator back at its seed (what a load gives)."""
    model.load_state_dict(model.state_dict())
    return model


def contents(path):
    with safe_open(path, "pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def rewrite(path, tensors, metadata, sign=True):
    """Write ``tensors`` and ``metadata`` to ``path``, with its checksum made valid when ``sign``."""
    if sign:
        metadata = metadata | {CHECKSUM: _digest(metadata[KEY], tensors, metadata.get(EXTRAS))}
    save_file(tensors, path, metadata=metadata)
    return path


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), adc_bits=st.integers(3, 10), levels=st.sampled_from([None, 4, 33]),
       read_noise=st.sampled_from([0.0, 0.05]))
def test_a_loaded_analog_model_has_the_same_devices_ranges_and_read_noise(tmp_path, seed, adc_bits, levels,
                                                                          read_noise):
    config = replace(NOISY, seed=seed, adc_bits=adc_bits, levels=levels, read_noise=read_noise)
    model, x = chip(config=config)
    loaded, spec = load_model(save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, model))
    assert spec == {"class": "SNNClassifier", "kwargs": SNN, "analog": asdict(config)}
    assert tiles(loaded).keys() == tiles(model).keys()
    for name, layer in tiles(loaded).items():
        twin = tiles(model)[name]
        assert layer.config == config and layer.get_extra_state() == twin.get_extra_state()
        assert torch.equal(layer.conductances(), twin.conductances())
        assert torch.equal(layer.output_range, twin.output_range) and torch.equal(layer.input_range, twin.input_range)
    restarted(model)
    for _ in range(2):  # the read noise generators run in step
        torch.manual_seed(1)
        expected = model(x)
        torch.manual_seed(1)
        assert torch.equal(loaded(x), expected)


def test_an_analog_conv_model_round_trips(tmp_path):
    x = torch.rand(4, 8, 8, 1)
    model, _ = chip("SpikingCNN", CNN, x=x)
    loaded, spec = load_model(save_model(tmp_path / "c.safetensors", "SpikingCNN", CNN, model))
    assert spec["analog"] == asdict(NOISY) and len(tiles(loaded)) == len(tiles(model)) >= 2
    restarted(model)
    torch.manual_seed(1)
    expected = model(x)
    torch.manual_seed(1)
    assert torch.equal(loaded(x), expected)


def test_a_configured_model_saves_its_current_config(tmp_path):
    model, _ = chip()
    configure(model, t_inference_s=3600.0, read_noise=0.0)
    loaded, spec = load_model(save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, model))
    assert spec["analog"]["t_inference_s"] == 3600.0 and spec["analog"]["read_noise"] == 0.0
    assert {m.config for m in tiles(loaded).values()} == {replace(NOISY, t_inference_s=3600.0, read_noise=0.0)}


def test_a_digital_model_is_saved_without_analog_fields(tmp_path):
    torch.manual_seed(0)
    path = save_model(tmp_path / "d.safetensors", "SNNClassifier", SNN, MODELS.get("SNNClassifier")(**SNN))
    metadata, _ = contents(path)
    assert EXTRAS not in metadata and "analog" not in json.loads(metadata[KEY])


def test_layers_with_different_configs_are_refused_on_save(tmp_path):
    model, _ = chip()
    first = next(iter(tiles(model).values()))
    first.config = replace(first.config, adc_bits=4)
    with pytest.raises(ValueError, match="model's analog layers have 2 different AnalogConfigs"):
        save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, model)
    assert not (tmp_path / "a.safetensors").exists()


@pytest.mark.parametrize("part", ["analog", "extras"])
def test_the_checksum_covers_the_analog_config_and_the_extra_states(tmp_path, part):
    path = save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, chip()[0])
    metadata, tensors = contents(path)
    if part == "analog":
        spec = json.loads(metadata[KEY])
        spec["analog"]["read_noise"] = 0.0
        metadata[KEY] = json.dumps(spec)
    else:
        extras = json.loads(metadata[EXTRAS])
        next(iter(extras.values()))["seed"] += 1
        metadata[EXTRAS] = json.dumps(extras)
    with pytest.raises(ValueError, match="is corrupt: its weights or spec do not match the sha256"):
        load_model(rewrite(path, tensors, metadata, sign=False))


@pytest.mark.parametrize(("change", "message"), [
    (lambda spec, extras: spec["analog"].update(bogus=1), "field 'analog' has unknown key\\(s\\) 'bogus'; expected"),
    (lambda spec, extras: spec.update(analog=[8]), "field 'analog' must be a JSON object of AnalogConfig fields"),
    (lambda spec, extras: spec["analog"].update(adc_bits=0), "field 'analog': adc_bits must be"),
    (lambda spec, extras: spec["analog"].update(tile_rows=8), "weights do not fit SNNClassifier.*output_range"),
    (lambda spec, extras: extras.pop("body.0.linear._extra_state"),
     "extra state 'body.0.linear._extra_state' is missing"),
    (lambda spec, extras: extras["readout._extra_state"].pop("seed"), "extra state 'readout._extra_state' has fields"),
    (lambda spec, extras: extras["readout._extra_state"].update(input_steps="7"),
     "extra state 'readout._extra_state' field 'input_steps' must be like"),
    (lambda spec, extras: spec.pop("analog"), "'body.0.linear._extra_state' is not part of SNNClassifier"),
])
def test_a_bad_analog_spec_or_extra_state_is_refused_in_one_line_naming_it(tmp_path, change, message):
    path = save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, chip()[0])
    metadata, tensors = contents(path)
    spec, extras = json.loads(metadata[KEY]), json.loads(metadata[EXTRAS])
    change(spec, extras)
    metadata |= {KEY: json.dumps(spec), EXTRAS: json.dumps(extras)}
    with pytest.raises(ValueError, match=message) as info:
        load_model(rewrite(path, tensors, metadata))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_extra_states_that_are_not_json_objects_are_refused(tmp_path):
    path = save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, chip()[0])
    metadata, tensors = contents(path)
    for text, message in (("{not json", "is not valid JSON"), ('{"a": 3}', "must be a JSON object of JSON objects")):
        with pytest.raises(ValueError, match=f"metadata '{EXTRAS}' {message}"):
            load_model(rewrite(path, tensors, metadata | {EXTRAS: text}))


def test_an_analog_model_is_not_exported_to_nir(tmp_path):
    from neurotoken.export import export_model

    model, x = chip()
    path = save_model(tmp_path / "a.safetensors", "SNNClassifier", SNN, model)
    with pytest.raises(ValueError, match="NIR has no crossbar node"):
        export_model(path, tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()
