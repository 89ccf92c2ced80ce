"""Train a small spiking digits classifier, export it to NIR, and run the file in neurotoken and snnTorch.

    .venv/bin/python examples/export_nir.py [out.nir]

Needs ``pip install --no-deps nir==1.0.8 nirtorch==2.6`` (and snntorch==1.0.0 for the peer run).
The graph is the network body plus the readout: one time step of the encoded digit in, readout
currents out; logits are their mean over the T steps (see neurotoken.export.nir).
"""

import contextlib
import io
import sys

import nir
import torch
import torch.nn.functional as F

from neurotoken.data import load_digits
from neurotoken.encoding import encode
from neurotoken.export import export_model, from_nir
from neurotoken.models import SNNClassifier

torch.manual_seed(0)
data = load_digits()
model = SNNClassifier(64, hidden=(64,), classes=10, T=8, beta=0.8, threshold=0.5, reset="zero")
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(5):
    for idx in torch.randperm(len(data.y_train)).split(64):
        opt.zero_grad()
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()


def report(name, logits, reference=None):
    acc = (logits.argmax(-1) == data.y_test).float().mean().item()
    diff = "" if reference is None else f", max |logit - ours| {(logits - reference).abs().max().item():.2e}"
    print(f"{name:<26} test accuracy {acc:.4f}{diff}")


path = export_model(model, sys.argv[1] if len(sys.argv) > 1 else "digits_snn.nir", data.x_test, force=True)
graph = nir.read(path)
steps = encode(model.encoding, data.x_test, model.T)
with torch.no_grad():
    ours = model(data.x_test)
    report("neurotoken model", ours)
    report("from_nir(nir.read(file))", from_nir(graph)(steps).mean(0), ours)
    try:
        from snntorch.import_nir import import_from_nir
    except ImportError:
        sys.exit("snntorch not installed: skipping the peer run")
    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(graph)
    report("snnTorch import_from_nir", torch.stack([net(x_t)[0] for x_t in steps]).mean(0), ours)
