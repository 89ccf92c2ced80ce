import math

import pytest
import torch
from torch import nn

from neurotoken import accounting
from neurotoken.accounting.energy import PROFILES, get_profile, load_profile
from neurotoken.neurons import LIF

PJ = 1e-12


def test_energy_is_counts_times_constants_cmos45():
    lin = nn.Linear(3, 2)
    with accounting.count(lin, "cmos45") as c:
        lin(torch.full((4, 3), 0.5))
    # 24 fp32 MACs x (3.7 + 0.9) pJ; 32 weight bytes in 8 KB SRAM at 5 pJ / 4 B; 80 activation bytes
    # in the 32 KB local SRAM at 10 pJ / 4 B
    assert c.energy_j == pytest.approx((24 * 4.6 + 32 * 1.25 + 80 * 2.5) * PJ)
    assert c.layer_energy_j["Linear"] == pytest.approx(c.energy_j)


def test_energy_loihi_prices_synaptic_ops_neuron_updates_and_spikes():
    lif = LIF(beta=0.5, threshold=1.0)
    with accounting.count(lif, "loihi") as c:
        lif(torch.tensor([[[1.0, 0.0]]]).expand(3, 1, 2))
    assert c.energy_j == pytest.approx((6 * 52.0 + 2 * 1.7) * PJ)  # memory is inside the per-op figures
    lin = nn.Linear(2, 3)
    with accounting.count(lin, "loihi") as c:
        lin(torch.tensor([[1.0, 0.0]]))
    assert c.energy_j == pytest.approx(3 * 23.6 * PJ) and c.unpriced == []


def test_unknown_profile_lists_options():
    with pytest.raises(ValueError, match="unknown profile 'tpu'.*cmos45.*loihi"):
        accounting.count(nn.Linear(1, 1), "tpu")
    with pytest.raises(TypeError, match="profile"):
        get_profile(3)


GOOD = """
name = "toy"
local = "sram"
[ops_pj]
macs = 2.0
[[levels]]
name = "sram"
capacity_bytes = 1024
pj_per_byte = 0.5
[[levels]]
name = "dram"
pj_per_byte = 100
"""


def test_user_profile_from_toml(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(GOOD)
    p = load_profile(path)
    assert p.levels[-1].capacity_bytes == math.inf and p.ops_pj["macs"] == 2.0
    lin = nn.Linear(3, 2)
    with accounting.count(lin, str(path)) as c:
        lin(torch.full((4, 3), 0.5))
    assert c.energy_j == pytest.approx((24 * 2.0 + (32 + 80) * 0.5) * PJ)


@pytest.mark.parametrize("text, message", [
    (GOOD.replace('local = "sram"', ""), "missing key 'local'"),
    (GOOD.replace("macs = 2.0", 'macs = "two"'), "key 'macs' must be int or float"),
    (GOOD.replace("pj_per_byte = 0.5", ""), r"levels\[0\]: missing key 'pj_per_byte'"),
    (GOOD.replace('local = "sram"', 'local = "l2"'), "local must be one of 'sram', 'dram'"),
    (GOOD.split("[[levels]]\nname = \"dram\"")[0], "unbounded level"),
    ("name = [", "not valid TOML"),
])
def test_malformed_profile_file_names_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_profile(path)


def test_every_registered_profile_has_a_source():
    assert set(PROFILES.names()) >= {"cmos45", "loihi"}
    assert all(p.source for p in PROFILES.values())
