"""Model files saved before the mixer contract (tests/data/legacy, by make_legacy.py) still load and
give the outputs they gave then; the former keyword arguments still build the same models."""

import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

import neurotoken as nt
from neurotoken.mixers.base import memoryless

LEGACY = Path(__file__).parent / "data" / "legacy"
NAMES = ["snn_classifier", "ssm_classifier_lru", "ssm_classifier_selective", "transformer", "lm_spikegpt",
         "lm_pspikessm"]


@pytest.mark.parametrize("name", NAMES)
def test_legacy_model_file_loads_and_reproduces_its_outputs(name):
    ref = load_file(LEGACY / "reference_io.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # their kwargs predate neuron=
        model, _ = nt.zoo.load_model(LEGACY / f"{name}.safetensors")
    torch.manual_seed(1)  # the rate encoder of the SNN classifier draws from the global generator
    with torch.no_grad():
        y = model(ref[f"{name}.x"])
    assert_close(y, ref[f"{name}.y"])


def test_former_block_parameter_names_load_into_residual():
    torch.manual_seed(0)
    mixer, mlp = nt.mixers.SelectiveSSM(4, 2), torch.nn.Linear(4, 4)
    block = nt.mixers.Residual(4, [mixer, mlp])
    old = {k.replace("norms.0.", "norm1.").replace("sublayers.0.", "mixer.").replace("norms.1.", "norm2.")
           .replace("sublayers.1.", "mlp."): v + 1 for k, v in block.state_dict().items()}
    assert "norm1.weight" in old and "mixer.log_A" in old and "mlp.weight" in old
    fresh = nt.mixers.Residual(4, [nt.mixers.SelectiveSSM(4, 2), torch.nn.Linear(4, 4)])
    fresh.load_state_dict(old)
    assert_close(fresh.sublayers[0].log_A, mixer.log_A + 1)
    assert_close(fresh.norms[1].bias, block.norms[1].bias + 1)


def test_ssm_block_is_a_deprecated_residual():
    with pytest.warns(DeprecationWarning, match="Residual"):
        block = nt.models.SSMBlock(4, nt.mixers.SelectiveSSM(4, 2), torch.nn.Linear(4, 4), dropout=0.1)
    assert isinstance(block, nt.mixers.Residual) and block.drop.p == 0.1


@pytest.mark.parametrize("cls, legacy, new", [
    (nt.models.SpikingSSMClassifier, {"spike": "binary", "threshold": 0.3},
     {"neuron": nt.LIF(0.0, 0.3, "none", "binary")}),
    (nt.models.SpikingSSMClassifier, {"mixer": "lru", "spike": "ternary", "threshold": 0.3, "surrogate": "sigmoid"},
     {"mixer": "lru", "neuron": nt.LIF(0.0, 0.3, "none", "ternary", "sigmoid"),
      "mlp_neuron": nt.LIF(0.0, 0.3, "none", "ternary")}),
    (nt.models.SpikingSSMClassifier, {"spike": "binary", "reset": "subtract", "beta": 0.5},
     {"neuron": nt.LIF(0.5, 1.0, "subtract", "binary"), "mlp_neuron": nt.LIF(0.0, 1.0, "none", "binary")}),
    (nt.models.SpikingTransformer, {"beta": 0.5, "threshold": 0.4}, {"neuron": nt.LIF(0.5, 0.4)}),
    (nt.models.SpikingLM, {"threshold": 0.2, "hidden_spike": "binary"},
     {"neuron": memoryless(0.2, "ternary", learn_threshold=True),
      "mlp_neuron": memoryless(0.05, "binary", learn_threshold=True)}),
    (nt.models.SpikingLM, {"backbone": "pspikessm", "spike": "binary", "threshold": 0.2},
     {"backbone": "pspikessm", "neuron": nt.LIF(0.0, 0.2, "none", "binary")}),
], ids=["ssm", "lru", "ssm-reset", "transformer", "spikegpt", "pspikessm"])
def test_former_neuron_keywords_warn_and_build_the_same_model(cls, legacy, new):
    small = {"d_model": 8, "layers": 1}
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="neuron="):
        old = cls(**small, **legacy).eval()
    torch.manual_seed(0)
    model = cls(**small, **new).eval()
    x = torch.randint(0, 256, (2, 5)) if cls is nt.models.SpikingLM else torch.randn(2, 5, old.in_features)
    assert_close(model(x), old(x))


def test_a_model_with_a_neuron_config_saves_and_loads(tmp_path):
    lif = nt.LIF(0.0, 0.3, "none", "ternary", learn_threshold=True)
    kwargs = {"in_features": 2, "d_model": 8, "d_state": 4, "layers": 1, "classes": 3,
              "neuron": lif.config()}
    torch.manual_seed(0)
    model = nt.models.SpikingSSMClassifier(**kwargs).eval()
    with torch.no_grad():
        model.blocks[0].sublayers[0].fire.neuron.threshold.fill_(0.2)  # a trained threshold travels as a weight
    path = nt.zoo.save_model(tmp_path / "m.safetensors", "SpikingSSMClassifier", kwargs, model)
    loaded, spec = nt.zoo.load_model(path)
    assert spec["kwargs"]["neuron"]["spike"] == lif.config()["spike"]
    x = torch.randn(2, 5, 2)
    assert_close(loaded(x), model(x))

