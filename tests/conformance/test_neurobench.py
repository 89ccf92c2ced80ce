"""Our synaptic-operation counts and activation sparsity against NeuroBench's metrics (a peer).

NeuroBench (``neurobench.metrics.workload``) and ``neurotoken.accounting`` both hook the Linear
layers and binarise their inputs; per sample = total / batch size in both. Where the definitions
coincide the numbers are equal; where they differ the relation asserted here is:

* ACs: NeuroBench calls an input spiking when it holds only {-1, 0, 1}; we accept any integer
  |k| <= 15. For binary/ternary inputs ``Effective_ACs == acs``. A multi-level input (k = 2, 3) is
  "not spiking" to NeuroBench, which then reports nnz x fan-out as ``Effective_MACs``: the number we
  call ``acs`` (one AC per event), so Effective_ACs + Effective_MACs == acs.
* MACs: NeuroBench's ``Effective_MACs`` skip zero real inputs; our ``macs`` are dense (a
  conventional accelerator multiplies zeros too) and equal its ``Dense``. With no zero inputs the
  two coincide; otherwise Effective_MACs <= macs.
* ``Dense == dense_ops`` always; neither counts biases; NeuroBench also skips zero weights (none
  here).
* Activation sparsity: zeros over all NPE outputs, LIF registered as NeuroBench's activation module.
"""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip("neurobench.benchmarks", reason="neurobench (and snntorch, tqdm) not installed; "
                    "pip install --no-deps neurobench snntorch tqdm")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402

from neurotoken import accounting  # noqa: E402
from neurotoken.data import load_digits  # noqa: E402
from neurotoken.models import SNNClassifier  # noqa: E402
from neurotoken.neurons import LIF  # noqa: E402

BATCH = 50


def digits(n=150):
    data = load_digits()
    return data.x_test[:n], data.y_test[:n]


def neurobench_metrics(net, x, y):
    model = TorchModel(net)
    model.add_activation_module(LIF)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    out = bench.run(quiet=True)
    model.cleanup_hooks()
    return out["SynapticOperations"], out["ActivationSparsity"]


def ours(net, x):
    net.eval()
    with torch.no_grad(), accounting.count(net) as c:
        for xb in x.split(BATCH):
            net(xb)
    return c


def snn(**kw):
    torch.manual_seed(0)
    return SNNClassifier(64, (32,), 10, T=4, threshold=0.5, **kw)


def test_binary_snn_acs_dense_and_sparsity_match_neurobench():
    x, y = digits()
    net = snn(encoding="rate")
    c = ours(net, x)
    syn, sparsity = neurobench_metrics(net, x, y)
    per = c.per_inference
    assert c.totals["acs"] > 0 and 0 < c.sparsity < 1
    assert syn["Effective_ACs"] == pytest.approx(per["acs"])
    assert syn["Effective_MACs"] == per["macs"] == 0
    assert syn["Dense"] == pytest.approx(per["dense_ops"])
    assert sparsity == pytest.approx(c.sparsity)


def test_real_input_macs_are_dense_where_neurobench_skips_zeros():
    x, y = digits()
    net = snn(encoding="direct")
    c = ours(net, x)
    syn, _ = neurobench_metrics(net, x, y)
    per = c.per_inference
    assert syn["Effective_MACs"] < per["macs"]  # digits have zero pixels: NeuroBench skips them
    assert syn["Dense"] == pytest.approx(per["dense_ops"])
    assert syn["Effective_ACs"] == pytest.approx(per["acs"])  # the readout sees binary spikes
    x_nonzero = 0.05 + 0.9 * x
    c = ours(net, x_nonzero)
    syn, _ = neurobench_metrics(net, x_nonzero, y)
    assert syn["Effective_MACs"] == pytest.approx(c.per_inference["macs"])


def test_multilevel_spikes_are_acs_here_and_effective_macs_there():
    x, y = digits()
    net = snn(encoding="rate", spike="multilevel")
    c = ours(net, x)
    syn, sparsity = neurobench_metrics(net, x, y)
    per = c.per_inference
    assert c.layers["readout"]["acs"] > 0 and per["macs"] == 0
    assert syn["Effective_ACs"] + syn["Effective_MACs"] == pytest.approx(per["acs"])
    assert syn["Effective_MACs"] == pytest.approx(c.layers["readout"]["acs"] / c.inferences)
    assert sparsity == pytest.approx(c.sparsity)
