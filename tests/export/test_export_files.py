"""Exporting saved models: inputs are never overwritten, outputs only with force, every model class
either exports or is refused in one line naming the layer without a NIR node."""

import os
import re

import pytest
import torch
from typer.testing import CliRunner

nir = pytest.importorskip("nir", reason="nir not installed; pip install --no-deps nir==1.0.8 nirtorch==2.6")

from neurotoken.cli import app  # noqa: E402
from neurotoken.export import export_model, from_nir  # noqa: E402
from neurotoken.zoo import MODELS, build, load_model, save_model  # noqa: E402

SNN = {"in_features": 4, "hidden": [5], "classes": 3, "T": 2, "encoding": "rate", "reset": "zero"}
TINY = {  # the smallest model of every registered class
    "SNNClassifier": SNN,
    "SpikingSSMClassifier": {"in_features": 2, "d_model": 8, "d_state": 4, "layers": 1, "classes": 3},
    "SpikingTransformer": {"in_features": 5, "d_model": 8, "heads": 2, "layers": 1, "classes": 3},
    "SpikingLM": {"vocab": 16, "d_model": 8, "layers": 1},
}
# (class, spiking) -> the layer the refusal must name, as "'qualified.name' (Class)"; None: exports
REFUSED = {
    ("SNNClassifier", True): None,
    ("SNNClassifier", False): "'body.1' (ReLU)",
    ("SpikingSSMClassifier", True): "'blocks.0' (",
    ("SpikingSSMClassifier", False): "'blocks.0' (",
    ("SpikingTransformer", True): "'blocks.0' (",
    ("SpikingTransformer", False): "'blocks.0' (",
    ("SpikingLM", True): "'embed' (Embedding)",
    ("SpikingLM", False): "'embed' (Embedding)",
}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    return save_model(tmp_path / "m.safetensors", "SNNClassifier", SNN, build("SNNClassifier", SNN))


def test_every_registered_model_class_has_a_tiny_config():
    assert set(TINY) == set(MODELS.names())


@pytest.mark.parametrize(("name", "spiking"), sorted(REFUSED))
def test_every_saved_model_exports_or_names_the_layer_without_a_nir_node(tmp_path, name, spiking):
    torch.manual_seed(0)
    kwargs = {**TINY[name], "spiking": spiking}
    path = save_model(tmp_path / "m.safetensors", name, kwargs, build(name, kwargs))
    layer = REFUSED[(name, spiking)]
    if layer is None:
        graph = nir.read(export_model(path, tmp_path / "m.nir"))
        model, _ = load_model(path)
        s = torch.bernoulli(torch.full((SNN["T"], 3, SNN["in_features"]), 0.5))
        torch.testing.assert_close(from_nir(graph)(s), model.readout(model.body(s)))
        return
    with pytest.raises(ValueError, match=f"cannot export {name}.* to NIR: layer {re.escape(layer)}") as info:
        export_model(path, tmp_path / "m.nir")
    assert "\n" not in str(info.value) and "has no NIR node" in str(info.value)
    assert not (tmp_path / "m.nir").exists()
    result = invoke("export", path)
    assert result.exit_code == 1 and f"layer {layer}" in result.output


def test_export_never_overwrites_its_input(tmp_path, model_file):
    before = model_file.read_bytes()
    for out in (model_file, tmp_path / "." / "m.safetensors"):
        with pytest.raises(ValueError, match="refusing to overwrite the input .*m.safetensors"):
            export_model(model_file, out, force=True)
        result = invoke("export", model_file, "--out", out, "--force")
        assert result.exit_code == 1 and "refusing to overwrite the input" in result.output
    os.link(model_file, tmp_path / "alias.safetensors")  # another name of the same file
    with pytest.raises(ValueError, match="refusing to overwrite the input"):
        export_model(model_file, tmp_path / "alias.safetensors", force=True)
    assert model_file.read_bytes() == before


def test_export_refuses_an_existing_file_without_force(tmp_path, model_file):
    results = tmp_path / "results.json"
    results.write_text('{"rows": []}')
    result = invoke("export", model_file, "--out", results)
    assert result.exit_code == 1 and "already exists" in result.output and "--force" in result.output
    assert results.read_text() == '{"rows": []}'
    with pytest.raises(FileExistsError, match="results.json' already exists"):
        export_model(model_file, results)
    assert invoke("export", model_file).exit_code == 0  # default output m.nir
    default = model_file.with_suffix(".nir")
    first = default.read_bytes()
    again = invoke("export", model_file)
    assert again.exit_code == 1 and "already exists" in again.output
    assert invoke("export", model_file, "--out", results, "--force").exit_code == 0
    assert nir.read(results).nodes.keys() == nir.read(default).nodes.keys()
    assert default.read_bytes() == first


def test_export_is_atomic_and_leaves_the_old_file_when_it_fails(tmp_path, model_file):
    out = tmp_path / "out.nir"
    out.write_bytes(b"previous export")
    lm = {"vocab": 16, "d_model": 8, "layers": 1}
    lm_file = save_model(tmp_path / "lm.safetensors", "SpikingLM", lm, build("SpikingLM", lm))
    with pytest.raises(ValueError, match="no NIR node"):
        export_model(lm_file, out, force=True)
    assert out.read_bytes() == b"previous export"
    export_model(model_file, out, force=True)
    assert nir.read(out).metadata["T"] == SNN["T"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.safetensors", "m.safetensors", "out.nir"]


def test_export_checks_its_arguments(tmp_path, model_file):
    with pytest.raises(ValueError, match="is a directory"):
        export_model(model_file, tmp_path)
    with pytest.raises(TypeError, match="path must be a file path"):
        export_model(model_file, 3)
    with pytest.raises(TypeError, match="model must be an nn.Module or a model file path"):
        export_model(3, tmp_path / "x.nir")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_model(tmp_path / "none.safetensors", tmp_path / "x.nir")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="sample is required"):
        export_model(seq, tmp_path / "x.nir")
