"""Model files saved with neurotoken 0.1.0 (before the mixer contract), with reference outputs."""
import torch, json
from safetensors.torch import save_file
from neurotoken import zoo
torch.manual_seed(0)
specs = {
 "snn_classifier": ("SNNClassifier", {"in_features": 6, "hidden": [8], "classes": 3, "T": 4, "encoding": "rate", "spiking": True, "beta": 0.8}),
 "ssm_classifier_lru": ("SpikingSSMClassifier", {"in_features": 2, "d_model": 8, "d_state": 4, "layers": 1, "classes": 3, "spiking": True, "spike": "multilevel", "threshold": 0.5, "mixer": "lru"}),
 "ssm_classifier_selective": ("SpikingSSMClassifier", {"in_features": 2, "d_model": 8, "d_state": 4, "layers": 1, "classes": 3, "spiking": True, "spike": "binary", "threshold": 0.3, "mixer": "selective"}),
 "transformer": ("SpikingTransformer", {"in_features": 5, "d_model": 8, "heads": 2, "layers": 1, "classes": 4, "T": 3, "score": "and", "mask": "full", "spiking": True, "beta": 0.5, "threshold": 0.5}),
 "lm_spikegpt": ("SpikingLM", {"vocab": 256, "d_model": 8, "layers": 1, "backbone": "spikegpt", "spiking": True}),
 "lm_pspikessm": ("SpikingLM", {"vocab": 256, "d_model": 8, "layers": 1, "backbone": "pspikessm", "spiking": True, "spike": "binary", "threshold": 0.2}),
}
inputs = {
 "snn_classifier": torch.rand(3, 6),
 "ssm_classifier_lru": torch.randn(2, 5, 2),
 "ssm_classifier_selective": torch.randn(2, 5, 2),
 "transformer": torch.randn(2, 4, 5),
 "lm_spikegpt": torch.randint(0, 256, (2, 5)),
 "lm_pspikessm": torch.randint(0, 256, (2, 5)),
}
ref = {}
for name, (cls, kw) in specs.items():
    m = zoo.build(cls, kw).eval()
    zoo.save_model(f"tests/data/legacy/{name}.safetensors", cls, kw, m)
    x = inputs[name]
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    with torch.no_grad():
        y = m(x) if name != "snn_classifier" else m(x)
    ref[f"{name}.x"] = x
    ref[f"{name}.y"] = y
save_file({k: v.contiguous() for k, v in ref.items()}, "tests/data/legacy/reference_io.safetensors")
print("ok")
