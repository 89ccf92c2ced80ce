"""Device-cleanliness: every path runs forward and backward on ``meta`` and, where one exists, on CUDA.

``meta`` tensors hold no values, so any host sync (``.item()``, ``bool(t)``) raises; a dispatch mode
also records every op that reads or makes a CPU tensor of rank >= 1 (or draws from a generator of
another device) while the path runs: nothing may be created on the CPU behind the user's back.
Paths that need values by design (counting spikes, a trainer logging its loss) run on CUDA only.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import neurotoken as nt
from neurotoken.encoding import ENCODERS
from neurotoken.mixers import Mixer
from neurotoken.mixers.base import memoryless
from neurotoken.scan import METHODS, linear_scan

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
D = 8


class CpuWatch(TorchDispatchMode):
    """Records ops touching a CPU tensor of rank >= 1, or a generator on another device than ``device``."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.found = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.dim() > 0:
                self.found.append(f"{func}: a CPU tensor of shape {tuple(t.shape)}")
            elif isinstance(t, torch.Generator) and t.device.type != self.device.type:
                self.found.append(f"{func}: a generator on {t.device}")
        return out


def clean(device, prepare):
    """Run ``prepare(device)()`` (built outside the watch, then run forward and backward inside it) and
    require that the run touched nothing on the CPU."""
    device = torch.device(device)
    run = prepare(device)
    with CpuWatch(device) as watch:
        out = run()
    assert not watch.found, "; ".join(dict.fromkeys(watch.found))
    return out


def forward_backward(make, shape, ids=False):
    """For ``clean``: ``make()`` on the device and x of ``shape``, then a run forward and backward."""

    def prepare(device):
        torch.manual_seed(0)
        module = make().to(device)
        x = (torch.randint(0, 256, shape, device=device) if ids else
             torch.rand(shape, device=device, requires_grad=True))

        def run():
            y = module(x)
            out = y[0] if isinstance(y, tuple) else y
            if out.requires_grad:  # some encoders (unary, positional, ...) pass no gradient to x
                out.float().sum().backward()
            return y

        return run

    return prepare


def owner(who, problem):
    return pytest.mark.xfail(strict=True, reason=f"{who}: {problem}")


VALUES = pytest.mark.skip(reason="reads values by design (a fixed-point iteration, a boundary check; docs/syncs.md): "
                                  "CUDA only")

CUDA_KNOWN: dict = {}  # CPU tensors on paths meta cannot reach (they sync by design), found by reading the code

MIXERS = {  # every exported Mixer, default (stochastic) neurons included
    "SoftmaxAttention": (lambda: nt.mixers.SoftmaxAttention(D, heads=2), None),
    "SoftmaxAttention-full": (lambda: nt.mixers.SoftmaxAttention(D, heads=2, mask="full"), None),
    "SpikingAttention": (lambda: nt.mixers.SpikingAttention(D, heads=2, T=3, mask="causal"), None),
    "SpikingAttention-stochastic": (lambda: nt.mixers.SpikingAttention(D, heads=2, T=3, score="stochastic"), None),
    "LinearAttention": (lambda: nt.mixers.LinearAttention(D, heads=2), None),
    "SelectiveSSM": (lambda: nt.mixers.SelectiveSSM(D, d_state=4), None),
    "SpikingSSM": (lambda: nt.mixers.SpikingSSM(D, d_state=4), None),
    "SpikingSSM-lif": (lambda: nt.mixers.SpikingSSM(D, d_state=4, neuron=nt.LIF(0.9, 0.3, "subtract")), "values"),
    "SpikingLRU": (lambda: nt.mixers.SpikingLRU(D, d_state=4), None),
    "HiPPOSSM": (lambda: nt.mixers.HiPPOSSM(D, d_state=4), None),
    "RWKVTimeMix": (lambda: nt.mixers.RWKVTimeMix(D, neuron=memoryless(0.1, "ternary")), None),
    "RWKVChannelMix": (lambda: nt.mixers.RWKVChannelMix(D, 2, neuron=memoryless(0.05, "multilevel")), None),
    "RWKVBlock": (lambda: nt.mixers.RWKVBlock(D, hidden_ratio=2), None),
    "SpikeGPTBlock": (lambda: nt.mixers.SpikeGPTBlock(D, hidden_ratio=2), None),
    "Residual": (lambda: nt.mixers.Residual(D, [nt.mixers.LinearAttention(D, 2), torch.nn.Linear(D, D)]), None),
    "SpikingOutput": (lambda: nt.mixers.SpikingOutput(nt.mixers.SelectiveSSM(D, 4), nt.LIF(0.5, 0.5, reset="zero")),
                      None),
    "MambaBlock": (lambda: nt.mixers.MambaBlock(D, d_state=4), None),
    "SpikingMamba": (lambda: nt.mixers.SpikingMamba(D, d_state=4), None),
}

MODELS = {  # every model family and variant in nt.models
    **{f"snn-{e}": (lambda e=e: nt.models.SNNClassifier(6, (8,), 3, T=3, encoding=e), (2, 6), None)
       for e in ENCODERS.names()},
    "snn-twin": (lambda: nt.models.SNNClassifier(6, (8,), 3, spiking=False), (2, 6), None),
    **{f"ssm-{m}": (lambda m=m: nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1, classes=3, mixer=m),
                    (2, 5, 2), None) for m in nt.models.SSM_MIXERS},
    "ssm-twin": (lambda: nt.models.SpikingSSMClassifier(2, d_model=8, d_state=4, layers=1, classes=3, spiking=False),
                 (2, 5, 2), None),
    "transformer": (lambda: nt.models.SpikingTransformer(5, d_model=8, heads=2, layers=1, T=2), (2, 4, 5), None),
    "transformer-twin": (lambda: nt.models.SpikingTransformer(5, d_model=8, heads=2, layers=1, spiking=False),
                         (2, 4, 5), None),
    **{f"lm-{b}": (lambda b=b: nt.models.SpikingLM(d_model=8, layers=1, backbone=b), (2, 5),
                   None) for b in nt.models.LM_BACKBONES},
    "bert": (lambda: nt.models.SpikingBERT(d_model=8, heads=2, layers=1, max_len=8, T=2), (2, 5), None),
    "bert-twin": (lambda: nt.models.SpikingBERT(d_model=8, heads=2, layers=1, max_len=8, spiking=False), (2, 5), None),
    "cnn": (lambda: nt.models.SpikingCNN(3, 4, (4, 8), T=2), (2, 6, 6, 3), None),
    "cnn-sew-tdbn": (lambda: nt.models.SpikingCNN(3, 4, (4,), T=2, block="sew", norm="tdbn"), (2, 6, 6, 3), None),
    "cnn-ms": (lambda: nt.models.SpikingCNN(3, 4, (4,), T=2, block="ms"), (2, 6, 6, 3), None),
    "cnn-twin": (lambda: nt.models.SpikingCNN(3, 4, (4, 8), spiking=False), (2, 6, 6, 3), None),
    "segmenter": (lambda: nt.models.SpikingSegmenter(3, 4, (4, 8), T=2), (2, 8, 8, 3), None),
    "segmenter-twin": (lambda: nt.models.SpikingSegmenter(3, 4, (4, 8), spiking=False), (2, 8, 8, 3), None),
    "keywords": (lambda: nt.models.KeywordSpotter(5, 3, (8,), resonators=2), (2, 6, 5), None),
    "keywords-twin": (lambda: nt.models.KeywordSpotter(5, 3, (8,), spiking=False), (2, 6, 5), None),
}

NEURONS = {
    **{f"lif-{r}-{s}-{b}": (lambda r=r, s=s, b=b: nt.LIF(0.9, 1.0, r, s, backend=b))
       for r in ("subtract", "zero", "none") for s in ("binary", "bernoulli", "ternary")
       for b in ("auto", "sequential")},
    "lif-scan": lambda: nt.LIF(0.9, 1.0, "none", backend="scan"),
    "resonate-fire": lambda: nt.ResonateFire(),
}


def per_device(table, sync_of):
    """(name, device) params; a path that reads values by design runs on CUDA only."""
    params = []
    for name, entry in table.items():
        sync = sync_of(entry)
        marks = [] if sync is None else [VALUES]
        params.append(pytest.param(name, "meta", marks=marks, id=f"{name}-meta"))
        params.append(pytest.param(name, "cuda", marks=[CUDA, *CUDA_KNOWN.get(name, [])], id=f"{name}-cuda"))
    return params


def test_every_exported_mixer_is_covered():
    exported = {c.__name__ for c in vars(nt.mixers).values() if isinstance(c, type) and issubclass(c, Mixer)}
    assert exported - {"Mixer"} <= {name.split("-")[0] for name in MIXERS}


@pytest.mark.parametrize("name, device", per_device(MIXERS, lambda e: e[1]))
def test_mixers_run_forward_and_backward_on_the_inputs_device(name, device):
    y = clean(device, forward_backward(MIXERS[name][0], (2, 5, D)))
    assert y.device.type == device


@pytest.mark.parametrize("name, device", per_device(MODELS, lambda e: e[2]))
def test_models_run_forward_and_backward_on_the_inputs_device(name, device):
    make, shape, _ = MODELS[name]
    y = clean(device, forward_backward(make, shape, ids=name.startswith(("lm-", "bert"))))
    assert y.device.type == device


@pytest.mark.parametrize("name, device", per_device(NEURONS, lambda e: None))
def test_neurons_run_forward_and_backward_on_the_inputs_device(name, device):
    s = clean(device, forward_backward(NEURONS[name], (4, 2, D)))
    assert s.device.type == device


@pytest.mark.parametrize("name, device", per_device(dict.fromkeys(ENCODERS.names()), lambda e: None))
def test_encoders_run_on_the_inputs_device(name, device):
    s = clean(device, forward_backward(lambda: _Encode(name), (2, 5)))
    assert s.shape == (4, 2, 5) and s.device.type == device


class _Encode(torch.nn.Module):
    def __init__(self, name):
        super().__init__()
        self.name = name

    def forward(self, x):
        return nt.encoding.encode(self.name, x, 4)


@pytest.mark.parametrize("decoder, device", [
    pytest.param(d, dev, marks=([VALUES] if d == "decode_positional" and dev == "meta" else []) +
                 ([CUDA] if dev == "cuda" else []))
    for d in ("decode_rate", "decode_positional", "decode_first_spike", "decode_multilevel") for dev in ("meta", "cuda")])
def test_decoders_run_on_the_inputs_device(decoder, device):
    s = torch.zeros(4, 2, 5, device=device)
    out = clean(device, lambda dev: lambda: getattr(nt.encoding, decoder)(s))
    assert out.device.type == device


@pytest.mark.parametrize("method, device", [pytest.param(m, d, marks=[CUDA] if d == "cuda" else [])
                                            for m in METHODS.names() for d in ("meta", "cuda")])
def test_every_scan_method_runs_on_the_inputs_device(method, device):
    def prepare(dev):  # gains constant along the scanned axis, so "fft" applies too; 600 channels > 512
        a = torch.rand(1, 2, 600, device=dev, requires_grad=True)
        b = torch.rand(7, 2, 600, device=dev, requires_grad=True)
        h0 = torch.rand(2, 600, device=dev)

        def run():
            h = linear_scan(a, b, h0=h0, dim=0, method=method)
            h.sum().backward()
            return h

        return run

    assert clean(device, prepare).device.type == device


@pytest.mark.parametrize("spike, device", [pytest.param(s, d, marks=[CUDA] if d == "cuda" else [])
                                           for s in ("binary", "bernoulli", "ternary", "multilevel")
                                           for d in ("meta", "cuda")])
def test_spike_functions_run_on_the_inputs_device(spike, device):
    def prepare(dev):
        h = torch.rand(3, 5, device=dev, requires_grad=True)

        def run():
            s = getattr(nt.spikes, spike)(h)
            s.sum().backward()
            return s

        return run

    assert clean(device, prepare).device.type == device


@pytest.mark.parametrize("device", [
    "meta", pytest.param("cuda", marks=CUDA)])
def test_a_generator_on_another_device_is_refused_naming_it(device):
    with pytest.raises(ValueError, match="generator"):
        nt.spikes.bernoulli(torch.rand(3, 5, device=device), generator=torch.Generator())


def test_conv_fan_out_follows_the_weights_device():
    conv = torch.nn.Conv2d(2, 3, 3).to("meta")
    out = clean("meta", lambda dev: lambda: nt.accounting.counter.conv_fan_out(conv, 5, 5))
    assert out.device.type == "meta"


def test_zeroth_order_perturbation_follows_the_parameters_device():
    from neurotoken.learning.zeroth_order import _perturb

    theta = torch.zeros(3, 4, device="meta")
    clean("meta", lambda dev: lambda: _perturb([theta], seed=1, scale=0.1))


@CUDA
def test_zeroth_order_training_on_cuda():
    from neurotoken.learning.zeroth_order import ZOConfig, fit_zeroth_order

    model = nt.models.SNNClassifier(6, (8,), 2, T=3, encoding="bernoulli").cuda()
    x, y = torch.rand(16, 6, device="cuda"), torch.randint(0, 2, (16,), device="cuda")
    assert len(fit_zeroth_order(model, x, y, ZOConfig(steps=2, batch_size=8))) == 2


@pytest.mark.parametrize("device", ["meta", pytest.param("cuda", marks=CUDA)])
def test_generate_from_token_ids_stays_on_the_models_device(device):
    model = nt.models.SpikingLM(d_model=8, layers=1).to(device)
    prompt = torch.zeros(1, 3, dtype=torch.long, device=device)
    new = clean(device, lambda dev: lambda: model.generate(prompt, 2, temperature=0))
    assert new.shape == (1, 2) and new.device.type == device


@CUDA
def test_generate_from_text_on_cuda():
    model = nt.models.SpikingLM(d_model=8, layers=1).cuda()
    assert isinstance(model.generate("ab", 2, temperature=0), str)


@CUDA
def test_counting_a_cuda_model_works_and_matches_the_cpu_count():
    torch.manual_seed(0)
    model = nt.models.SNNClassifier(6, (8,), 3, T=3, encoding="rate")
    x = torch.rand(2, 6)
    with nt.accounting.count(model) as cpu:
        model(x)
    model.cuda()
    with nt.accounting.count(model) as gpu:
        model(x.cuda())
    assert gpu.totals == cpu.totals


@CUDA
def test_counting_a_cuda_conv_layer():
    layer = nt.layers.SpikingConv2d(2, 3, 3).cuda()
    with nt.accounting.count(layer) as c:
        layer(torch.rand(2, 2, 2, 6, 6, device="cuda"))
    assert c.totals["macs"] > 0


@CUDA
def test_a_trainer_on_cuda_trains_from_cpu_tensors():
    from neurotoken.learning import FitConfig, Trainer

    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 6, generator=g)
    y = (x[:, 0] > x[:, 1]).long()
    model = nt.models.SNNClassifier(6, (16,), 2, T=3, encoding="bernoulli")
    losses = Trainer(model, FitConfig(epochs=4, batch_size=8, lr=2e-2, device="cuda")).fit(x, y)
    assert next(model.parameters()).is_cuda and losses[-1] < losses[0]
