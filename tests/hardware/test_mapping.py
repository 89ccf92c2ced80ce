"""Mapping: cores from capacities, mesh positions and hop counts by hand; every model maps."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import neurotoken as nt
from neurotoken import hardware as hw
from neurotoken.hardware.mapping import Layer, place


def _snn(sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b, bias=False), nt.LIF()]
    return nn.Sequential(*layers)


def test_cores_from_capacities_by_hand(tiny):
    # 8 neurons and 32 one-byte weights per core, 4 cores on chip
    chip = tiny(cores={"count": 4})
    model = _snn([4, 8, 16])  # Linear 4x8 = 32 B, LIF 8, Linear 8x16 = 128 B, LIF 16
    m = hw.map(model, chip, torch.rand(3, 2, 4))
    cores = {name: p.cores for name, p in m.layers.items()}
    assert cores == {"0": (0,), "1": (1,), "2": (2, 3, 4, 5), "3": (6, 7)}
    assert [m.layers[n].neurons for n in "0123"] == [0, 8, 0, 16]
    assert [m.layers[n].synapses for n in "0123"] == [32, 0, 128, 0]
    assert m.cores == 8 and not m.fits
    assert m.layers["2"].spill_bytes == 64  # two of its four cores are past core 3
    assert m.spill_bytes == 64
    assert hw.map(model, tiny(cores={"count": 8}, mesh={"x": 4}), torch.rand(3, 2, 4)).fits


def test_small_layers_share_a_core(tiny):
    chip = tiny(cores={"neurons": 100, "synapse_bytes": 1000})
    m = hw.map(_snn([4, 8, 2]), chip, torch.rand(3, 2, 4))
    assert m.cores == 1 and m.fits and all(p.cores == (0,) for p in m.layers.values())


@settings(max_examples=30, deadline=None)
@given(neurons=st.integers(1, 500), per_core=st.integers(1, 64))
def test_a_layer_larger_than_a_core_splits_over_ceil_cores(tiny, neurons, per_core):
    chip = tiny(cores={"neurons": per_core, "count": 2000}, mesh={"x": 50, "y": 40})
    m = place({"n": Layer("n", nn.Identity(), "neurons", neurons=neurons)}, chip)
    assert m.layers["n"].cores == tuple(range(math.ceil(neurons / per_core)))


def test_hops_on_a_known_placement(tiny):
    chip = tiny(cores={"count": 12, "neurons": 1}, mesh={"x": 4, "y": 3})
    m = place({f"n{i}": Layer(f"n{i}", nn.Identity(), "neurons", neurons=1) for i in range(12)}, chip)
    assert m.position[0] == (0, 0) and m.position[6] == (2, 1) and m.position[11] == (3, 2)
    assert m.hops(0, 6) == (2, 1) and m.hops(11, 0) == (3, 2) and m.hops(5, 5) == (0, 0)
    # one spike from core 0 multicast to cores 5 (1, 1) and 6 (2, 1): 1 + 2 east-west, 1 + 1 north-south
    assert m.multicast_hops((0,), (5, 6)) == (3.0, 2.0)
    # spread over two source cores: the mean over sources
    assert m.multicast_hops((0, 1), (1,)) == (0.5, 0.0)


def test_cores_of_one_tile_share_its_router(tiny):
    chip = tiny(cores={"count": 8, "neurons": 1}, mesh={"x": 2, "y": 1, "cores_per_node": 4})
    m = place({f"n{i}": Layer(f"n{i}", nn.Identity(), "neurons", neurons=1) for i in range(8)}, chip)
    assert [m.position[c] for c in range(8)] == [(0, 0)] * 4 + [(1, 0)] * 4
    assert m.hops(0, 3) == (0, 0) and m.hops(2, 5) == (1, 0)


@settings(max_examples=30, deadline=None)
@given(x=st.integers(1, 8), y=st.integers(1, 8), data=st.data())
def test_hops_are_the_manhattan_distance(tiny, x, y, data):
    n = x * y
    chip = tiny(cores={"count": n, "neurons": 1}, mesh={"x": x, "y": y})
    m = place({f"n{i}": Layer(f"n{i}", nn.Identity(), "neurons", neurons=1) for i in range(n)}, chip)
    a, b = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    assert m.hops(a, b) == m.hops(b, a) == (abs(a % x - b % x), abs(a // x - b // x))


def test_analog_layer_takes_one_core_per_tile(tiny):
    chip = tiny(kind="analog", analog={"tile_rows": 4, "tile_cols": 4, "dac_bits": 8, "adc_bits": 8,
                                       "source": "test"}, cores={"count": 16}, mesh={"x": 4, "y": 4})
    m = hw.map(nn.Linear(10, 6), chip, torch.rand(2, 10))
    assert m.layers["Linear"].cores == tuple(range(6))  # ceil(10/4) row tiles x ceil(6/4) column tiles


def test_neurons_of_a_token_model_are_per_token(tiny):
    model = nt.models.SpikingTransformer(5, 8, 2, 1, 3, T=2)
    m = hw.map(model, "loihi", torch.randn(2, 7, 5))
    neurons = [p.neurons for p in m.layers.values() if p.kind == "neurons"]
    assert neurons and max(neurons) <= 3 * 8  # channels of one token (qkv at most), not L x D


def test_map_refuses_bad_arguments():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        hw.map("model", "loihi", torch.rand(2, 3))
    for sample in (torch.tensor(1.0), torch.rand(0, 3), [[1.0, 2.0, 3.0]]):
        with pytest.raises(ValueError, match="sample must be a tensor"):
            hw.map(nn.Linear(3, 2), "loihi", sample)
    with pytest.raises(ValueError, match="nothing to place"):
        hw.map(nn.ReLU(), "loihi", torch.rand(2, 3))
