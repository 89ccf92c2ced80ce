"""NIR export/import: round trips keep parameters and outputs, the discretisation by hand, refusals."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

nir = pytest.importorskip("nir", reason="nir not installed; pip install --no-deps nir==1.0.8 nirtorch==2.6")

from neurotoken.encoding import encode  # noqa: E402
from neurotoken.export import DT, export_model, from_nir, to_nir  # noqa: E402
from neurotoken.layers import SpikingConv2d, SpikingLinear  # noqa: E402
from neurotoken.models import SNNClassifier  # noqa: E402
from neurotoken.neurons import LIF, ResonateFire  # noqa: E402


def mismatch(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a != b).double().mean().item()


def conv_net() -> nn.Sequential:
    """Conv -> Flatten -> per-feature LIF -> Linear+LIF: exercises layouts and the Flatten permutation."""
    torch.manual_seed(1)
    return nn.Sequential(
        SpikingConv2d(2, 3, 3, stride=1, padding=1, beta=torch.tensor([0.9, 0.5, 0.0]),
                      threshold=torch.tensor([0.3, 0.4, 0.5]), reset="zero"),
        nn.Flatten(2),
        LIF(beta=torch.linspace(0.0, 0.95, 5 * 4 * 3), threshold=0.2, reset="none"),
        SpikingLinear(5 * 4 * 3, 7, beta=0.8, threshold=0.5, reset="zero"))


def test_classifier_round_trip_keeps_parameters_and_logits():
    torch.manual_seed(0)
    model = SNNClassifier(16, hidden=(32, 24), classes=10, T=8, beta=0.8, threshold=0.3, reset="zero")
    x = torch.rand(5, 16)
    graph = to_nir(model, x)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Affine", "LIF", "Affine", "LIF", "Affine", "Output"]
    assert graph.metadata["encoding"] == "direct" and graph.metadata["T"] == 8
    back = from_nir(graph)
    for ours, theirs in zip(model.body, back[:2]):
        assert torch.equal(ours.linear.weight, theirs.linear.weight)
        assert torch.equal(ours.linear.bias, theirs.linear.bias)
        assert theirs.neuron.reset == "zero"
        assert theirs.neuron.beta == pytest.approx(0.8, abs=1e-12)
        assert theirs.neuron.threshold == pytest.approx(0.3, abs=1e-12)
    s = encode(model.encoding, x, model.T)
    spikes, spikes_back = model.body(s), back[:2](s)
    assert 0.05 < spikes.mean() < 0.95
    assert mismatch(spikes, spikes_back) <= 1e-4
    torch.testing.assert_close(back(s).mean(0), model(x))


def test_conv_round_trip_keeps_outputs_and_graph():
    model = conv_net()
    x = torch.randn(6, 2, 5, 4, 2)
    graph = to_nir(model, x)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == ["Input", "Conv2d", "LIF", "Flatten", "LI", "Threshold", "Affine", "LIF", "Output"]
    assert tuple(graph.nodes["input"].input_type["input"]) == (2, 5, 4)  # NIR is channels-first
    back = from_nir(graph)
    y = model(x)
    assert 0.05 < y.mean() < 0.95
    assert mismatch(back(x), y) <= 1e-4
    again = to_nir(back, x)  # export of the import writes the same graph
    for name, node in graph.nodes.items():
        for field in ("weight", "bias", "tau", "r", "v_threshold", "threshold"):
            if hasattr(node, field):
                np.testing.assert_allclose(getattr(again.nodes[name], field), getattr(node, field), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(beta=st.floats(0.0, 1.0), threshold=st.floats(0.1, 2.0), reset=st.sampled_from(["zero", "none"]),
       dt=st.sampled_from([1e-4, 1e-3, 1.0]))
def test_lif_round_trip_is_exact_for_any_decay(beta, threshold, reset, dt):
    lif = LIF(beta=beta, threshold=threshold, reset=reset)
    x = torch.randn(20, 3, 4, generator=torch.Generator().manual_seed(0))
    back = from_nir(to_nir(lif, x, dt=dt))
    assert mismatch(back(x), lif(x)) <= 1e-4


def test_discretisation_by_hand_on_one_neuron():
    """beta = 0.75, dt = 1e-3: tau = dt/(1-beta) = 4e-3, r = 1/(1-beta) = 4; Euler on the NIR ODE = eq. (9)."""
    lif = LIF(beta=0.75, threshold=1.0, reset="zero")
    currents = torch.tensor([0.5, 0.5, 0.5, 0.0, 1.2, 0.3, 0.3]).reshape(7, 1, 1)
    graph = to_nir(lif, currents, dt=1e-3)
    node = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    np.testing.assert_allclose([node.tau[0], node.r[0], node.v_threshold[0]], [4e-3, 4.0, 1.0])
    assert node.v_leak[0] == 0.0 and node.v_reset[0] == 0.0
    # h: 0.5, 0.875, 1.15625 (fires), 0 (reset, then x = 0), 1.2 (fires), 0.3, 0.525
    assert lif(currents).flatten().tolist() == [0, 0, 1, 0, 1, 0, 0]
    v, spikes = 0.0, []
    for i in currents.flatten().tolist():  # forward Euler of tau dv/dt = (v_leak - v) + r I
        v = v + 1e-3 / node.tau[0] * (node.v_leak[0] - v + node.r[0] * i)
        spikes.append(float(v > node.v_threshold[0]))
        v = node.v_reset[0] if spikes[-1] else v
    assert spikes == [0, 0, 1, 0, 1, 0, 0]


def test_import_folds_input_gain_into_threshold():
    """A LIF with r = 1 (Norse's convention): gain g = r dt/tau, imported as threshold v_th/g."""
    tau, v_th, dt = 2e-3, 0.1, 1e-4
    node = nir.LIF(tau=np.full(1, tau), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.full(1, v_th))
    lif = from_nir(nir.NIRGraph.from_list(node), dt=dt)[0]
    assert lif.beta == pytest.approx(1 - dt / tau) and lif.threshold == pytest.approx(v_th * tau / dt)
    currents = torch.randn(50, 1, 1, generator=torch.Generator().manual_seed(0)) * 5
    v, spikes = 0.0, []
    for i in currents.flatten().tolist():
        v = v + dt / tau * (-v + i)
        spikes.append(float(v > v_th))
        v = 0.0 if spikes[-1] else v
    assert 0 < sum(spikes) < 50
    assert lif(currents).flatten().tolist() == spikes


def test_beta_one_exports_integrate_and_fire():
    lif = LIF(beta=1.0, threshold=0.5, reset="zero")
    x = torch.randn(10, 2, 3)
    graph = to_nir(lif, x, dt=1e-3)
    node = next(n for n in graph.nodes.values() if isinstance(n, nir.IF))
    np.testing.assert_allclose(node.r, 1e3)
    assert mismatch(from_nir(graph)(x), lif(x)) <= 1e-4
    assert isinstance(list(to_nir(LIF(beta=1.0, reset="none"), x).nodes.values())[1], nir.I)


def test_subtract_reset_is_refused_unless_approximated():
    lif = LIF(beta=0.9, threshold=1.0, reset="subtract")
    x = torch.rand(12, 2, 3) * 2
    with pytest.raises(ValueError, match="reset='subtract'.*approximate_subtract=True"):
        to_nir(nn.Sequential(lif), x)
    back = from_nir(to_nir(lif, x, approximate_subtract=True))[0]
    assert back.reset == "zero"
    assert torch.equal(back(x), LIF(beta=0.9, threshold=1.0, reset="zero")(x))


@pytest.mark.parametrize("model, name", [
    (nn.Sequential(SpikingLinear(4, 3), nn.ReLU()), r"'1' \(ReLU\)"),
    (nn.Sequential(nn.Linear(4, 4), ResonateFire()), r"'1' \(ResonateFire\)"),
    (SNNClassifier(4, hidden=(3,), spiking=False), r"'body.1' \(ReLU\)"),
    (nn.Sequential(SpikingLinear(4, 3, spike="bernoulli", reset="zero")), "'0.neuron'.*Bernoulli"),
    (nn.Sequential(nn.Linear(4, 3), LIF(beta=torch.tensor([1.0, 0.5, 0.5]), reset="zero")), "'1'.*mixes 1"),
])
def test_unsupported_layer_is_named(model, name):
    sample = torch.rand(2, 4) if isinstance(model, SNNClassifier) else torch.rand(3, 2, 4)
    with pytest.raises(ValueError, match=name):
        to_nir(model, sample)


def test_bad_sample_and_flatten_are_refused():
    mlp = nn.Sequential(SpikingLinear(4, 3))
    with pytest.raises(ValueError, match=r"sample must be \[T, B, D\]"):
        to_nir(mlp, torch.rand(2, 4))
    with pytest.raises(ValueError, match=r"does not fit layer '0.linear'"):
        to_nir(mlp, torch.rand(3, 2, 5))
    with pytest.raises(ValueError, match=r"SNNClassifier input \[B, in_features\]"):
        to_nir(SNNClassifier(4, hidden=(3,)), torch.rand(3, 2, 4))
    with pytest.raises(TypeError, match="sample must be a torch.Tensor"):
        to_nir(mlp, np.zeros((3, 2, 4)))
    with pytest.raises(ValueError, match="dt must be > 0"):
        to_nir(mlp, torch.rand(3, 2, 4), dt=0.0)
    with pytest.raises(ValueError, match="start_dim=2"):
        to_nir(nn.Sequential(SpikingConv2d(2, 3, 3, reset="zero"), nn.Flatten()), torch.rand(3, 2, 5, 5, 2))
    image = nn.Sequential(SpikingConv2d(2, 3, 3, reset="zero"), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="flatten first"):
        to_nir(image, torch.rand(3, 2, 5, 5, 2))


def test_from_nir_refuses_what_it_cannot_build():
    with pytest.raises(TypeError, match="nir.NIRGraph"):
        from_nir({"nodes": {}})
    cuba = nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                       v_threshold=np.ones(2))
    with pytest.raises(ValueError, match="'cubalif' \\(CubaLIF\\)"):
        from_nir(nir.NIRGraph.from_list(cuba))
    leaky = nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.ones(2), v_threshold=np.ones(2))
    with pytest.raises(ValueError, match="v_leak = 0"):
        from_nir(nir.NIRGraph.from_list(leaky))
    fast = nir.LIF(tau=np.full(2, DT / 2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    with pytest.raises(ValueError, match="tau must be >= dt"):
        from_nir(nir.NIRGraph.from_list(fast))


def test_file_round_trip(tmp_path):
    model = conv_net()
    x = torch.randn(6, 2, 5, 4, 2)
    path = export_model(model, tmp_path / "conv.nir", x, dt=1e-3)
    graph = nir.read(path)
    assert graph.metadata["dt"] == pytest.approx(1e-3)
    assert mismatch(from_nir(graph)(x), model(x)) <= 1e-4
    with pytest.raises(ValueError, match="format must be one of 'nir'"):
        export_model(model, tmp_path / "conv.onnx", x, format="onnx")


@pytest.mark.parametrize("options", [{"norm": "bn"}, {"pool": "avg"}, {"spiking": False}])
def test_a_conv_layer_with_norm_pool_or_relu_is_refused_naming_it(options):
    layer = SpikingConv2d(2, 3, 3, **options)
    with pytest.raises(ValueError, match="SpikingConv2d"):
        to_nir(nn.Sequential(layer), torch.rand(2, 1, 6, 6, 2))
