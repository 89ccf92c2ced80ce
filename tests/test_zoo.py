import json
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from neurotoken.zoo import CHECKSUM, KEY, MODELS, _digest, load_model, save_model

LEGACY = Path(__file__).parent / "data" / "legacy"

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
    wrong = write(tmp_path / "wrong.safetensors", model.state_dict(), spec("SNNClassifier", {**KWARGS, "hidden": [7]}))
    with pytest.raises(ValueError, match="weights do not fit SNNClassifier.*'body.0.linear.weight' has shape "
                                         "\\(6, 8\\) in the weights, \\(7, 8\\) in the spec"):
        load_model(wrong)
    unknown = write(tmp_path / "unknown.safetensors", model.state_dict(), spec("Nope", {}))
    with pytest.raises(ValueError, match="field 'class': unknown model class 'Nope'"):
        load_model(unknown)
    with pytest.raises(ValueError, match="is a directory; expected a model file"):
        load_model(tmp_path)


def spec(name: str, kwargs, **extra) -> dict[str, str]:
    """Metadata as a file crafted by hand (or saved before the checksum) carries it."""
    return {KEY: json.dumps({"class": name, "kwargs": kwargs}), **extra}


def write(path, state: dict, metadata: dict[str, str]):
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata=metadata)
    return path


def saved(tmp_path, name="m.safetensors"):
    torch.manual_seed(0)
    return save_model(tmp_path / name, "SNNClassifier", KWARGS, MODELS.get("SNNClassifier")(**KWARGS))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_in_the_weights_is_refused(tmp_path, where, bit):
    path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # safetensors: header length, header, tensor bytes
    data[start + int(where * (len(data) - start))] ^= 1 << bit
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"'{path}' is corrupt: .*sha256"):
        load_model(path)


def test_an_edited_spec_is_refused_by_the_checksum(tmp_path):
    path = saved(tmp_path)
    with safe_open(path, "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    edited = json.loads(meta[KEY])
    edited["kwargs"]["T"] = 5
    write(path, state, {**meta, KEY: json.dumps(edited)})
    with pytest.raises(ValueError, match="corrupt"):
        load_model(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    model = MODELS.get("SNNClassifier")(**KWARGS)
    with torch.no_grad():
        model.readout.weight[1, 2] = bad
    path = save_model(tmp_path / "m.safetensors", "SNNClassifier", KWARGS, model)
    with pytest.raises(ValueError, match="tensor 'readout.weight' holds NaN or inf"):
        load_model(path)


def test_a_crafted_size_is_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    state = MODELS.get("SNNClassifier")(**KWARGS).state_dict()
    huge = {**KWARGS, "hidden": [400000, 400000]}
    built = []
    monkeypatch.setattr("neurotoken.zoo.build", lambda name, kwargs: built.append(
        torch.empty(0).device.type) or MODELS.get(name)(**kwargs))
    for meta in (spec("SNNClassifier", huge), spec("SNNClassifier", huge, **{CHECKSUM: _digest(spec(
            "SNNClassifier", huge)[KEY], state)})):
        path = write(tmp_path / "huge.safetensors", state, meta)
        with pytest.raises(ValueError, match="'body.0.linear.weight' has shape \\(6, 8\\) in the weights, "
                                             "\\(400000, 8\\) in the spec"):
            load_model(path)
    assert built == ["meta", "meta"]  # only ever built on the meta device


def test_a_crafted_layer_count_fails_fast(tmp_path):
    state = MODELS.get("SNNClassifier")(**KWARGS).state_dict()
    path = write(tmp_path / "deep.safetensors", state, spec("SNNClassifier", {**KWARGS, "hidden": [6] * 10**6}))
    with pytest.raises(ValueError, match="field 'kwargs' does not build a SNNClassifier: it creates more than "
                                         "72 tensors, the weights hold 4"):
        load_model(path)


@pytest.mark.parametrize(("metadata", "message"), [
    ("{not json", "metadata 'neurotoken_model' is not valid JSON"),
    ("[1, 2]", "must be a JSON object with fields 'class' and 'kwargs'"),
    ('{"kwargs": {}}', "the model spec has no field 'class'"),
    ('{"class": "SNNClassifier"}', "the model spec has no field 'kwargs'"),
    ('{"class": 3, "kwargs": {}}', "field 'class' must be a registered model class name, got 3"),
    ('{"class": "SNNClassifier", "kwargs": [8]}', "field 'kwargs' must be a JSON object, got \\[8\\]"),
    ('{"class": "SNNClassifier", "kwargs": {"in_features": 8, "bogus": 1}}',
     "field 'kwargs' does not build a SNNClassifier: .*unexpected keyword argument 'bogus'"),
    ('{"class": "SNNClassifier", "kwargs": {"in_features": 8, "hidden": [-5]}}',
     "field 'kwargs' does not build a SNNClassifier"),
    ('{"class": "SNNClassifier", "kwargs": {"hidden": [6]}}', "field 'kwargs' does not build a SNNClassifier"),
])
def test_metadata_errors_are_one_line_naming_the_field(tmp_path, metadata, message):
    path = write(tmp_path / "m.safetensors", MODELS.get("SNNClassifier")(**KWARGS).state_dict(), {KEY: metadata})
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_save_refuses_what_cannot_be_rebuilt(tmp_path):
    model = MODELS.get("SNNClassifier")(**KWARGS)
    with pytest.raises(ValueError, match="name must be a registered model class .*got 'Nope'"):
        save_model(tmp_path / "m.safetensors", "Nope", KWARGS, model)
    with pytest.raises(TypeError, match="model must be a SpikingLM, the class name gives, got SNNClassifier"):
        save_model(tmp_path / "m.safetensors", "SpikingLM", KWARGS, model)
    with pytest.raises(TypeError, match="kwargs\\['surrogate'\\] cannot be saved as JSON"):
        save_model(tmp_path / "m.safetensors", "SNNClassifier", {**KWARGS, "surrogate": object()}, model)
    with pytest.raises(TypeError, match="kwargs\\['beta'\\] cannot be saved as JSON"):
        save_model(tmp_path / "m.safetensors", "SNNClassifier", {**KWARGS, "beta": float("nan")}, model)
    with pytest.raises(TypeError, match="kwargs must be a dict"):
        save_model(tmp_path / "m.safetensors", "SNNClassifier", [8], model)
    with pytest.raises(ValueError, match="kwargs do not rebuild this model.*'body.0.linear.weight' has shape "
                                         "\\(6, 8\\) in the weights, \\(7, 8\\) in the spec"):
        save_model(tmp_path / "m.safetensors", "SNNClassifier", {**KWARGS, "hidden": [7]}, model)
    with pytest.raises(ValueError, match="kwargs do not rebuild a SNNClassifier: .*unexpected keyword"):
        save_model(tmp_path / "m.safetensors", "SNNClassifier", {**KWARGS, "bogus": 1}, model)
    assert list(tmp_path.iterdir()) == []  # nothing written
    save_model(tmp_path / "m.safetensors", "SNNClassifier", {**KWARGS, "hidden": (6,)}, model)  # a tuple is JSON


TINY = {  # a small model of every registered class
    "SNNClassifier": KWARGS,
    "SpikingSSMClassifier": {"in_features": 2, "d_model": 8, "d_state": 4, "layers": 1, "classes": 3},
    "SpikingTransformer": {"in_features": 5, "d_model": 8, "heads": 2, "layers": 1, "classes": 3},
    "SpikingLM": {"vocab": 16, "d_model": 8, "layers": 1},
    "SpikingCNN": {"in_channels": 1, "classes": 3, "channels": [4], "T": 2},
    "SpikingSegmenter": {"in_channels": 3, "classes": 3, "channels": [4], "T": 2},
    "KeywordSpotter": {"in_features": 6, "classes": 3, "hidden": [5], "resonators": 2},
    "SpikingBERT": {"vocab": 16, "d_model": 8, "heads": 2, "layers": 1, "max_len": 8, "classes": 3, "T": 2},
}
# (class, spiking) -> the layer NIR export must name, "'qualified.name' (Class"; None: it exports
NIR_REFUSES = {
    ("SNNClassifier", True): None,
    ("SNNClassifier", False): "'body.1' (ReLU)",
    ("SpikingSSMClassifier", True): "'blocks.0' (",
    ("SpikingSSMClassifier", False): "'blocks.0' (",
    ("SpikingTransformer", True): "'blocks.0' (",
    ("SpikingTransformer", False): "'blocks.0' (",
    ("SpikingLM", True): "'embed' (Embedding)",
    ("SpikingLM", False): "'embed' (Embedding)",
    ("SpikingCNN", True): "'<model>' (SpikingCNN)", ("SpikingCNN", False): "'<model>' (SpikingCNN)",
    ("SpikingSegmenter", True): "'head' (Conv2d)", ("SpikingSegmenter", False): "'head' (Conv2d)",
    ("KeywordSpotter", True): "'norm' (TimeBatchNorm)", ("KeywordSpotter", False): "'norm' (TimeBatchNorm)",
    ("SpikingBERT", True): "'embed' (Embedding)", ("SpikingBERT", False): "'embed' (Embedding)",
}


def test_every_registered_model_class_is_covered():
    assert set(TINY) == set(MODELS.names()) == {name for name, _ in NIR_REFUSES}


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_registered_model_builds_on_the_meta_device(name):
    with torch.device("meta"):
        model = MODELS.get(name)(**TINY[name])
    assert {t.device.type for t in model.state_dict().values()} == {"meta"}


@pytest.mark.parametrize(("name", "spiking"), sorted(NIR_REFUSES))
def test_every_saved_model_loads_and_exports_or_names_the_layer_without_a_nir_node(tmp_path, name, spiking):
    nir = pytest.importorskip("nir", reason="nir not installed")
    from typer.testing import CliRunner

    from neurotoken.cli import app
    from neurotoken.export import export_model, from_nir

    torch.manual_seed(0)
    kwargs = {**TINY[name], "spiking": spiking}
    model = MODELS.get(name)(**kwargs).eval()
    path = save_model(tmp_path / "m.safetensors", name, kwargs, model)
    loaded, _ = load_model(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    layer = NIR_REFUSES[(name, spiking)]
    if layer is None:
        graph = nir.read(export_model(path, tmp_path / "m.nir"))
        s = torch.bernoulli(torch.full((KWARGS["T"], 3, KWARGS["in_features"]), 0.5))
        torch.testing.assert_close(from_nir(graph)(s), model.readout(model.body(s)))
        return
    with pytest.raises(ValueError, match=f"cannot export {name}.* to NIR: layer {re.escape(layer)}") as info:
        export_model(path, tmp_path / "m.nir")
    assert "\n" not in str(info.value) and "has no NIR node" in str(info.value)
    result = CliRunner().invoke(app, ["export", str(path)])
    assert result.exit_code == 1 and f"layer {layer}" in result.output
    assert not (tmp_path / "m.nir").exists()


@pytest.mark.parametrize("legacy", sorted(LEGACY.glob("*.safetensors")), ids=lambda p: p.stem)
def test_files_saved_before_the_checksum_still_load(legacy):
    with safe_open(legacy, "pt") as f:
        if KEY not in (f.metadata() or {}):
            pytest.skip("reference data, not a model")
        assert CHECKSUM not in f.metadata()
    model, spec_ = load_model(legacy)
    assert isinstance(model, MODELS.get(spec_["class"]))


def test_an_npe_in_kwargs_is_saved_as_its_config(tmp_path):
    from neurotoken import LIF

    kwargs = {**TINY["SpikingTransformer"], "T": 2, "neuron": LIF(beta=0.5, threshold=0.7, reset="zero")}
    torch.manual_seed(0)
    model = MODELS.get("SpikingTransformer")(**kwargs).eval()
    loaded, spec_ = load_model(save_model(tmp_path / "m.safetensors", "SpikingTransformer", kwargs, model))
    assert spec_["kwargs"]["neuron"] == kwargs["neuron"].config()
    x = torch.randn(2, 5, 5)
    assert torch.equal(loaded(x), model(x))


def test_a_training_checkpoint_is_named_as_such(tmp_path):
    from neurotoken.learning.checkpoint import save_checkpoint

    record = save_checkpoint(tmp_path, 3, MODELS.get("SNNClassifier")(**KWARGS))
    with pytest.raises(ValueError, match="is a training checkpoint, not a model file: it holds no neurotoken "
                                         "model spec"):
        load_model(record.with_suffix(".safetensors"))
    with pytest.raises(TypeError, match="path must be a file path"):
        load_model(3)
