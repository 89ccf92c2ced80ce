"""Our NIR graphs loaded by snnTorch and Norse (their NIR import) give our spike trains.

The mapping each peer applies is in the docstring of :mod:`neurotoken.export.nir`: snnTorch
(dt fixed at 1e-4, our default) turns our LIF into ``Leaky(beta, reset_mechanism="zero")`` for
every beta < 1; Norse ignores a LIF's r, so it matches our LIF only at beta = 0, and its IF
(which adds the input once per step) matches beta = 1. Both peers reset the membrane right after
a spike, ours at the next step, so their membrane equals our h (1 - s).
"""

import contextlib
import io

import pytest
import torch
from torch import nn

pytest.importorskip("nir", reason="nir not installed; pip install --no-deps nir==1.0.8 nirtorch==2.6")

from neurotoken.encoding import encode  # noqa: E402
from neurotoken.export import DT, to_nir  # noqa: E402
from neurotoken.layers import SpikingConv2d, SpikingLinear  # noqa: E402
from neurotoken.models import SNNClassifier  # noqa: E402
from neurotoken.neurons import LIF, npe_multistep  # noqa: E402

BUDGET = 1e-4  # spike-train mismatch rate (DESIGN: spikes by budget, membranes by assert_close)


def our_trace(model: nn.Module, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(spikes, post-reset membrane h (1 - s)) of every LIF of ``model`` on x, in NIR layout."""
    currents = []
    hooks = [m.register_forward_hook(lambda m, args, out: currents.append((m, args[0])))
             for m in model.modules() if isinstance(m, LIF)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    traces = []
    for lif, i in currents:
        s, h = npe_multistep(i, lif.params(), backend="sequential")
        traces.append((channels_first(s), channels_first(h * (1 - s))))
    return traces


def channels_first(t: torch.Tensor) -> torch.Tensor:
    """[T, B, H, W, C] -> [T, B, C, H, W] (NIR's image layout); vectors unchanged."""
    return t.permute(0, 1, 4, 2, 3) if t.dim() == 5 else t


def peer_run(net: nn.Module, cell: type, read, x: torch.Tensor):
    """Step ``net`` (a nirtorch module: (x_t, state) -> (y_t, state)) over x; outputs and, per
    neuron module of type ``cell``, (spikes, membrane) stacked over time via ``read(module, output)``."""
    cells = [m for m in net.modules() if isinstance(m, cell)]
    records = {m: [] for m in cells}
    hooks = [m.register_forward_hook(lambda m, args, out: records[m].append(read(m, out))) for m in cells]
    outs, state = [], None
    with torch.no_grad():
        for x_t in x:
            y, state = net(x_t, state)
            outs.append(y)
    for hook in hooks:
        hook.remove()
    return torch.stack(outs), [tuple(torch.stack(v).float() for v in zip(*records[m])) for m in cells]


def assert_same_trains(ours, theirs):
    assert len(ours) == len(theirs)
    for (spikes, mem), (peer_spikes, peer_mem) in zip(ours, theirs):
        assert 0.02 < spikes.mean() < 0.9  # a test that fires (and not always)
        assert (spikes != peer_spikes).double().mean() <= BUDGET
        torch.testing.assert_close(peer_mem, mem)


def snntorch_net(graph) -> nn.Module:
    pytest.importorskip("snntorch", reason="snntorch not installed; pip install --no-deps snntorch==1.0.0")
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):  # it prints as it parses
        return import_from_nir(graph)


def snntorch_run(graph, x):
    import snntorch

    return peer_run(snntorch_net(graph), snntorch.Leaky, lambda m, out: (out, m.mem.clone()), x)


def test_snntorch_runs_our_classifier_with_our_spike_trains():
    torch.manual_seed(0)
    model = SNNClassifier(16, hidden=(32, 24), classes=10, T=12, beta=0.8, threshold=0.3, reset="zero")
    x = torch.rand(6, 16)
    s = encode(model.encoding, x, model.T)
    out, theirs = snntorch_run(to_nir(model, x), s)
    assert_same_trains(our_trace(model.body, s), theirs)
    torch.testing.assert_close(out.mean(0), model(x))


def test_snntorch_runs_our_convolutional_net_with_our_spike_trains():
    """snnTorch hands NIR's Flatten(start_dim=0) to torch unchanged: it runs one unbatched sample at a time."""
    torch.manual_seed(0)
    model = nn.Sequential(SpikingConv2d(2, 4, 3, padding=1, beta=torch.tensor([0.9, 0.7, 0.5, 0.0]), threshold=0.4,
                                        reset="zero"),
                          nn.Flatten(2), SpikingLinear(4 * 6 * 5, 10, beta=0.85, threshold=0.3, reset="zero"))
    x = torch.randn(9, 3, 6, 5, 2)
    graph = to_nir(model, x)
    runs = [snntorch_run(graph, channels_first(x)[:, b]) for b in range(x.shape[1])]
    theirs = [tuple(torch.stack(v, 1) for v in zip(*layer)) for layer in zip(*(trace for _, trace in runs))]
    assert_same_trains(our_trace(model, x), theirs)
    torch.testing.assert_close(torch.stack([out for out, _ in runs], 1), model(x))


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")  # inside Norse
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_norse_runs_our_mlp_with_our_spike_trains(beta):
    norse = pytest.importorskip("norse.torch", reason="norse not installed; pip install --no-deps norse==1.1.0")
    from norse.torch.module.iaf import IAFCell
    from norse.torch.module.lif_box import LIFBoxCell

    torch.manual_seed(0)
    model = nn.Sequential(SpikingLinear(12, 16, beta=beta, threshold=0.5, reset="zero"),
                          SpikingLinear(16, 8, beta=beta, threshold=0.3, reset="zero"))
    x = torch.randn(15, 4, 12)
    net = norse.from_nir(to_nir(model, x), ignore_warnings=True, dt=DT)  # its IF warns that r != 1
    out, theirs = peer_run(net, IAFCell if beta == 1.0 else LIFBoxCell, lambda m, out: (out[0], out[1].v), x)
    assert_same_trains(our_trace(model, x), theirs)
    assert (out != model(x)).double().mean() <= BUDGET
