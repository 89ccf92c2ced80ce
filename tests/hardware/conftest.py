"""Small chips described in the tests, so that hand computations stay small."""

import copy

import pytest

from neurotoken.hardware.chips import chip_from_dict

BASE = {
    "name": "tiny", "kind": "neuromorphic", "source": "test",
    "cores": {"count": 4, "neurons": 8, "synapse_bytes": 32, "weight_bits": 8, "source": "test"},
    "mesh": {"x": 2, "y": 2, "hop_pj": [3.0, 4.0], "hop_ns": [1.0, 2.0], "source": "test"},
    "timing": {"ns_per_op": {"acs": 1.0, "neuron_updates": 2.0}, "spike_ns": 0.5, "source": "test"},
    "learning": {"weight_update_pj": 100.0, "weight_update_ns": 5.0, "source": "test"},
    "profile": {"name": "tiny", "local": "core", "source": "test",
                "ops_pj": {"acs": 10.0, "neuron_updates": 20.0, "spikes": 1.0, "macs": 50.0},
                "levels": [{"name": "core", "pj_per_byte": 0.0}]},
}


def make_chip(**sections):
    """The BASE chip with sections updated (a None value removes the section)."""
    data = copy.deepcopy(BASE)
    for name, value in sections.items():
        if value is None:
            data.pop(name)
        elif isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name].update(value)
        else:
            data[name] = value
    return chip_from_dict(data)


@pytest.fixture
def chip_dict():
    return copy.deepcopy(BASE)


@pytest.fixture(scope="session")
def tiny():
    """make_chip(section=dict of keys to change, or None to drop it) -> Chip."""
    return make_chip
