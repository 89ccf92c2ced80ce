"""NIR (Neuromorphic Intermediate Representation) export and import of sequential SNNs.

Scope: chains of ``nn.Linear``, :class:`~neurotoken.layers.SpikingLinear`,
:class:`~neurotoken.layers.SpikingConv2d`, :class:`~neurotoken.neurons.LIF` (binary spikes) and
``nn.Flatten(2)``, nested in ``nn.Sequential`` (``SpikingMLP``), and the
:class:`~neurotoken.models.SNNClassifier`, whose graph is the body plus the readout Affine: it maps
one time step of the encoded input x_t [D] to readout currents W_out s_t + b_out, so
``logits = mean_t graph(encode(x)_t)``; the encoder (named in ``graph.metadata``) stays outside.

Discretisation (forward Euler at step ``dt``, the convention of snnTorch's NIR import). NIR's LIF,
tau dv/dt = (v_leak - v) + r I, becomes v_t = (1 - dt/tau) v_{t-1} + (r dt/tau) I_t, which is
eq. (9) h_t = beta h_{t-1} + x_t for

    beta = 1 - dt/tau,  r dt/tau = 1   =>   tau = dt/(1 - beta),  r = 1/(1 - beta),

with v_leak = 0, v_threshold = theta and v_reset = 0. beta = 1 is NIR's IF (dv/dt = r I) with
r = 1/dt. Resets: ``"zero"`` is exact (NIR zeroes v right after the spike, eq. (9)-(10) zero it
when the next step decays it: the spike trains are equal, the membranes differ only at spike
steps, where ours keeps h_t); ``"none"`` is exact as LI (or I when beta = 1) followed by a
Threshold node; ``"subtract"`` has no NIR node (NIR resets *to* v_reset) and is refused unless
``approximate_subtract=True``, which writes it as reset-to-zero: spikes then differ whenever the
membrane overshoots theta (the overshoot is discarded instead of carried to the next step).
NIR fires on v > theta, eq. (4) on h >= theta: they differ only when h lands exactly on theta.

Import inverts this. Any LIF/IF/LI/I with v_leak = 0 and v_reset = 0 is accepted: its input gain
g = r dt/tau (r dt for IF/I) is folded into the threshold, theta = v_threshold/g, which keeps the
spikes exact and scales the membrane by 1/g.

Layout: NIR images are channels-first (C, H, W), ours channels-last. A Conv2d node holds the
PyTorch weight as is; a Flatten of a (C, H, W) image orders features c, h, w where ours orders
h, w, c, so the next Linear's columns (and any per-neuron parameters between them) are permuted
on export and back on import. A graph that ends on a flattened image outputs NIR's order.

Peers (both import NIR through nirtorch; see tests/conformance/test_nir_peers.py):
* snnTorch 1.0 ``import_from_nir`` maps LIF to ``Leaky(beta = 1 - 1e-4/tau, threshold =
  v_threshold/(r 1e-4/tau), reset_mechanism="zero")`` with dt fixed at 1e-4 (our default
  :data:`DT`): its spike trains equal ours for every beta < 1. Its IF import is not usable
  (a Leaky with beta = 0.9), and it passes NIR's Flatten dims to ``torch.nn.Flatten`` unchanged,
  so a graph with Flatten runs there on unbatched samples.
* Norse 1.1 ``from_nir(graph, dt=...)`` integrates LIF as v += dt/tau (i - v), ignoring r (it
  warns), which equals ours only for beta = 0 (tau = dt, r = 1); its IF adds the input once per
  step (ignoring r), which equals our beta = 1.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import _checks
from ..layers import EventLinear, SpikingConv2d, SpikingLinear
from ..learning.checkpoint import atomic_write
from ..models import SNNClassifier
from ..neurons import LIF
from ..spikes import Binary
from ..zoo import load_model

DT = 1e-4  # s; snnTorch's NIR import assumes this step
SUPPORTED = ("Linear", "SpikingLinear", "SpikingConv2d", "LIF", "Flatten(start_dim=2)", "Sequential",
             "SNNClassifier")
FORMATS = ("nir",)
LEAVES = (nn.Linear, LIF, SpikingConv2d, nn.Flatten)  # the layers that map onto NIR nodes
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _layers(module: nn.Module, name: str) -> Iterator[tuple[str, nn.Module]]:
    """The leaves of a sequential model in execution order, with their qualified names; a module
    this exporter does not know is yielded whole (:func:`_refusal` then names its culprit)."""
    join = (lambda child: f"{name}.{child}" if name else child)
    if isinstance(module, SNNClassifier):
        yield from _layers(module.body, join("body"))
        yield join("readout"), module.readout
    elif isinstance(module, SpikingLinear):
        yield join("linear"), module.linear
        yield join("neuron"), module.neuron
    elif isinstance(module, nn.Sequential):
        for child, sub in module.named_children():
            yield from _layers(sub, join(child))
    else:
        yield name, module


def _without_node(module: nn.Module, name: str) -> tuple[str, nn.Module]:
    """The first layer of ``module`` (pre-order, entering containers) that no NIR node represents,
    else ``module`` itself."""
    join = (lambda child: f"{name}.{child}" if name else child)
    for child, sub in module.named_children():
        found = _without_node(sub, join(child)) if isinstance(sub, CONTAINERS) else (join(child), sub)
        if not isinstance(found[1], (*LEAVES, SpikingLinear, *CONTAINERS)):
            return found
    return name, module


def _refusal(model: nn.Module, name: str, layer: nn.Module) -> str:
    """One line naming the layer of ``model`` (qualified name and class) that has no NIR node."""
    name, layer = _without_node(layer, name)
    twin = " (the conventional twin, spiking=False)" if getattr(model, "spiking", None) is False else ""
    return (f"cannot export {type(model).__name__}{twin} to NIR: layer {name or '<model>'!r} "
            f"({type(layer).__name__}) has no NIR node; supported layers: {', '.join(SUPPORTED)}")


def _image_order(h: int, w: int, c: int) -> torch.Tensor:
    """order[i] = our (h, w, c)-flattened index of NIR's (c, h, w)-flattened feature i."""
    return torch.arange(h * w * c).reshape(h, w, c).permute(2, 0, 1).flatten()


def _nir_shape(x: torch.Tensor) -> tuple[int, ...]:
    """Per-sample shape of x [T, B, ...] in NIR's layout: (D,) or (C, H, W)."""
    return tuple(x.shape[2:]) if x.dim() == 3 else (x.shape[4], x.shape[2], x.shape[3])


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _per_neuron(value, shape: tuple[int, ...], order: torch.Tensor | None) -> np.ndarray:
    """A scalar or per-channel (channels-last) parameter as a float64 array of NIR shape."""
    v = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if v.dim() == 1 and len(shape) == 3:
        v = v.reshape(-1, 1, 1)
    v = v.expand(shape)
    return _array(v if order is None else v[order])


def _neuron_nodes(nir, name: str, lif: LIF, shape, order, dt: float, approximate_subtract: bool) -> dict:
    """NIR node(s) for one LIF (see the module docstring for the mapping)."""
    p = lif.params()
    if not isinstance(p.spike, Binary) or p.feedback is not None:
        what = "a feedback matrix" if p.feedback is not None else f"{type(p.spike).__name__} spikes"
        raise ValueError(f"cannot export layer {name!r} to NIR: it has {what}; NIR neurons emit binary "
                         f"spikes with a scalar reset")
    if p.reset == "subtract" and not approximate_subtract:
        raise ValueError(f"cannot export layer {name!r} to NIR exactly: reset='subtract' has no NIR node (NIR "
                         f"resets *to* v_reset); build it with reset='zero', or pass approximate_subtract=True "
                         f"to write it as reset-to-zero (spikes then differ whenever the membrane overshoots)")
    beta, theta = _per_neuron(p.decay, shape, order), _per_neuron(p.threshold, shape, order)
    zeros = np.zeros(shape)
    if np.all(beta == 1.0):
        r = np.full(shape, 1.0 / dt)
        cell = nir.I(r) if p.reset == "none" else nir.IF(r, theta, zeros)
    elif np.all(beta < 1.0):
        tau, r = dt / (1.0 - beta), 1.0 / (1.0 - beta)
        cell = nir.LI(tau, r, zeros) if p.reset == "none" else nir.LIF(tau, r, zeros, theta, zeros)
    else:
        raise ValueError(f"cannot export layer {name!r} to NIR: beta mixes 1 (IF) and < 1 (LIF) across "
                         f"channels, which no single NIR node holds")
    return {name: cell, f"{name}.threshold": nir.Threshold(theta)} if p.reset == "none" else {name: cell}


def _conv_node(nir, name: str, conv: nn.Conv2d, shape) -> object:
    if conv.padding_mode != "zeros":
        raise ValueError(f"cannot export layer {name!r}: NIR's Conv2d pads with zeros, got "
                         f"padding_mode={conv.padding_mode!r}")
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    return nir.Conv2d(input_shape=shape[1:], weight=_array(conv.weight), stride=conv.stride, padding=conv.padding,
                      dilation=conv.dilation, groups=conv.groups, bias=_array(bias))


def _check_sample(model: nn.Module, sample) -> torch.Tensor:
    """The sample as [T, B, ...] (an SNNClassifier's [B, D] input gains a leading time axis); ``None``
    is one zero input of an SNNClassifier, on the device and dtype of its first layer."""
    if sample is None and isinstance(model, SNNClassifier):
        first = next(m for m in model.modules() if isinstance(m, nn.Linear))
        sample = first.weight.new_zeros(1, first.in_features)
    elif sample is None:
        raise ValueError(f"sample is required to export a {type(model).__name__} (an input fixes its shapes)")
    _checks.tensor("sample", sample)
    if isinstance(model, SNNClassifier):
        if sample.dim() != 2:
            raise ValueError(f"sample must be an SNNClassifier input [B, in_features], got shape {tuple(sample.shape)}")
        return sample.unsqueeze(0)
    if sample.dim() not in (3, 5):
        raise ValueError(f"sample must be [T, B, D] or [T, B, H, W, C] (time leading, channels last), "
                         f"got shape {tuple(sample.shape)}")
    return sample


def to_nir(model: nn.Module, sample: torch.Tensor | None = None, *, dt: float = DT,
           approximate_subtract: bool = False):
    """Export a sequential SNN as a ``nir.NIRGraph`` acting on one time step of one sample.

    ``sample`` is an input of ``model`` ([T, B, D], [T, B, H, W, C], or [B, D] for an
    SNNClassifier, where it may be omitted); it fixes the shapes. ``dt`` is the Euler step of the
    discretisation (module docstring). Raises ValueError naming the layer that has no exact NIR node.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    from ..hardware.analog import tiles

    crossbar = next(iter(tiles(model).items()), None)
    if crossbar is not None:
        raise ValueError(f"cannot export {type(model).__name__} to NIR: layer {crossbar[0]!r} "
                         f"({type(crossbar[1]).__name__}) is an analog crossbar tile; NIR has no crossbar node "
                         "(conductances, converters, device noise): export the digital model it was converted from")
    import nir

    dt = _checks.number("dt", dt, low=0.0, low_open=True)
    layers = list(_layers(model, ""))
    for name, layer in layers:  # refuse an unsupported layer before anything else
        if not isinstance(layer, LEAVES):
            raise ValueError(_refusal(model, name, layer))
        if isinstance(layer, SpikingConv2d) and (not layer.spiking or layer.norm is not None or layer.pool != "none"):
            raise ValueError(f"cannot export layer {name or '<model>'!r} (SpikingConv2d) to NIR: only a plain "
                             "spiking convolution (spiking=True, norm='none', pool='none') has an exact NIR node")
    x = _check_sample(model, sample).detach().float()
    nodes, order = {"input": nir.Input(np.array(_nir_shape(x)))}, None
    for name, layer in layers:
        shape = _nir_shape(x)
        if isinstance(layer, nn.Flatten) and (layer.start_dim != 2 or layer.end_dim not in (-1, x.dim() - 1)):
            raise ValueError(f"cannot export layer {name!r}: Flatten must keep [T, B] and flatten the rest "
                             f"(start_dim=2, end_dim=-1), got start_dim={layer.start_dim}, end_dim={layer.end_dim}")
        if isinstance(layer, nn.Linear) and x.dim() != 3:
            raise ValueError(f"cannot export layer {name!r}: a Linear over the channels of an image has no NIR "
                             f"node; flatten first")
        try:
            with torch.no_grad():
                y = layer(x)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"sample of shape {tuple(sample.shape)} does not fit layer {name!r}: {err}") from err
        if isinstance(layer, nn.Linear):
            w = _array(layer.weight if order is None else layer.weight[:, order])
            nodes[name] = nir.Linear(w) if layer.bias is None else nir.Affine(w, _array(layer.bias))
            order = None
        elif isinstance(layer, SpikingConv2d):
            nodes[f"{name}.conv"] = _conv_node(nir, name, layer.conv, shape)
            nodes.update(_neuron_nodes(nir, f"{name}.neuron", layer.neuron, _nir_shape(y), None, dt,
                                       approximate_subtract))
        elif isinstance(layer, LIF):
            nodes.update(_neuron_nodes(nir, name, layer, shape, order, dt, approximate_subtract))
        else:
            nodes[name] = nir.Flatten(np.array(shape), start_dim=0, end_dim=-1)
            order = _image_order(x.shape[2], x.shape[3], x.shape[4]) if x.dim() == 5 else order
        x = y
    nodes["output"] = nir.Output(np.array(_nir_shape(x)))
    nodes = {k.replace(".", "_"): v for k, v in nodes.items()}  # nirtorch names modules after nodes
    names = list(nodes)
    metadata = {"source": "neurotoken", "dt": dt}
    if isinstance(model, SNNClassifier):
        metadata.update(encoding=model.encoding, T=model.T, readout="mean over time of the output")
    return nir.NIRGraph(nodes, list(zip(names, names[1:])), metadata=metadata)


def _chain(graph) -> list[tuple[str, object]]:
    """The nodes of a sequential graph from its Input to its Output (both excluded)."""
    import nir

    succ = {}
    for a, b in graph.edges:
        if a in succ:
            raise ValueError(f"graph must be a sequential chain; node {a!r} has several successors")
        succ[a] = b
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"graph must have exactly one Input node, got {inputs}")
    chain, name = [], succ.get(inputs[0])
    while name is not None and not isinstance(graph.nodes[name], nir.Output):
        if len(chain) > len(graph.nodes):
            raise ValueError("graph must be a sequential chain; it has a cycle")
        chain.append((name, graph.nodes[name]))
        name = succ.get(name)
    if name is None:
        raise ValueError("graph must be a sequential chain from its Input to an Output node")
    return chain


def _compact(name: str, a, inverse: torch.Tensor | None):
    """A NIR per-neuron array as a float or a per-channel (channels-last) float32 tensor."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3:
        if not np.all(a == a[:, :1, :1]):
            raise ValueError(f"node {name!r}: neurotoken neurons on images take per-channel parameters, "
                             f"got values that vary over (H, W)")
        a = a[:, 0, 0]
    a = a.reshape(-1)
    if inverse is not None:
        a = a[inverse.numpy()]
    return float(a[0]) if np.all(a == a[0]) else torch.tensor(a, dtype=torch.float32)


def _neuron_kwargs(name: str, cell, threshold, dt: float, inverse) -> dict:
    """LIF(beta, threshold, reset) arguments for a NIR LIF/IF, or an LI/I followed by ``threshold``."""
    leaky = hasattr(cell, "tau")
    for field in ("v_leak", "v_reset"):
        if not np.allclose(getattr(cell, field, 0.0), 0.0):
            raise ValueError(f"node {name!r}: neurotoken's LIF needs {field} = 0, got {getattr(cell, field)}")
    step = dt / np.asarray(cell.tau, dtype=np.float64) if leaky else 0.0
    if np.any(step > 1.0):
        raise ValueError(f"node {name!r}: tau must be >= dt = {dt} for the Euler step, got min tau {np.min(cell.tau)}")
    gain = np.asarray(cell.r, dtype=np.float64) * (step if leaky else dt)
    v_th = threshold.threshold if threshold is not None else cell.v_threshold
    return {"beta": _compact(name, np.broadcast_to(1.0 - step, gain.shape), inverse),
            "threshold": _compact(name, np.asarray(v_th) / gain, inverse),
            "reset": "none" if threshold is not None else "zero"}


def _linear(node) -> nn.Linear:
    weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    bias = getattr(node, "bias", None)
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(np.asarray(bias)))
    return layer


def _conv(node) -> nn.Conv2d:
    weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    conv = nn.Conv2d(weight.shape[1] * node.groups, weight.shape[0], tuple(weight.shape[2:]), node.stride,
                     node.padding, node.dilation, node.groups)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    return conv


def from_nir(graph, *, dt: float | None = None) -> nn.Sequential:
    """Build the neurotoken model of a sequential NIR graph (inverse of :func:`to_nir`).

    The model maps [T, B, D] (or channels-last [T, B, H, W, C] where the graph's input is a
    (C, H, W) image) to the graph's output per step. ``dt`` defaults to ``graph.metadata["dt"]``,
    else :data:`DT`. Affine/Linear or Conv2d followed by a neuron become SpikingLinear /
    SpikingConv2d; a lone Affine/Linear an nn.Linear, a lone neuron a LIF.
    """
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    dt = _checks.number("dt", dt if dt is not None else graph.metadata.get("dt", DT), low=0.0, low_open=True)
    chain, pieces, inverse = _chain(graph), [], None
    i = 0
    while i < len(chain):
        name, node = chain[i]
        if isinstance(node, (nir.LIF, nir.IF)):
            pieces.append(("neuron", _neuron_kwargs(name, node, None, dt, inverse)))
        elif isinstance(node, (nir.LI, nir.I)) and i + 1 < len(chain) and isinstance(chain[i + 1][1], nir.Threshold):
            pieces.append(("neuron", _neuron_kwargs(name, node, chain[i + 1][1], dt, inverse)))
            i += 1
        elif isinstance(node, (nir.Affine, nir.Linear)):
            layer = _linear(node)
            if inverse is not None:
                layer.weight.data = layer.weight.data[:, inverse]
            pieces.append(("linear", layer))
            inverse = None
        elif isinstance(node, nir.Conv2d):
            pieces.append(("conv", _conv(node)))
        elif isinstance(node, nir.Flatten):
            shape = tuple(int(n) for n in node.input_type["input"])
            if (node.start_dim, node.end_dim) not in ((0, -1), (0, len(shape) - 1)):
                raise ValueError(f"node {name!r}: only a Flatten of the whole sample (start_dim=0, end_dim=-1) "
                                 f"is supported, got start_dim={node.start_dim}, end_dim={node.end_dim}")
            if len(shape) == 3:
                inverse = torch.argsort(_image_order(shape[1], shape[2], shape[0]))
            pieces.append(("flatten", nn.Flatten(2)))
        else:
            raise ValueError(f"cannot import NIR node {name!r} ({type(node).__name__}); supported: Affine, Linear, "
                             f"Conv2d, Flatten, LIF, IF, LI or I followed by Threshold")
        i += 1
    return nn.Sequential(*_assemble(pieces))


def _assemble(pieces: list[tuple[str, object]]) -> Iterator[nn.Module]:
    """Fuse (linear|conv, neuron) pairs into SpikingLinear / SpikingConv2d."""
    i = 0
    while i < len(pieces):
        kind, item = pieces[i]
        neuron = pieces[i + 1][1] if i + 1 < len(pieces) and pieces[i + 1][0] == "neuron" else None
        if kind == "conv" and neuron is None:
            raise ValueError("cannot import a Conv2d that no neuron follows (neurotoken's channels-last "
                             "convolution is SpikingConv2d)")
        if kind in ("linear", "conv") and neuron is not None:
            if kind == "linear":
                block = SpikingLinear(item.in_features, item.out_features, item.bias is not None, **neuron)
                block.linear = EventLinear.from_linear(item)
            else:
                block = SpikingConv2d(item.in_channels, item.out_channels, item.kernel_size, **neuron)
                block.conv = item
            yield block
            i += 2
            continue
        yield LIF(**item) if kind == "neuron" else item
        i += 1


def _target(path, source: Path | None, force: bool) -> Path:
    """``path`` checked as an export's output: never the ``source`` file, and new unless ``force``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    if source is not None and (path.resolve() == source.resolve()
                               or (path.exists() and source.exists() and os.path.samefile(path, source))):
        raise ValueError(f"refusing to overwrite the input {str(source)!r} with the export {str(path)!r}; "
                         f"choose another output path")
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; expected a file path")
    if path.exists() and not force:
        raise FileExistsError(f"{str(path)!r} already exists; pass force=True (--force on the command line) "
                              f"to overwrite it")
    return path


def export_model(model: nn.Module | str | os.PathLike, path: str | os.PathLike, sample: torch.Tensor | None = None,
                 format: str = "nir", *, force: bool = False, **options) -> Path:
    """Write ``model`` (a module, or a file of :func:`neurotoken.zoo.save_model`) to ``path``; returns it.

    ``sample`` and ``options`` go to :func:`to_nir`. The file is written atomically (temp file, fsync,
    rename); an existing ``path`` is refused unless ``force``, and the model file always.
    """
    import nir

    _checks.choice("format", format, FORMATS)
    source = Path(model) if isinstance(model, (str, os.PathLike)) else None
    path = _target(path, source, force)
    if source is not None:
        model, _ = load_model(source)
    elif not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a model file path, got {type(model).__name__}")
    buffer = io.BytesIO()
    nir.write(buffer, to_nir(model, sample, **options))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())
    return path
