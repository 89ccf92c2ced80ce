"""Chips as data: built-ins load, every figure has a source, bad files are refused by name."""

import math

import pytest

from neurotoken.accounting.energy import PROFILES
from neurotoken.hardware import Chip, chips, load_chip
from neurotoken.hardware.chips import CHIP_DIR, chip_from_dict


def test_builtin_chips_are_listed_and_load():
    assert set(chips()) >= {"loihi", "analog_pcm", "digital_accelerator"}
    for name in chips():
        chip = load_chip(name)
        assert isinstance(chip, Chip) and chip.name == name
        assert chip.source and all(chip.sources.values())  # every section cites its source
        assert load_chip(chip) is chip


def test_loihi_figures_match_the_accounting_profile():
    chip = load_chip("loihi")
    assert (chip.cores, chip.neurons_per_core, chip.synapse_bytes_per_core) == (128, 1024, 128 * 1024)
    assert chip.hop_pj == (3.0, 4.0) and chip.weight_update_pj == 120.0 and chip.learns
    assert (chip.mesh, chip.cores_per_node) == ((8, 4), 4)
    assert chip.profile == PROFILES.get("loihi")  # one source of truth: the profile is the chip file's


def test_digital_accelerator_prices_as_cmos45():
    chip, cmos = load_chip("digital_accelerator"), PROFILES.get("cmos45")
    assert chip.profile == cmos and not chip.learns and chip.analog is None


def test_analog_pcm_per_mac_energy_is_the_published_efficiency():
    chip = load_chip("analog_pcm")
    assert chip.cores == 64 and (chip.analog.tile_rows, chip.analog.tile_cols) == (256, 256)
    assert chip.profile.ops_pj["macs"] == pytest.approx(2 / 2.48e12 / 1e-12, rel=1e-3)  # 2 ops per MAC
    assert chip.analog.adc_pj is None and chip.analog.dac_pj is None  # not published separately


def test_user_chip_from_toml(tmp_path):
    text = (CHIP_DIR / "loihi.toml").read_text().replace('name = "loihi"\nkind', 'name = "mine"\nkind')
    path = tmp_path / "mine.toml"
    path.write_text(text)
    assert load_chip(path).name == "mine" and load_chip(str(path)).cores == 128


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["cores"].update(colour=3), "unknown key.*'colour'"),
    (lambda d: d["cores"].pop("count"), "missing key.*'count'"),
    (lambda d: d.update(extra={"a": 1}), "unknown section.*'extra'"),
    (lambda d: d.pop("mesh"), r"missing section \[mesh\]"),
    (lambda d: d.update(kind="quantum"), "'kind' must be one of"),
    (lambda d: d["mesh"].update(hop_pj=[1.0]), "'hop_pj' must be a list of two"),
    (lambda d: d["cores"].update(count=0), "'count' must be an integer >= 1"),
    (lambda d: d["profile"]["ops_pj"].update(acs=math.nan), "acs.* must be (a )?finite"),
    (lambda d: d["mesh"].update(x=1, y=1), "fewer places than"),
    (lambda d: d["profile"].update(local="nowhere"), "local"),
    (lambda d: d.update(cores=5), r"\[cores\] must be a table"),
])
def test_bad_chip_descriptions_are_refused_by_name(chip_dict, edit, message):
    edit(chip_dict)
    with pytest.raises(ValueError, match=message):
        chip_from_dict(chip_dict)


def test_load_chip_refuses_unknown_names_and_types(tmp_path):
    with pytest.raises(ValueError, match="chip must be one of.*loihi"):
        load_chip("truenorth")
    with pytest.raises(TypeError, match="chip must be a name"):
        load_chip(3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_chip(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_chip(bad)
