"""Analog crossbar tiles: exactness with ideal devices, noise and drift statistics, conversions, calibration."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import neurotoken as nt
from neurotoken.hardware.analog import (AnalogConfig, AnalogConv2d, AnalogLinear, analog, calibrate, configure,
                                        program, quantise, tiles)

IDEAL = dict(dac_bits=24, adc_bits=24)  # converters finer than fp32


def _linear(rows: int, cols: int, seed: int = 0, dtype=torch.float32, **config) -> AnalogLinear:
    torch.manual_seed(seed)
    return analog(nn.Linear(rows, cols, dtype=dtype), AnalogConfig(**config))[0].eval()


def test_analog_copy_with_ideal_devices_equals_the_digital_model_and_leaves_it_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(301, 67), nn.ReLU(), nn.Linear(67, 5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chip = analog(model, AnalogConfig(tile_rows=64, tile_cols=30, **IDEAL)).eval()
    x = torch.rand(7, 301)
    torch.testing.assert_close(chip(x), model(x))
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(tiles(chip)) == {"0", "2"}
    assert nt.hardware.analog is analog and nt.hardware.AnalogConfig is AnalogConfig


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 70), st.integers(1, 40), st.integers(1, 33), st.integers(1, 33), st.integers(0, 2**16))
def test_tiled_partial_sums_add_up_to_the_digital_layer_for_any_tile_size(rows, cols, tile_rows, tile_cols, seed):
    layer = _linear(rows, cols, seed, dtype=torch.float64, tile_rows=tile_rows, tile_cols=tile_cols, **IDEAL)
    x = torch.randn(5, rows, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(layer(x), nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert layer.output_range.shape == (-(-rows // tile_rows), -(-cols // tile_cols))


def test_analog_conv2d_with_ideal_devices_equals_the_digital_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 9, 3, stride=2, padding=1, dilation=1)
    chip = analog(conv, AnalogConfig(tile_rows=10, tile_cols=4, **IDEAL)).eval()
    x = torch.randn(2, 3, 9, 7)
    torch.testing.assert_close(chip(x), conv(x))
    torch.testing.assert_close(chip(x[0]), conv(x[0]))


def test_analog_snn_classifier_with_ideal_devices_matches_the_digital_logits():
    torch.manual_seed(2)
    model = nt.models.SNNClassifier(20, hidden=[33], classes=4, T=3, encoding="rate").eval()
    chip = analog(model, AnalogConfig(tile_rows=16, **IDEAL)).eval()
    x = torch.rand(5, 20)
    torch.manual_seed(3)
    want = model(x)
    torch.manual_seed(3)
    torch.testing.assert_close(chip(x), want)


def test_programming_noise_and_drift_exponents_match_their_configured_statistics():
    layer = _linear(400, 250, prog_noise=0.03, drift_nu_mean=0.06, drift_nu_std=0.01, g_max_us=25.0)
    ideal = _linear(400, 250).conductances()  # same seed, same weights, no noise
    err = (layer.conductances() - ideal) / 25.0  # 2 x 10^5 devices, in units of g_max
    assert abs(err.std().item() / 0.03 - 1) < 0.02
    assert abs(err.mean().item()) < 0.02 * 0.03
    assert abs(layer.nu.mean().item() / 0.06 - 1) < 0.02
    assert abs(layer.nu.std().item() / 0.01 - 1) < 0.02


def test_read_noise_matches_its_configured_statistic_per_device_pair():
    layer = _linear(1, 100_000, read_noise=0.02, **IDEAL)  # one row: each output reads one device pair
    with torch.no_grad():
        layer.bias.zero_()
        x = torch.ones(1, 1)
        noise = (layer(x) - x @ layer.weight.T) / layer.weight.abs().max()
    assert abs(noise.std().item() / (math.sqrt(2) * 0.02) - 1) < 0.02
    assert abs(noise.mean().item()) < 0.02 * 0.02


@pytest.mark.parametrize("t_s", [1.0, 3600.0, 86400.0, 3.15e7])
def test_drift_follows_the_power_law_exactly_with_compensation_off(t_s):
    layer = _linear(37, 11, dtype=torch.float64, drift_nu_mean=0.05, drift_nu_std=0.02, drift_compensation=False,
                    t_inference_s=t_s, **IDEAL)
    g0, gt = layer.conductances(1.0), layer.conductances()
    torch.testing.assert_close(gt, g0 * (t_s / 1.0) ** -layer.nu)  # to fp64 rounding
    x = torch.rand(4, 37, dtype=torch.float64)
    w_t = (gt[0] - gt[1]) / 25.0 * layer.weight.abs().max()
    torch.testing.assert_close(layer(x), x @ w_t.T + layer.bias, rtol=1e-5, atol=1e-5)  # 24-bit converters


def test_global_drift_compensation_restores_a_uniform_drift_exactly():
    layer = _linear(37, 11, dtype=torch.float64, drift_nu_mean=0.05, t_inference_s=86400.0, **IDEAL)
    x = torch.rand(4, 37, dtype=torch.float64)
    torch.testing.assert_close(layer(x), nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    configure(layer, drift_compensation=False)
    assert not torch.allclose(layer(x), nn.functional.linear(x, layer.weight, layer.bias))


def test_adc_conversions_are_time_steps_x_row_tiles_x_columns_and_binary_spikes_need_no_dac():
    chip = analog(nn.Sequential(nn.Linear(600, 300)), AnalogConfig(tile_rows=256, tile_cols=256)).eval()
    spikes = (torch.rand(5, 1, 600) < 0.2).float()  # [T, B, in]
    with nt.accounting.count(chip) as c:
        chip(spikes)
    row = c.layers["0"]
    assert row["adc_conversions"] == 5 * 3 * 300
    assert row["dac_conversions"] == 0 and row["dac_bits"] == 0
    with nt.accounting.count(chip) as c:
        chip(torch.rand(5, 1, 600))
    assert c.layers["0"]["dac_conversions"] == 5 * 600 * 2  # every row driven in both column tiles
    assert c.layers["0"]["dac_bits"] == 5 * 600 * 2 * 8
    with nt.accounting.count(chip) as c:
        chip(torch.randint(-1, 2, (5, 1, 600)).float())  # ternary spikes: 2-bit DAC
    assert c.layers["0"]["dac_bits"] == 2 * c.layers["0"]["dac_conversions"]


def test_conv_conversions_count_every_output_position():
    chip = analog(nn.Conv2d(4, 6, 3), AnalogConfig(tile_rows=16)).eval()  # rows 36: 3 row tiles
    x = (torch.rand(2, 4, 7, 8) < 0.3).float()
    counts = chip[0].accounting((x,), chip(x))
    assert counts == {"adc_conversions": 2 * 5 * 6 * 3 * 6, "dac_conversions": 0, "dac_bits": 0}


@settings(deadline=None, max_examples=100)
@given(st.integers(1, 200), st.floats(-2.0, 2.0, allow_nan=False))
def test_quantiser_error_is_at_most_half_an_lsb_inside_its_range(steps, value):
    x = torch.tensor([value, value / 3, -value / 7], dtype=torch.float64)
    err = (quantise(x, steps) - x.clamp(-1, 1)).abs()
    assert (err <= 0.5 / steps + 1e-12).all()


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 90), st.integers(1, 20), st.integers(2, 8), st.integers(0, 2**16))
def test_layer_quantisation_error_is_bounded_by_the_adc_lsb_of_each_tile(rows, cols, adc_bits, seed):
    layer = _linear(rows, cols, seed, dtype=torch.float64, tile_rows=16, tile_cols=8, adc_bits=adc_bits)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(6, rows, generator=g, dtype=torch.float64) < 0.5).double()
    x[:, 0] = 1.0  # a spike in every vector: the DAC passes binary spikes exactly
    w = layer.weight.detach()
    w_max = w.abs().max()
    pad = -rows % 16
    tile_sums = nn.functional.pad(w.abs() / w_max, (0, pad)).unflatten(-1, (-1, 16)).sum(-1)  # [out, R]
    ranges = nn.functional.pad(tile_sums.T, (0, -cols % 8)).unflatten(-1, (-1, 8)).amax(-1)  # [R, C]
    ranges = ranges.repeat_interleave(8, dim=-1)[:, :cols]
    lsb_bound = (ranges / (2 * (2 ** (adc_bits - 1) - 1))).sum(0) * w_max
    with torch.no_grad():
        err = (layer(x) - nn.functional.linear(x, w, layer.bias)).abs()
    assert (err <= lsb_bound + 1e-9).all()


def test_conductance_levels_bound_the_weight_error_by_half_a_level():
    layer = _linear(40, 30, dtype=torch.float64, levels=9)
    g = layer.conductances() / 25.0
    w = layer.weight.detach() / layer.weight.detach().abs().max()
    assert ((g[0] - g[1]) - w).abs().max() <= 0.5 / 8 + 1e-12


def test_noise_is_deterministic_under_the_seed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 20))
    x = torch.rand(3, 30)
    config = AnalogConfig(prog_noise=0.05, read_noise=0.02, drift_nu_mean=0.05, drift_nu_std=0.02,
                          t_inference_s=1e4)
    a, b = analog(model, config).eval(), analog(model, config).eval()
    torch.testing.assert_close(a(x), b(x))
    c = analog(model, AnalogConfig(**{**config.__dict__, "seed": 1})).eval()
    assert not torch.allclose(analog(model, config).eval()(x), c(x))
    program(c, 0)
    torch.testing.assert_close(c(x), analog(model, config).eval()(x))


def test_hardware_aware_training_injects_noise_and_trains_the_digital_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    plain = analog(model, AnalogConfig(prog_noise=0.1, read_noise=0.05)).train()
    torch.testing.assert_close(plain(x), model(x))  # digital in training unless train_noise
    hwa = analog(model, AnalogConfig(prog_noise=0.1, read_noise=0.05, train_noise=True,
                                     train_quantisation=True)).train()
    x[:4] = 0.0  # silent input vectors: the read noise's scale must not pass an infinite gradient
    out = hwa(x)
    assert not torch.allclose(out, hwa(x)) and not torch.allclose(out, model(x))
    out.square().sum().backward()
    grad = hwa[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    drifting = analog(model, AnalogConfig(drift_nu_mean=0.05, drift_nu_std=0.02, t_inference_s=1e5,
                                          train_noise=True)).train()
    assert not torch.allclose(drifting(x), drifting(x))  # a fresh chip's drift exponents per forward
    before = hwa[0].weight.detach().clone()
    nt.learning.bptt.Trainer(hwa, nt.learning.bptt.FitConfig(epochs=1, batch_size=16)).fit(x, y)
    assert not torch.equal(before, hwa[0].weight.detach())


def test_calibrate_sets_input_and_output_ranges_and_survives_state_dict():
    torch.manual_seed(0)
    model = nt.models.SNNClassifier(16, hidden=[24], classes=3, T=4, encoding="rate")
    chip = analog(model, AnalogConfig(tile_rows=8, adc_bits=8))
    x = torch.rand(32, 16)
    calibrate(chip, [x[:16], x[16:]])
    assert chip.training  # mode restored
    first, readout = chip.body[0].linear, chip.readout
    assert first.inputs_calibrated and first.input_range.item() == 1.0 and first.input_steps == 1
    assert readout.outputs_calibrated and readout.output_range.shape == (3, 1)
    other = analog(model, AnalogConfig(tile_rows=8, adc_bits=8))
    other.load_state_dict(chip.state_dict())
    assert other.readout.outputs_calibrated and torch.equal(other.readout.output_range, readout.output_range)


def test_calibrated_multilevel_spikes_pass_the_dac_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 6))
    x = torch.randint(0, 4, (30, 40)).float()  # 4-level spikes: a 2-bit DAC, exact
    chip = analog(model, AnalogConfig(dac_bits=4, adc_bits=24)).eval()
    assert not torch.allclose(chip(x), model(x), rtol=1e-4, atol=1e-4)  # 7 DAC levels per sign miss 1/3, 2/3
    calibrate(chip, x)
    assert chip[0].input_steps == 3
    torch.testing.assert_close(chip(x), model(x))


def test_calibrated_direct_input_layer_stays_close_to_digital():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 20), nn.ReLU(), nn.Linear(20, 4)).eval()
    chip = calibrate(analog(model, AnalogConfig(tile_rows=16, adc_bits=10, dac_bits=10)), torch.rand(200, 50)).eval()
    x = torch.rand(10, 50)
    err = (chip(x) - model(x)).abs().max()
    assert err < 0.05 * model(x).abs().max()


def test_config_from_an_analog_chip_takes_its_tiles_and_converters():
    config = AnalogConfig.from_chip("analog_pcm", adc_bits=6)
    chip = nt.hardware.load_chip("analog_pcm").analog
    assert (config.tile_rows, config.tile_cols, config.dac_bits) == (chip.tile_rows, chip.tile_cols, chip.dac_bits)
    assert config.adc_bits == 6
    with pytest.raises(ValueError, match="analog chip"):
        AnalogConfig.from_chip("loihi")


def test_analog_runs_on_the_meta_device():
    model = nn.Sequential(nn.Linear(20, 10), nn.Conv2d(1, 2, 3)).to("meta")
    chip = analog(model, AnalogConfig(prog_noise=0.1, read_noise=0.1)).eval()
    assert chip[0](torch.empty(3, 20, device="meta")).shape == (3, 10)
    assert chip[1](torch.empty(2, 1, 5, 5, device="meta")).shape == (2, 2, 3, 3)


@pytest.mark.parametrize("field, value", [("adc_bits", 0), ("dac_bits", 25), ("levels", 1), ("prog_noise", -0.1),
                                          ("t_inference_s", 0.5), ("tile_rows", 0)])
def test_bad_config_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        AnalogConfig(**{field: value})


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="config"):
        analog(nn.Linear(2, 2), {"adc_bits": 8})
    with pytest.raises(TypeError, match="model"):
        analog("model")
    with pytest.raises(ValueError, match="groups"):
        analog(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="unknown AnalogConfig"):
        configure(analog(nn.Linear(2, 2)), adc_bit=4)
    with pytest.raises(ValueError, match="tile_rows"):
        configure(analog(nn.Linear(2, 2)), tile_rows=4)
    with pytest.raises(TypeError, match="inputs"):
        calibrate(analog(nn.Linear(2, 2)), [1, 2])
    with pytest.raises(ValueError, match="no analog layers"):
        calibrate(nn.ReLU(), torch.ones(2))
    assert isinstance(AnalogConv2d(2, 3, 3), nn.Conv2d) and AnalogLinear(2, 3).prog_z.shape == (2, 3, 2)
