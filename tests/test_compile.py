"""torch.compile runs every model family, in its default settings, forward and backward and gives
the eager results (while compiling, "auto" takes the pure-PyTorch paths: the numba kernels it picks
in eager mode are opaque to the compiler)."""

import pytest
import torch
from torch.testing import assert_close

import neurotoken as nt
from neurotoken.mixers.base import memoryless

FAMILIES = {
    "snn": (lambda: nt.models.SNNClassifier(6, hidden=(8,), classes=3, T=3), lambda: torch.rand(2, 6)),
    "ssm": (lambda: nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1, classes=3,
                                                   neuron=nt.LIF(0.0, 0.3, "none", "binary")),
            lambda: torch.randn(2, 5, 2)),
    "lru": (lambda: nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1, classes=3, mixer="lru",
                                                   neuron=nt.LIF(0.0, 0.3, "none", "binary")),
            lambda: torch.randn(2, 5, 2)),
    "transformer": (lambda: nt.models.SpikingTransformer(5, d_model=8, heads=2, layers=1, T=2, neuron=nt.LIF()),
                    lambda: torch.randn(2, 4, 5)),
    "spikegpt": (lambda: nt.models.SpikingLM(d_model=8, layers=1, neuron=memoryless(0.1, "ternary"),
                                             mlp_neuron=memoryless(0.05, "multilevel")),
                 lambda: torch.randint(0, 256, (2, 5))),
    "pspikessm": (lambda: nt.models.SpikingLM(d_model=8, layers=1, backbone="pspikessm",
                                              neuron=nt.LIF(0.0, 0.3, "none", "binary")),
                  lambda: torch.randint(0, 256, (2, 5))),
}


def _forward_backward(model, x):
    y = model(x)
    y.square().mean().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _compiled_equals_eager(name, backend):
    make, inputs = FAMILIES[name]
    torch.manual_seed(0)
    model, x = make().eval(), inputs()
    y, grads = _forward_backward(model, x)
    model.zero_grad(set_to_none=True)
    y_c, grads_c = _forward_backward(torch.compile(model, backend=backend), x)
    assert_close(y_c, y)
    assert len(grads_c) == len(grads) > 0
    for g_c, g in zip(grads_c, grads):
        assert_close(g_c, g)


def test_compiled_ssm_classifier_equals_eager():
    _compiled_equals_eager("ssm", "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "ssm"])
def test_compiled_model_equals_eager(name):
    _compiled_equals_eager(name, "aot_eager")


@pytest.mark.slow
def test_inductor_compiles_a_spiking_model():
    _compiled_equals_eager("pspikessm", "inductor")
