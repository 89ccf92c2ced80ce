import pytest
import torch
from safetensors.torch import save_file

from neurotoken.zoo import MODELS, load_model, save_model

KWARGS = {"in_features": 8, "hidden": [6], "classes": 3, "T": 2, "encoding": "rate", "reset": "zero"}


def test_saved_model_rebuilds_with_equal_outputs(tmp_path):
    torch.manual_seed(0)
    model = MODELS.get("SNNClassifier")(**KWARGS).eval()
    path = save_model(tmp_path / "sub" / "m.safetensors", "SNNClassifier", KWARGS, model)
    loaded, spec = load_model(path)
    x = torch.rand(4, 8)
    torch.manual_seed(1)
    expected = model(x)
    torch.manual_seed(1)
    assert torch.equal(loaded(x), expected)
    assert spec == {"class": "SNNClassifier", "kwargs": KWARGS}
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_load_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, bare)
    with pytest.raises(ValueError, match="no neurotoken model spec"):
        load_model(bare)
    model = MODELS.get("SNNClassifier")(**KWARGS)
    wrong = save_model(tmp_path / "wrong.safetensors", "SNNClassifier", {**KWARGS, "hidden": [7]}, model)
    with pytest.raises(ValueError, match="weights do not fit SNNClassifier"):
        load_model(wrong)
    unknown = save_model(tmp_path / "unknown.safetensors", "Nope", {}, model)
    with pytest.raises(ValueError, match="unknown model class 'Nope'"):
        load_model(unknown)
