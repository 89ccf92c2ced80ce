"""Exporting saved models: inputs are never overwritten, outputs only with force, writes are atomic.
(Every registered model class exporting or being refused: tests/test_zoo.py.)"""

import os

import pytest
import torch
from typer.testing import CliRunner

nir = pytest.importorskip("nir", reason="nir not installed; pip install --no-deps nir==1.0.8 nirtorch==2.6")

from neurotoken.cli import app  # noqa: E402
from neurotoken.export import export_model  # noqa: E402
from neurotoken.zoo import build, save_model  # noqa: E402

SNN = {"in_features": 4, "hidden": [5], "classes": 3, "T": 2, "encoding": "rate", "reset": "zero"}
def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    return save_model(tmp_path / "m.safetensors", "SNNClassifier", SNN, build("SNNClassifier", SNN))


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
