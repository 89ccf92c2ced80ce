"""The fuzz table: bad inputs to the public entry points, each with the outcome it must have.

Every :class:`Case` is one call. ``refused``: it raises ValueError or TypeError whose message names
the argument (a path that does not exist, or exists where it must not, may instead raise the
matching OSError, FileNotFoundError or FileExistsError, naming the path); ``accepted``: it
returns, and ``check`` (when given) holds for the result; ``nan``: a
forward pass given NaN returns a result holding NaN (forward passes never check values; debug mode
refuses them). A case with an ``owner`` is a known failure in a file that owner keeps, expected to
fail (strictly) until it is fixed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import neurotoken as nt
from neurotoken.experiments import config as xconfig
from neurotoken.mixers import attention, hippo, rwkv, sparse
from neurotoken.mixers.base import memoryless


@dataclasses.dataclass(frozen=True)
class Case:
    entry: str                          # the public name the case exercises
    label: str                          # what is bad about the input
    call: Callable[[Path], object]      # runs the entry point, given an empty scratch folder
    outcome: str                        # "refused", "accepted" or "nan"
    name: str = ""                      # refused: the argument the message must name ("{tmp}": the scratch folder)
    errors: tuple = (ValueError, TypeError)  # refused: the exception types allowed
    check: Callable[[object], bool] | None = None  # accepted: what the result must satisfy
    owner: str = ""                     # a known failure: whose file, and the fix

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.label}"


CASES: list[Case] = []


def refused(entry: str, label: str, call, name: str, owner: str = "") -> None:
    CASES.append(Case(entry, label, call, "refused", name=name, owner=owner))


def refused_path(entry: str, label: str, call, name: str, owner: str = "") -> None:
    """A refusal about a path: OSError subclasses (FileNotFoundError, ...) allowed beside ValueError/TypeError."""
    CASES.append(Case(entry, label, call, "refused", name=name, errors=(ValueError, TypeError, OSError), owner=owner))


def accepted(entry: str, label: str, call, check=None, owner: str = "") -> None:
    CASES.append(Case(entry, label, call, "accepted", check=check, owner=owner))


def propagates_nan(entry: str, label: str, call, owner: str = "") -> None:
    CASES.append(Case(entry, label, call, "nan", owner=owner))


def first_tensor(out) -> torch.Tensor:
    """The first tensor of a result (outputs come first in every (output, state) pair)."""
    while not isinstance(out, torch.Tensor):
        out = out[0]
    return out


def with_nan(x: torch.Tensor) -> torch.Tensor:
    x.view(-1)[0] = math.nan
    return x


def shape_is(*shape):
    return lambda out: tuple(first_tensor(out).shape) == shape


D = 4  # channels of every small module below


# ---- forward passes: one battery for every module that takes a real tensor ---------------------

def forward_battery(entry: str, make: Callable[[], nn.Module], shape: tuple) -> None:
    """Bad inputs of a forward pass on x of ``shape`` (float32 parameters): refused naming x, NaN propagates."""
    wide = (*shape[:-1], shape[-1] + 1)

    def run(x):
        return lambda tmp: make()(x())

    refused(entry, "a nested list", run(lambda: torch.zeros(shape).tolist()), "x")
    refused(entry, "a 0-d tensor", run(lambda: torch.tensor(1.0)), "x")
    refused(entry, "one channel too many", run(lambda: torch.rand(wide)), "x")
    refused(entry, "int64 input", run(lambda: torch.ones(shape, dtype=torch.long)), "x")
    refused(entry, "bool input", run(lambda: torch.ones(shape, dtype=torch.bool)), "x")
    refused(entry, "complex input", run(lambda: torch.ones(shape, dtype=torch.cfloat)), "x")
    refused(entry, "float64 input, float32 model", run(lambda: torch.rand(shape, dtype=torch.float64)), "x")
    refused(entry, "float16 input, float32 model", run(lambda: torch.rand(shape).half()), "x")
    refused(entry, "bfloat16 input, float32 model", run(lambda: torch.rand(shape).bfloat16()), "x")
    refused(entry, "input on meta, model on cpu", run(lambda: torch.rand(shape, device="meta")), "x")
    refused(entry, "empty batch", run(lambda: torch.rand(0, *shape[1:])), "x")
    accepted(entry, "float64 model and input",
             lambda tmp: make().double()(torch.rand(shape, dtype=torch.float64)),
             lambda out: first_tensor(out).dtype == torch.float64)
    propagates_nan(entry, "a NaN entry", run(lambda: with_nan(torch.rand(shape))))


def lif(**kw):
    return nt.LIF(**{"backend": "sequential", **kw})


MIXERS = {  # small float32 mixers over D channels, each a public class of nt.mixers
    "SoftmaxAttention": lambda: nt.mixers.SoftmaxAttention(D, heads=2),
    "SpikingAttention": lambda: nt.mixers.SpikingAttention(D, heads=2, T=2, mask="causal", neuron=lif(threshold=0.3)),
    "LinearAttention": lambda: nt.mixers.LinearAttention(D, heads=2),
    "SelectiveSSM": lambda: nt.mixers.SelectiveSSM(D, d_state=3),
    "SpikingSSM": lambda: nt.mixers.SpikingSSM(D, d_state=3, neuron=lif(beta=0.0, threshold=0.2, reset="none")),
    "SpikingLRU": lambda: nt.mixers.SpikingLRU(D, d_state=3, neuron=lif(beta=0.0, threshold=0.2, reset="none")),
    "HiPPOSSM": lambda: nt.mixers.HiPPOSSM(D, d_state=3),
    "RWKVTimeMix": lambda: nt.mixers.RWKVTimeMix(D, neuron=memoryless(0.1, "ternary")),
    "RWKVChannelMix": lambda: nt.mixers.RWKVChannelMix(D, 2, neuron=memoryless(0.05, "multilevel")),
    "RWKVBlock": lambda: nt.mixers.RWKVBlock(D, hidden_ratio=2),
    "RWKV": lambda: nt.mixers.RWKV(D, hidden_ratio=2),
    "SpikeGPTBlock": lambda: nt.mixers.SpikeGPTBlock(D, hidden_ratio=2),
    "Residual": lambda: nt.mixers.Residual(D, [nt.mixers.LinearAttention(D), nn.Linear(D, D)]),
    "SpikingOutput": lambda: nt.mixers.SpikingOutput(nt.mixers.RWKVTimeMix(D), lif(beta=0.5, threshold=0.5)),
    "MambaBlock": lambda: nt.mixers.MambaBlock(D, d_state=3),
    "SpikingMamba": lambda: nt.mixers.SpikingMamba(D, d_state=3),
}

for name, make in MIXERS.items():
    entry = f"nt.mixers.{name}"
    forward_battery(entry, make, (2, 3, D))

    def stepped(make=make):
        return lambda tmp: make().step(torch.rand(2, D + 1))

    refused(entry, "step: a token one channel too wide", stepped(), "x_t")
    refused(entry, "state for another batch size",
            lambda tmp, make=make: (lambda m: m(torch.rand(2, 3, D), m.initial_state(3)))(make()), "state")
    refused(entry, "a string as state", lambda tmp, make=make: make()(torch.rand(2, 3, D), "state"), "state")
    refused(entry, "initial_state(batch=2.0)", lambda tmp, make=make: make().initial_state(2.0), "batch")
    accepted(entry, "initial_state(np.int64(2))", lambda tmp, make=make: make().initial_state(np.int64(2)))

for entry, make, bad in [
    ("SoftmaxAttention", lambda kw: nt.mixers.SoftmaxAttention(D, **kw), [("heads", 3), ("mask", "diagonal"),
                                                                          ("bias", "no"), ("d_model", 0)]),
    ("SpikingAttention", lambda kw: nt.mixers.SpikingAttention(D, **kw), [("T", 0), ("score", "or"), ("scale", -1.0),
                                                                          ("method", "fast"), ("T", True)]),
    ("LinearAttention", lambda kw: nt.mixers.LinearAttention(D, **kw), [("causal", "no"), ("chunk_size", 0),
                                                                        ("method", "magic"), ("d_key", -1)]),
    ("SelectiveSSM", lambda kw: nt.mixers.SelectiveSSM(D, **kw), [("d_state", 0), ("dt_range", (0.1, 0.01)),
                                                                  ("method", "nope")]),
    ("SpikingSSM", lambda kw: nt.mixers.SpikingSSM(D, **kw), [("reset_backend", "magic"), ("max_iter", 0),
                                                              ("neuron", "binary")]),
    ("SpikingLRU", lambda kw: nt.mixers.SpikingLRU(D, **kw), [("r_range", (0.5, 1.0)), ("max_phase", math.nan)]),
    ("HiPPOSSM", lambda kw: nt.mixers.HiPPOSSM(D, **kw), [("discretization", "euler"), ("shared_dt", "yes")]),
    ("RWKVTimeMix", lambda kw: nt.mixers.RWKVTimeMix(D, **kw), [("layer", 1), ("neuron", lif(beta=0.9))]),
    ("RWKVChannelMix", lambda kw: nt.mixers.RWKVChannelMix(D, **kw), [("hidden_ratio", 0)]),
    ("Residual", lambda kw: nt.mixers.Residual(D, [], **kw), [("dropout", 1.0), ("norm", "batch")]),
    ("SpikingOutput", lambda kw: nt.mixers.SpikingOutput(**{"mixer": nt.mixers.RWKVTimeMix(D), "neuron": lif(), **kw}),
     [("mixer", nn.Linear(D, D)), ("neuron", "lif")]),
    ("Fire", lambda kw: nt.mixers.Fire(**kw), [("neuron", lif(beta=0.9))]),
    ("MambaBlock", lambda kw: nt.mixers.MambaBlock(D, **kw), [("expand", 0), ("d_conv", 0), ("neuron", "lif")]),
    ("SpikingMamba", lambda kw: nt.mixers.SpikingMamba(D, **kw), [("d_state", 0), ("expand", 1.5)]),
]:
    for arg, value in bad:
        refused(f"nt.mixers.{entry}", f"{arg}={value!r}",
                lambda tmp, make=make, arg=arg, value=value: make({arg: value}), arg)

accepted("nt.mixers.SoftmaxAttention", "d_model=np.int64(4), heads=np.int64(2)",
         lambda tmp: nt.mixers.SoftmaxAttention(np.int64(4), heads=np.int64(2))(torch.rand(1, 2, 4)), shape_is(1, 2, 4))
accepted("nt.mixers.Fire", "a memoryless neuron on any shape",
         lambda tmp: nt.mixers.Fire(memoryless(0.5))(torch.tensor([0.2, 0.7])),
         lambda s: s.tolist() == [0.0, 1.0])
propagates_nan("nt.mixers.Fire", "a NaN entry", lambda tmp: nt.mixers.Fire(memoryless(0.5))(torch.tensor([math.nan])))
refused("nt.mixers.memoryless", "spike='spiky'", lambda tmp: memoryless(0.5, "spiky"), "spike")
refused("nt.mixers.memoryless", "threshold=nan", lambda tmp: memoryless(math.nan), "threshold")
refused("nt.mixers.spiking_neuron", "threshold='1'", lambda tmp: nt.mixers.spiking_neuron("1"), "threshold")


# ---- the mixers' pure functions ------------------------------------------------------------------

def qkv(B=1, L=3, H=2, N=2, P=2):
    return torch.rand(B, L, H, N), torch.rand(B, L, H, N), torch.rand(B, L, H, P)


refused("nt.mixers.linear_attention", "3-d q", lambda tmp: nt.mixers.linear_attention(torch.rand(1, 3, 2), *qkv()[1:]),
        "q")
refused("nt.mixers.linear_attention", "method='fast'", lambda tmp: nt.mixers.linear_attention(*qkv(), method="fast"),
        "method")
refused("nt.mixers.linear_attention", "state of the wrong shape",
        lambda tmp: nt.mixers.linear_attention(*qkv(), state=torch.zeros(1, 2, 2, 3)), "state")
refused("nt.mixers.linear_attention", "chunk_size=0", lambda tmp: nt.mixers.linear_attention(*qkv(), chunk_size=0),
        "chunk_size")
accepted("nt.mixers.linear_attention", "chunk_size=np.int64(2)",
         lambda tmp: nt.mixers.linear_attention(*qkv(), chunk_size=np.int64(2)), shape_is(1, 3, 2, 2))
refused("nt.mixers.ssm_scan", "method='magic'", lambda tmp: nt.mixers.ssm_scan(0.5, 1.0, *qkv(), method="magic"),
        "method")
refused("nt.mixers.ssm_scan", "v of another length",
        lambda tmp: nt.mixers.ssm_scan(0.5, 1.0, torch.rand(1, 3, 2, 2), torch.rand(1, 4, 2, 2),
                                       torch.rand(1, 3, 2, 2)), "v")


def selective_args(L=3, N=2):
    x = torch.rand(1, L, D)
    return x, torch.rand(1, L, D), torch.rand(D, N), torch.rand(1, L, N), torch.rand(1, L, N)


refused("nt.mixers.selective_scan", "no tokens", lambda tmp: nt.mixers.selective_scan(*selective_args(L=0)), "x")
refused("nt.mixers.selective_scan", "A of another width",
        lambda tmp: nt.mixers.selective_scan(*(lambda a: (a[0], a[1], torch.rand(D + 1, 2), a[3], a[4]))(
            selective_args())), "A")
refused("nt.mixers.selective_scan", "state of the wrong shape",
        lambda tmp: nt.mixers.selective_scan(*selective_args(), state=torch.zeros(1, D, 5)), "state")


def wkv_args(L=3):
    return torch.ones(D), torch.zeros(D), torch.rand(1, L, D), torch.rand(1, L, D)


for fn in ("wkv", "wkv_parallel", "wkv_sequential"):
    f = getattr(nt.mixers, fn)
    refused(f"nt.mixers.{fn}", "w of the wrong shape",
            lambda tmp, f=f: f(torch.ones(D + 1), *wkv_args()[1:]), "w")
    refused(f"nt.mixers.{fn}", "v of another shape",
            lambda tmp, f=f: f(*wkv_args()[:3], torch.rand(1, 2, D)), "v")
    refused(f"nt.mixers.{fn}", "a list as state", lambda tmp, f=f: f(*wkv_args(), state=[1, 2]), "state")
    propagates_nan(f"nt.mixers.{fn}", "a NaN key", lambda tmp, f=f: f(*(lambda a: (*a[:2], with_nan(a[2]), a[3]))(
        wkv_args())))
refused("nt.mixers.wkv", "method='quantum'", lambda tmp: nt.mixers.wkv(*wkv_args(), method="quantum"), "method")
refused("nt.mixers.rwkv.wkv_step", "a list as state",
        lambda tmp: rwkv.wkv_step(torch.ones(D), torch.zeros(D), torch.rand(1, D), torch.rand(1, D), [0, 0, 0]),
        "state")
accepted("nt.mixers.rwkv.running_max", "one token",
         lambda tmp: rwkv.running_max(torch.rand(1, 1, D), torch.ones(D), torch.zeros(1, D)), shape_is(1, 1, D))
accepted("nt.mixers.rwkv.token_shift", "no previous token: zeros in front",
         lambda tmp: rwkv.token_shift(torch.ones(1, 2, D), None), lambda y: y[0, 0].eq(0).all() and y[0, 1].eq(1).all())
refused("nt.mixers.lif_fixed_point", "a non-subtractive neuron",
        lambda tmp: nt.mixers.lif_fixed_point(torch.zeros(3, 1), lif(reset="zero").params()), "reset")
refused("nt.mixers.lif_fixed_point", "max_iter=0",
        lambda tmp: nt.mixers.lif_fixed_point(torch.zeros(3, 1), lif().params(), max_iter=0), "max_iter")

# attention functions
refused("nt.mixers.attention.causal_mask", "L=-1", lambda tmp: attention.causal_mask(-1), "L")
refused("nt.mixers.attention.causal_mask", "S < L", lambda tmp: attention.causal_mask(3, 2), "S")
accepted("nt.mixers.attention.causal_mask", "L=np.int64(3)", lambda tmp: attention.causal_mask(np.int64(3)),
         lambda m: m.dtype == torch.bool and m.tolist() == [[True, False, False], [True, True, False], [True] * 3])
refused("nt.mixers.attention.softmax_attention", "k of another width",
        lambda tmp: attention.softmax_attention(torch.rand(3, 2), torch.rand(3, 4), torch.rand(3, 2)), "q, k, v")
refused("nt.mixers.attention.softmax_attention", "scale=nan",
        lambda tmp: attention.softmax_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2), scale=math.nan),
        "scale")
refused("nt.mixers.attention.softmax_attention", "a float mask",
        lambda tmp: attention.softmax_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2), torch.ones(3, 3)),
        "mask")
propagates_nan("nt.mixers.attention.softmax_attention", "a NaN query",
               lambda tmp: attention.softmax_attention(with_nan(torch.rand(3, 2)), torch.rand(3, 2), torch.rand(3, 2)))


def spikes_of(*shape):
    return (torch.rand(shape) < 0.5).float()


for fn in ("and_scores", "xnor_scores"):
    f = getattr(attention, fn)
    refused(f"nt.mixers.attention.{fn}", "non-binary qs",
            lambda tmp, f=f: f(torch.full((2, 3, 4), 0.5), spikes_of(2, 3, 4)), "qs")
    refused(f"nt.mixers.attention.{fn}", "ks of another T", lambda tmp, f=f: f(spikes_of(2, 3, 4), spikes_of(3, 3, 4)),
            "qs and ks")
    refused(f"nt.mixers.attention.{fn}", "method='gpu'",
            lambda tmp, f=f: f(spikes_of(2, 3, 4), spikes_of(2, 3, 4), "gpu"), "method")
    refused(f"nt.mixers.attention.{fn}", "2-d spikes", lambda tmp, f=f: f(spikes_of(3, 4), spikes_of(3, 4)), "qs")
for fn in ("spike_attention", "stochastic_attention"):
    f = getattr(attention, fn)
    refused(f"nt.mixers.attention.{fn}", "scale='1'",
            lambda tmp, f=f: f(spikes_of(2, 3, 4), spikes_of(2, 3, 4), spikes_of(2, 3, 4), scale="1"), "scale")
    refused(f"nt.mixers.attention.{fn}", "vs of another length",
            lambda tmp, f=f: f(spikes_of(2, 3, 4), spikes_of(2, 3, 4), spikes_of(2, 2, 4)), "q, k, v")
    propagates_nan(f"nt.mixers.attention.{fn}", "a NaN value spike",
                   lambda tmp, f=f: f(spikes_of(2, 3, 4), torch.ones(2, 3, 4), with_nan(spikes_of(2, 3, 4))))
refused("nt.mixers.attention.spike_attention", "score='or'",
        lambda tmp: attention.spike_attention(spikes_of(2, 3, 4), spikes_of(2, 3, 4), spikes_of(2, 3, 4), score="or"),
        "score")
refused("nt.mixers.attention.SpikeScores", "q of rank 2 (via spike_attention)",
        lambda tmp: attention.SpikeScores("and", 1.0, "dense")(spikes_of(3, 4), spikes_of(3, 4), spikes_of(3, 4), None),
        "q")

# sparse patterns
for fn in ("local", "strided", "block", "fixed"):
    f = getattr(sparse, fn)
    refused(f"nt.mixers.sparse.{fn}", "L=0", lambda tmp, f=f: f(0, 2), "L")
    refused(f"nt.mixers.sparse.{fn}", "size 2.5", lambda tmp, f=f: f(4, 2.5), "window" if fn == "local" else
            "stride" if fn == "strided" else "block")
    refused(f"nt.mixers.sparse.{fn}", "causal='yes'", lambda tmp, f=f: f(4, 2, causal="yes"), "causal")
    accepted(f"nt.mixers.sparse.{fn}", "numpy sizes", lambda tmp, f=f: f(np.int64(5), np.int64(2)),
             lambda m: m.shape == (5, 5) and m.dtype == torch.bool and bool(m.diagonal().all()))
refused("nt.mixers.sparse.fixed", "summary > block", lambda tmp: sparse.fixed(8, 2, summary=3), "summary")
refused("nt.mixers.sparse.union", "no masks", lambda tmp: sparse.union(), "union")
refused("nt.mixers.sparse.union", "masks of two shapes",
        lambda tmp: sparse.union(sparse.local(3, 1), sparse.local(4, 1)), "masks[1]")
refused("nt.mixers.sparse.to_csr", "an int mask", lambda tmp: sparse.to_csr(torch.ones(3, 3, dtype=torch.int64)),
        "mask")
refused("nt.mixers.sparse.to_csr", "a batch of masks", lambda tmp: sparse.to_csr(torch.ones(2, 3, 3, dtype=torch.bool)),
        "mask")
refused("nt.mixers.sparse.check_mask", "a row attending nothing",
        lambda tmp: sparse.check_mask(torch.tensor([[True, False], [False, False]])), "mask")
refused("nt.mixers.sparse.check_qkv", "a 1-d q", lambda tmp: sparse.check_qkv(torch.rand(3), torch.rand(3, 2),
                                                                                torch.rand(3, 2)), "q")
refused("nt.mixers.sparse.sparse_attention", "a string pattern",
        lambda tmp: sparse.sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2), "local"), "pattern")
refused("nt.mixers.sparse.sparse_attention", "a pattern for another L",
        lambda tmp: sparse.sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2), sparse.local(4, 2)),
        "pattern")
refused("nt.mixers.sparse.sparse_spike_attention", "scale=inf",
        lambda tmp: sparse.sparse_spike_attention(spikes_of(2, 3, 2), spikes_of(2, 3, 2), spikes_of(2, 3, 2),
                                                  sparse.local(3, 2), scale=math.inf), "scale")
refused("nt.mixers.sparse.events", "a list pattern",
        lambda tmp: sparse.events([[1]], spikes_of(2, 3, 2), spikes_of(2, 3, 2)), "pattern")
accepted("nt.mixers.sparse.active_pairs", "all-silent spikes: no events",
         lambda tmp: sparse.active_pairs(sparse.local(3, 2), torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)),
         lambda n: n == 0)
accepted("nt.mixers.sparse.CSR", "the pattern of to_csr round-trips",
         lambda tmp: sparse.CSR(*sparse.to_csr(sparse.local(4, 2))).to_mask(),
         lambda m: torch.equal(m, sparse.local(4, 2)))
refused("nt.mixers.sparse.plan", "an int mask", lambda tmp: sparse.plan(torch.ones(3, 3, dtype=torch.int64)), "mask")
refused("nt.mixers.sparse.plan", "a batch of masks", lambda tmp: sparse.plan(torch.ones(2, 3, 3, dtype=torch.bool)),
        "mask")
refused("nt.mixers.sparse.plan", "block=0", lambda tmp: sparse.plan(sparse.local(4, 2), 0), "block")
refused("nt.mixers.sparse.plan", "period=0", lambda tmp: sparse.plan(sparse.local(4, 2), 2, period=0), "period")
accepted("nt.mixers.sparse.plan", "tiles that do not divide L cover the mask exactly (numpy block)",
         lambda tmp: sparse.plan(sparse.strided(7, 3), np.int64(2), period=3).to_mask(),
         lambda m: torch.equal(m, sparse.strided(7, 3)))
refused("nt.mixers.sparse.block_sparse_attention", "a string pattern",
        lambda tmp: sparse.block_sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2), "local"),
        "pattern")
refused("nt.mixers.sparse.block_sparse_attention", "a plan for another L",
        lambda tmp: sparse.block_sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2),
                                                  sparse.plan(sparse.local(4, 2), 2)), "pattern")
refused("nt.mixers.sparse.block_sparse_attention", "scale=nan",
        lambda tmp: sparse.block_sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2),
                                                  sparse.local(3, 2), scale=math.nan), "scale")
refused("nt.mixers.sparse.block_sparse_attention", "backend='cuda'",
        lambda tmp: sparse.block_sparse_attention(torch.rand(3, 2), torch.rand(3, 2), torch.rand(3, 2),
                                                  sparse.local(3, 2), backend="cuda"), "backend")
accepted("nt.mixers.sparse.block_sparse_attention", "equals dense masked attention (L = 5, block 2)",
         lambda tmp: (lambda q, k, v: (sparse.block_sparse_attention(q, k, v, sparse.local(5, 2), block=2),
                                       attention.softmax_attention(q, k, v, sparse.local(5, 2))))(
             torch.rand(2, 5, 3), torch.rand(2, 5, 3), torch.rand(2, 5, 3)),
         lambda pair: torch.allclose(*pair, atol=1e-6))
propagates_nan("nt.mixers.sparse.block_sparse_attention", "a NaN query",
               lambda tmp: sparse.block_sparse_attention(with_nan(torch.rand(4, 2)), torch.rand(4, 2), torch.rand(4, 2),
                                                         sparse.local(4, 2), block=2))

# HiPPO functions
refused("nt.mixers.hippo.legs", "N=0", lambda tmp: hippo.legs(0), "N")
accepted("nt.mixers.hippo.legs", "N=np.int64(3)", lambda tmp: hippo.legs(np.int64(3)),
         lambda AB: AB[0].shape == (3, 3) and AB[1].shape == (3,))
refused("nt.mixers.hippo.discretize", "method='euler'", lambda tmp: hippo.discretize(*hippo.legs(2), 0.1, "euler"),
        "method")
refused("nt.mixers.hippo.discretize", "A not square",
        lambda tmp: hippo.discretize(torch.rand(2, 3), torch.rand(2), 0.1), "A")
refused("nt.mixers.hippo.hippo_ssm", "u of rank 2",
        lambda tmp: hippo.hippo_ssm(torch.rand(3, 2), torch.rand(2, 2, 2), torch.rand(2, 2), torch.rand(2, 2)), "u")
refused("nt.mixers.hippo.hippo_ssm", "B_bar of the wrong shape",
        lambda tmp: hippo.hippo_ssm(torch.rand(1, 3, 2), torch.rand(2, 2, 2), torch.rand(2, 3), torch.rand(2, 2)),
        "B_bar")
refused("nt.mixers.hippo.hippo_ssm", "method='loop'",
        lambda tmp: hippo.hippo_ssm(torch.rand(1, 3, 2), torch.rand(2, 2, 2), torch.rand(2, 2), torch.rand(2, 2),
                                    method="loop"), "method")
accepted("nt.mixers.hippo.krylov", "length 1: x itself",
         lambda tmp: hippo.krylov(torch.eye(2), torch.tensor([1.0, 2.0]), 1), lambda r: r.tolist() == [[1.0, 2.0]])
accepted("nt.mixers.hippo.causal_conv", "a unit kernel is the identity",
         lambda tmp: (lambda u: (hippo.causal_conv(torch.tensor([[1.0, 0.0, 0.0]]), u), u))(torch.rand(1, 3, 1)),
         lambda r: torch.allclose(*r))


# ---- models and layers -----------------------------------------------------------------------------

MODELS = {
    "nt.models.SNNClassifier": (lambda: nt.models.SNNClassifier(D, (3,), 2, T=2, backend="sequential"), (2, D)),
    "nt.models.SNNClassifier(spiking=False)": (lambda: nt.models.SNNClassifier(D, (3,), 2, spiking=False), (2, D)),
    "nt.models.SpikingSSMClassifier": (lambda: nt.models.SpikingSSMClassifier(D, d_model=4, d_state=2, layers=1,
                                                                              classes=3), (2, 3, D)),
    "nt.models.SpikingTransformer": (lambda: nt.models.SpikingTransformer(D, d_model=4, heads=2, layers=1, T=2,
                                                                          neuron=lif()), (2, 3, D)),
    "nt.models.SpikingMLPBlock": (lambda: nt.models.SpikingMLPBlock(D, 6), (2, 3, D)),
    "nt.layers.SpikingLinear": (lambda: nt.layers.SpikingLinear(D, 3, backend="sequential"), (2, 2, D)),
    "nt.layers.EventLinear": (lambda: nt.layers.EventLinear(D, 3), (2, 2, D)),
    "nt.layers.EventLinear(backend='event')": (lambda: nt.layers.EventLinear(D, 3, backend="event"), (2, 2, D)),
    "nt.layers.SpikingMLP": (lambda: nt.layers.SpikingMLP([D, 3, 2], backend="sequential"), (2, 2, D)),
    "nt.layers.SpikingConv2d": (lambda: nt.layers.SpikingConv2d(D, 2, 3, padding=1, backend="sequential"),
                                (2, 1, 3, 3, D)),
    "nt.layers.SpikingRecurrent": (lambda: nt.layers.SpikingRecurrent(D, 3, neuron=lif()), (2, 2, D)),
    "nt.layers.SEWBlock": (lambda: nt.layers.SEWBlock(D, backend="sequential"), (2, 1, 3, 3, D)),
    "nt.layers.MSBlock": (lambda: nt.layers.MSBlock(D, neuron=lif()), (2, 1, 3, 3, D)),
    "nt.models.SpikingCNN": (lambda: nt.models.SpikingCNN(D, 3, (3, 4), T=2, neuron=lif()), (2, 4, 4, D)),
    "nt.models.SpikingCNN(block='sew', spiking=False)":
        (lambda: nt.models.SpikingCNN(D, 3, (3,), block="sew", spiking=False), (2, 4, 4, D)),
    "nt.models.SpikingSegmenter": (lambda: nt.models.SpikingSegmenter(D, 3, (3, 4), T=2, neuron=lif()), (2, 4, 4, D)),
    "nt.models.KeywordSpotter": (lambda: nt.models.KeywordSpotter(D, 3, (3,), resonators=2, neuron=lif()), (2, 5, D)),
}
for entry, (make, shape) in MODELS.items():
    forward_battery(entry, make, shape)


def ids_battery(entry: str, call: Callable[[torch.Tensor], object], name: str, vocab: int) -> None:
    """Bad token ids [B, L] for a model of ``vocab`` ids: refused naming ``name``."""
    run = lambda ids: lambda tmp: call(ids())  # noqa: E731
    refused(entry, "float ids", run(lambda: torch.rand(2, 3)), name)
    refused(entry, "bool ids", run(lambda: torch.ones(2, 3, dtype=torch.bool)), name)
    refused(entry, "uint8 ids", run(lambda: torch.ones(2, 3, dtype=torch.uint8)), name)
    refused(entry, "1-d ids", run(lambda: torch.ones(3, dtype=torch.long)), name)
    refused(entry, "no tokens", run(lambda: torch.ones(2, 0, dtype=torch.long)), name)
    refused(entry, "id == vocab", run(lambda: torch.full((1, 2), vocab)), name)
    refused(entry, "negative id", run(lambda: torch.full((1, 2), -1)), name)
    refused(entry, "ids on meta", run(lambda: torch.ones(1, 2, dtype=torch.long, device="meta")), name)
    refused(entry, "a numpy array", run(lambda: np.ones((1, 2), dtype=np.int64)), name)
    accepted(entry, "int32 ids", run(lambda: torch.ones(2, 3, dtype=torch.int32)),
             lambda out: first_tensor(out).shape[0] == 2 and bool(torch.isfinite(first_tensor(out)).all()))


def small_lm(**kw):
    return nt.models.SpikingLM(**{"d_model": 4, "layers": 1, "hidden_ratio": 1, "method": "sequential", **kw})


ids_battery("nt.models.SpikingLM", lambda ids: small_lm()(ids), "tokens", 256)
ids_battery("nt.models.SpikingLM(backbone='pspikessm')", lambda ids: small_lm(backbone="pspikessm")(ids), "tokens", 256)
ids_battery("nt.models.SpikingTransformer(vocab=5)",
            lambda ids: nt.models.SpikingTransformer(D, d_model=4, heads=2, layers=1, T=2, vocab=5)(ids), "x", 5)
refused("nt.models.SpikingLM", "step: a [B, L] token", lambda tmp: small_lm().step(torch.ones(1, 2, dtype=torch.long)),
        "token")
refused("nt.models.SpikingLM", "a state of the wrong length",
        lambda tmp: small_lm()(torch.ones(1, 2, dtype=torch.long), (None, None)), "state")
refused("nt.models.SpikingLM", "generate n=0", lambda tmp: small_lm().generate("ab", 0), "n")
refused("nt.models.SpikingLM", "generate n=True", lambda tmp: small_lm().generate("ab", True), "n")
refused("nt.models.SpikingLM", "generate temperature=nan", lambda tmp: small_lm().generate("ab", 2, math.nan),
        "temperature")
refused("nt.models.SpikingLM", "generate temperature=-1", lambda tmp: small_lm().generate("ab", 2, -1.0), "temperature")
refused("nt.models.SpikingLM", "generate an int prompt", lambda tmp: small_lm().generate(5, 2), "prompt")
refused("nt.models.SpikingLM", "generate an empty prompt", lambda tmp: small_lm().generate("", 2), "prompt")


def small_bert(**kw):
    return nt.models.SpikingBERT(**{"d_model": 4, "heads": 2, "layers": 1, "max_len": 8, "T": 2, **kw})


ids_battery("nt.models.SpikingBERT", lambda ids: small_bert()(ids), "tokens", 256)
ids_battery("nt.models.SpikingBERT(spiking=False)", lambda ids: small_bert(spiking=False)(ids), "tokens", 256)
refused("nt.models.SpikingBERT", "task='lm'", lambda tmp: small_bert()(torch.ones(1, 3, dtype=torch.long), task="lm"),
        "task")
refused("nt.models.SpikingBERT", "more positions than max_len",
        lambda tmp: small_bert()(torch.ones(1, 9, dtype=torch.long)), "tokens")
refused("nt.models.SpikingBERT", "spiking='yes'", lambda tmp: small_bert(spiking="yes"), "spiking")
refused("nt.models.SpikingBERT", "max_len=0", lambda tmp: small_bert(max_len=0), "max_len")
refused("nt.models.SpikingBERT", "dropout=1.0", lambda tmp: small_bert(dropout=1.0), "dropout")
refused("nt.models.SpikingBERT", "ngram=0", lambda tmp: small_bert(ngram=0), "ngram")
refused("nt.models.masked_lm_loss", "float tokens",
        lambda tmp: nt.models.masked_lm_loss(small_bert(), torch.rand(1, 3), torch.zeros(1, 3, dtype=torch.long)),
        "tokens")
accepted("nt.models.SpikingLM", "generate n=np.int64(3), greedy",
         lambda tmp: small_lm().generate(torch.ones(1, 2, dtype=torch.long), np.int64(3), 0.0), shape_is(1, 3))

for entry, make, bad in [
    ("SNNClassifier", lambda kw: nt.models.SNNClassifier(**{"in_features": D, **kw}),
     [("in_features", 0), ("in_features", 2.0), ("hidden", 32), ("hidden", (3, 0)), ("classes", 0), ("T", 0),
      ("T", True), ("encoding", "morse"), ("spiking", "no"), ("beta", 1.5), ("threshold", math.nan)]),
    ("SpikingSSMClassifier", lambda kw: nt.models.SpikingSSMClassifier(**kw),
     [("in_features", 0), ("mixer", "transformer"), ("dropout", 1.0), ("spiking", 1), ("layers", -1),
      ("d_model", "64"), ("pool", "last"), ("norm", "rms"), ("bidirectional", 1)]),
    ("SpikingTransformer", lambda kw: nt.models.SpikingTransformer(**kw),
     [("pool", "max"), ("heads", 5), ("vocab", 0), ("spiking", "yes"), ("score", "dot"), ("T", 1.5), ("mlp_ratio", 0)]),
    ("SpikingLM", lambda kw: nt.models.SpikingLM(**kw),
     [("backbone", "gpt"), ("vocab", 0), ("layers", 0), ("spiking", None), ("hidden_ratio", -2)]),
    ("SpikingMLPBlock", lambda kw: nt.models.SpikingMLPBlock(**{"d_model": D, "hidden": 6, **kw}),
     [("neuron", lif(beta=0.9)), ("neuron", 3)]),
    ("SSMBlock", lambda kw: nt.models.SSMBlock(**{"d_model": D, "mixer": nn.Identity(), "mlp": nn.Identity(), **kw}),
     [("dropout", -0.1), ("d_model", 0)]),
    ("SpikingCNN", lambda kw: nt.models.SpikingCNN(**{"in_channels": D, **kw}),
     [("block", "resnet"), ("norm", "ln"), ("pool", "min"), ("channels", ()), ("T", 0), ("encoding", "morse"),
      ("spiking", "no"), ("classes", 0)]),
    ("SpikingSegmenter", lambda kw: nt.models.SpikingSegmenter(**{"in_channels": D, **kw}),
     [("norm", "ln"), ("T", 0), ("spiking", "yes")]),
    ("KeywordSpotter", lambda kw: nt.models.KeywordSpotter(**{"in_features": D, "resonators": 2, **kw}),
     [("freq_hz", (2.0, 600.0)), ("freq_hz", (20.0, 2.0)), ("resonators", -1), ("hidden", (0,)), ("norm", "ln"),
      ("time_first", "yes"), ("tau_ms", 0.0), ("dt_ms", -1.0)]),
]:
    for arg, value in bad:
        refused(f"nt.models.{entry}", f"{arg}={value!r}",
                lambda tmp, make=make, arg=arg, value=value: make({arg: value}), arg)
refused("nt.models.SpikingCNN", "blocks=-1", lambda tmp: nt.models.SpikingCNN(D, block="sew", blocks=-1), "blocks")
refused("nt.models.SpikingSegmenter", "channels=(4, 0)", lambda tmp: nt.models.SpikingSegmenter(D, channels=(4, 0)),
        "channels[1]")
refused("nt.models.KeywordSpotter", "freq_hz=5.0 (not a pair)",
        lambda tmp: nt.models.KeywordSpotter(D, resonators=2, freq_hz=5.0), "freq_hz")
accepted("nt.models.SNNClassifier", "numpy sizes: in_features, hidden array, T",
         lambda tmp: nt.models.SNNClassifier(np.int64(D), hidden=np.array([3]), classes=np.int64(2), T=np.int64(2))(
             torch.rand(2, D)), shape_is(2, 2))
accepted("nt.models.SpikingSSMClassifier", "d_model=np.int64(4)",
         lambda tmp: nt.models.SpikingSSMClassifier(2, d_model=np.int64(4), d_state=2, layers=1)(torch.rand(1, 3, 2)),
         shape_is(1, 10))

for entry, make, bad in [
    ("SpikingLinear", lambda kw: nt.layers.SpikingLinear(**{"in_features": D, "out_features": 3, **kw}),
     [("in_features", 0), ("out_features", -1), ("bias", "no"), ("neuron", "lif"), ("linear_backend", "sparse")]),
    ("EventLinear", lambda kw: nt.layers.EventLinear(**{"in_features": D, "out_features": 3, **kw}),
     [("in_features", 0), ("out_features", -1), ("bias", "no"), ("backend", "sparse")]),
    ("SpikingMLP", lambda kw: nt.layers.SpikingMLP(**{"sizes": [D, 3], **kw}), [("sizes", [D]), ("sizes", [D, 0]),
                                                                                 ("sparse_input_grad", "yes")]),
    ("SpikingConv2d",
     lambda kw: nt.layers.SpikingConv2d(**{"in_channels": D, "out_channels": 2, "kernel_size": 3, **kw}),
     [("in_channels", 0), ("kernel_size", 0), ("stride", 0), ("padding", -1), ("kernel_size", (3, 3, 3)), ("bias", 1)]),
    ("SpikingRecurrent", lambda kw: nt.layers.SpikingRecurrent(**{"in_features": D, "out_features": 3, **kw}),
     [("in_features", 0), ("recurrent", "yes"), ("spiking", 1), ("neuron", "lif")]),
    ("MSBlock", lambda kw: nt.layers.MSBlock(**{"channels": D, **kw}),
     [("channels", 0), ("norm", "ln"), ("spiking", "no")]),
    ("SEWBlock", lambda kw: nt.layers.SEWBlock(**{"channels": D, **kw}), [("channels", 0), ("norm", "ln")]),
]:
    for arg, value in bad:
        refused(f"nt.layers.{entry}", f"{arg}={value!r}",
                lambda tmp, make=make, arg=arg, value=value: make({arg: value}),
                "sizes[1]" if (arg, value) == ("sizes", [D, 0]) else arg)
for arg, value in [("channels", 0), ("eps", 0.0), ("momentum", 1.5), ("scale", -1.0)]:
    refused("nt.layers.TimeBatchNorm", f"{arg}={value!r}",
            lambda tmp, arg=arg, value=value: nt.layers.TimeBatchNorm(**{"channels": D, arg: value}), arg)
accepted("nt.layers.TimeBatchNorm", "statistics over time and batch: each channel centred",
         lambda tmp: nt.layers.TimeBatchNorm(D)(torch.rand(3, 2, 5, D) * 4 + 1),
         lambda y: bool(y.mean((0, 1, 2)).abs().max() < 1e-5))
propagates_nan("nt.layers.TimeBatchNorm", "a NaN entry",
               lambda tmp: nt.layers.TimeBatchNorm(D)(with_nan(torch.rand(2, 3, D))))
refused("nt.layers.activation", "spiking='yes'", lambda tmp: nt.layers.activation(spiking="yes"), "spiking")
refused("nt.layers.activation", "neuron='lif'", lambda tmp: nt.layers.activation("lif"), "neuron")
accepted("nt.layers.activation", "spiking=False: ReLU, neuron options ignored",
         lambda tmp: nt.layers.activation(lif(), spiking=False, beta=2.0), lambda m: isinstance(m, nn.ReLU))
accepted("nt.layers.activation", "a given neuron is copied", lambda tmp: (nt.layers.activation(n := lif()), n),
         lambda pair: pair[0] is not pair[1] and isinstance(pair[0], nt.LIF))
accepted("nt.layers.pool2d", "max over 2 x 2 windows of an odd image",
         lambda tmp: nt.layers.pool2d(torch.arange(9.0).view(1, 3, 3, 1), "max", 2),
         lambda y: y.flatten().tolist() == [4.0])
propagates_nan("nt.layers.pool2d", "a NaN pixel (avg)",
               lambda tmp: nt.layers.pool2d(with_nan(torch.rand(2, 4, 4, D)), "avg", 2))
accepted("nt.layers.conv_steps", "a current repeated over time equals the per-step convolution",
         lambda tmp: (lambda conv, x: (nt.layers.conv_steps(conv, x.expand(3, -1, -1, -1, -1)),
                                       nt.layers.conv_steps(conv, x.repeat(3, 1, 1, 1, 1))))(
             nn.Conv2d(D, 2, 3), torch.rand(1, 2, 4, 4, D)),
         lambda pair: pair[0].shape == (3, 2, 2, 2, 2) and torch.allclose(*pair))
propagates_nan("nt.layers.conv_steps", "a NaN entry",
               lambda tmp: nt.layers.conv_steps(nn.Conv2d(D, 2, 1), with_nan(torch.rand(2, 1, 2, 2, D))))
refused("nt.layers.SpikingConv2d", "an image smaller than the kernel",
        lambda tmp: nt.layers.SpikingConv2d(D, 2, 3)(torch.rand(1, 1, 2, 2, D)), "x")
accepted("nt.layers.SpikingConv2d", "numpy kernel and stride",
         lambda tmp: nt.layers.SpikingConv2d(D, 2, np.int64(3), stride=np.int64(1))(torch.rand(1, 1, 3, 3, D)),
         shape_is(1, 1, 1, 1, 2))


# ---- spike functions, surrogates, scan, neurons (library core) -----------------------------------

SPIKE_FUNCTIONS = {
    "binary": (nt.spikes.binary, "threshold", 1.0),
    "bernoulli": (nt.spikes.bernoulli, "threshold", 1.0),
    "ternary": (nt.spikes.ternary, "thresholds", (-1.0, 1.0)),
    "multilevel": (nt.spikes.multilevel, "thresholds", (1.0, 2.0)),
}
for fn, (f, arg, good) in SPIKE_FUNCTIONS.items():
    entry = f"nt.spikes.{fn}"
    scalar = arg == "threshold"
    refused(entry, "a list h", lambda tmp, f=f: f([0.5, 1.5]), "h")
    refused(entry, "complex h", lambda tmp, f=f: f(torch.ones(3, dtype=torch.cfloat)), "h")
    refused(entry, "surrogate='smooth'", lambda tmp, f=f: f(torch.rand(3), surrogate="smooth"), "surrogate")
    refused(entry, f"{arg}=nan", lambda tmp, f=f, arg=arg, scalar=scalar: f(
        torch.rand(3), **{arg: math.nan if scalar else (-math.nan, 1.0)}), arg)
    refused(entry, f"{arg}=inf", lambda tmp, f=f, arg=arg, scalar=scalar: f(
        torch.rand(3), **{arg: math.inf if scalar else (-1.0, math.inf)}), arg)
    refused(entry, f"{arg}='1'", lambda tmp, f=f, arg=arg: f(torch.rand(3), **{arg: "1"}), arg)
    propagates_nan(entry, "a NaN membrane", lambda tmp, f=f: f(torch.tensor([math.nan, 0.5])))
    accepted(entry, "an empty h", lambda tmp, f=f: f(torch.rand(0)), shape_is(0))
    accepted(entry, "a float64 h keeps its dtype", lambda tmp, f=f: f(torch.rand(3, dtype=torch.float64)),
             lambda s: s.dtype == torch.float64)
refused("nt.spikes.ternary", "thresholds not increasing", lambda tmp: nt.spikes.ternary(torch.rand(3), (1.0, -1.0)),
        "thresholds")
refused("nt.spikes.multilevel", "no thresholds", lambda tmp: nt.spikes.multilevel(torch.rand(3), ()), "thresholds")
refused("nt.spikes.bernoulli", "a generator of the wrong type",
        lambda tmp: nt.spikes.bernoulli(torch.rand(3), generator=0), "generator")
accepted("nt.spikes.binary", "threshold=np.float64(0.5)",
         lambda tmp: nt.spikes.binary(torch.tensor([0.4, 0.6]), np.float64(0.5)), lambda s: s.tolist() == [0.0, 1.0])
refused("nt.spikes.MultiLevel", "levels=1", lambda tmp: nt.spikes.MultiLevel(1), "levels")
refused("nt.spikes.MultiLevel", "levels=2.5", lambda tmp: nt.spikes.MultiLevel(2.5), "levels")
accepted("nt.spikes.MultiLevel", "levels=np.int64(3)", lambda tmp: nt.spikes.MultiLevel(np.int64(3)).bits,
         lambda bits: bits == 2)
refused("nt.spikes.Bernoulli", "grad='exact'", lambda tmp: nt.spikes.Bernoulli(grad="exact"), "grad")
accepted("nt.spikes.Binary", "a NaN membrane spikes NaN",
         lambda tmp: nt.spikes.Binary()(torch.tensor([math.nan]), 1.0, nt.surrogate.Atan()),
         lambda s: bool(s.isnan().all()))
accepted("nt.spikes.Ternary", "signed spikes",
         lambda tmp: nt.spikes.Ternary()(torch.tensor([-2.0, 0.0, 2.0]), 1.0, nt.surrogate.Atan()),
         lambda s: s.tolist() == [-1.0, 0.0, 1.0])
refused("nt.spikes.resolve_spike", "an unknown name", lambda tmp: nt.spikes.resolve_spike("spiky"), "spike")
refused("nt.spikes.resolve_spike", "a number", lambda tmp: nt.spikes.resolve_spike(3), "spike")
refused("nt.spikes.spike_config", "a number", lambda tmp: nt.spikes.spike_config(3), "spike")

for cls, arg in (("Atan", "alpha"), ("FastSigmoid", "slope"), ("Sigmoid", "slope"), ("StraightThrough", "scale"),
                 ("Triangle", "width")):
    make = getattr(nt.surrogate, cls)
    entry = f"nt.surrogate.{cls}"
    for bad in (0.0, -1.0, math.nan, math.inf, "2", True):
        refused(entry, f"{arg}={bad!r}", lambda tmp, make=make, bad=bad: make(bad), arg)
    accepted(entry, f"{arg}=np.float64(2.0)", lambda tmp, make=make: make(np.float64(2.0)),
             lambda s: isinstance(s, nt.surrogate.Surrogate))
refused("nt.surrogate.resolve", "an unknown name", lambda tmp: nt.surrogate.resolve("smooth"), "surrogate")
refused("nt.surrogate.resolve", "a dict naming nothing", lambda tmp: nt.surrogate.resolve({"alpha": 2.0}), "surrogate")
refused("nt.surrogate.resolve", "a number", lambda tmp: nt.surrogate.resolve(2.0), "surrogate")

SCAN = nt.scan.linear_scan
for method in ("sequential", "parallel", "chunked", "fft", "auto"):
    entry = "nt.scan.linear_scan"
    refused(entry, f"{method}: a list b", lambda tmp, m=method: SCAN(0.5, [1.0, 2.0], method=m), "b")
    refused(entry, f"{method}: dim=3 of a 2-d b", lambda tmp, m=method: SCAN(0.5, torch.rand(3, 2), dim=3, method=m),
            "dim")
    refused(entry, f"{method}: h0 of the wrong shape",
            lambda tmp, m=method: SCAN(0.5, torch.rand(3, 2), h0=torch.zeros(3), method=m), "h0")
    refused(entry, f"{method}: a of an unbroadcastable shape",
            lambda tmp, m=method: SCAN(torch.rand(3, 5), torch.rand(3, 2), method=m), "a")
    refused(entry, f"{method}: an int b", lambda tmp, m=method: SCAN(0.5, torch.ones(3, 2, dtype=torch.long), method=m),
            "b")
    propagates_nan(entry, f"{method}: a NaN input",
                   lambda tmp, m=method: SCAN(0.5, with_nan(torch.rand(4, 2)), method=m))
    accepted(entry, f"{method}: dim=np.int64(0)",
             lambda tmp, m=method: SCAN(0.5, torch.ones(3, 1), dim=np.int64(0), method=m),
             lambda h: torch.allclose(h[:, 0], torch.tensor([1.0, 1.5, 1.75])))
refused("nt.scan.linear_scan", "method='magic'", lambda tmp: SCAN(0.5, torch.rand(3), method="magic"), "method")
refused("nt.scan.linear_scan", "dim=True", lambda tmp: SCAN(0.5, torch.rand(3), dim=True), "dim")
refused("nt.scan.linear_scan", "an empty time axis", lambda tmp: SCAN(0.5, torch.rand(0, 2)), "b")

for cls, make, good in (("LIF", lambda **kw: nt.LIF(**{"backend": "sequential", **kw}), (3, 2, 4)),
                        ("ResonateFire", lambda **kw: nt.ResonateFire(**{"backend": "sequential", **kw}), (3, 2, 4))):
    entry = f"nt.{cls}"
    refused(entry, "x a list", lambda tmp, make=make: make()([[0.5]]), "x")
    refused(entry, "x 0-d", lambda tmp, make=make: make()(torch.tensor(1.0)), "x")
    refused(entry, "x complex", lambda tmp, make=make: make()(torch.ones(3, 2, dtype=torch.cfloat)), "x")
    refused(entry, "x with T = 0", lambda tmp, make=make: make()(torch.rand(0, 2)), "x")
    accepted(entry, "x an int tensor: float spikes as for the float input",
             lambda tmp, make=make: (make()(torch.full((3, 2), 2)), make()(torch.full((3, 2), 2.0))),
             lambda pair: pair[0].is_floating_point() and torch.equal(*pair))
    refused(entry, "state of the wrong shape", lambda tmp, make=make: make()(
        torch.rand(3, 2), nt.neurons.NPEState(torch.zeros(5), torch.zeros(5))), "state")
    refused(entry, "a string state", lambda tmp, make=make: make()(torch.rand(3, 2), "state"), "state")
    refused(entry, "threshold=nan", lambda tmp, make=make: make(threshold=math.nan), "threshold")
    refused(entry, "threshold=-1", lambda tmp, make=make: make(threshold=-1.0), "threshold")
    refused(entry, "threshold='1'", lambda tmp, make=make: make(threshold="1"), "threshold")
    refused(entry, "reset='soft'", lambda tmp, make=make: make(reset="soft"), "reset")
    refused(entry, "spike='spiky'", lambda tmp, make=make: make(spike="spiky"), "spike")
    refused(entry, "backend='gpu'", lambda tmp, make=make: make(backend="gpu"), "backend")
    refused(entry, "surrogate='smooth'", lambda tmp, make=make: make(surrogate="smooth"), "surrogate")
    propagates_nan(entry, "a NaN input", lambda tmp, make=make: make()(with_nan(torch.rand(good))))
    accepted(entry, "float64 input keeps float64", lambda tmp, make=make: make()(torch.rand(good, dtype=torch.float64)),
             lambda s: s.dtype == torch.float64 and s.shape == good)
refused("nt.LIF", "beta=1.5", lambda tmp: nt.LIF(beta=1.5), "beta")
refused("nt.LIF", "beta=nan", lambda tmp: nt.LIF(beta=math.nan), "beta")
refused("nt.LIF", "beta=True", lambda tmp: nt.LIF(beta=True), "beta")
refused("nt.LIF", "learn_beta='no'", lambda tmp: nt.LIF(learn_beta="no"), "learn_beta")
refused("nt.LIF", "per-channel beta of the wrong width",
        lambda tmp: nt.LIF(beta=torch.tensor([0.5, 0.9]))(torch.rand(3, 2, 5)), "beta")
accepted("nt.LIF", "beta=np.float64(0.5)", lambda tmp: nt.LIF(beta=np.float64(0.5))(torch.ones(2, 1)),
         lambda s: s.shape == (2, 1))
refused("nt.ResonateFire", "freq_hz above Nyquist", lambda tmp: nt.ResonateFire(freq_hz=600.0, dt_ms=1.0), "freq_hz")
refused("nt.ResonateFire", "tau_ms=0", lambda tmp: nt.ResonateFire(tau_ms=0.0), "tau_ms")
refused("nt.ResonateFire", "dt_ms=nan", lambda tmp: nt.ResonateFire(dt_ms=math.nan), "dt_ms")


# ---- encoders and decoders ----------------------------------------------------------------------------

ENCODERS = ("direct", "rate", "unary", "bernoulli", "positional", "first_spike", "multilevel")
for fn in ENCODERS:
    f = getattr(nt.encoding, fn)
    entry = f"nt.encoding.{fn}"
    x = lambda: torch.rand(2, 3)  # noqa: E731
    refused(entry, "T=0", lambda tmp, f=f: f(x(), 0), "T")
    refused(entry, "T=-2", lambda tmp, f=f: f(x(), -2), "T")
    refused(entry, "T=2.5", lambda tmp, f=f: f(x(), 2.5), "T")
    refused(entry, "T=True", lambda tmp, f=f: f(x(), True), "T")
    refused(entry, "T='4'", lambda tmp, f=f: f(x(), "4"), "T")
    refused(entry, "x a list", lambda tmp, f=f: f([0.5], 4), "x")
    refused(entry, "x complex", lambda tmp, f=f: f(torch.ones(2, dtype=torch.cfloat), 4), "x")
    accepted(entry, "T=np.int64(4)", lambda tmp, f=f: f(x(), np.int64(4)), lambda s: s.shape == (4, 2, 3))
    accepted(entry, "an empty x", lambda tmp, f=f: f(torch.rand(0, 3), 4), lambda s: s.shape == (4, 0, 3))
    if fn != "direct":
        refused(entry, "x outside [0, 1]", lambda tmp, f=f: f(torch.full((2,), 1.5), 4), "x")
refused("nt.encoding.encode", "an unknown name", lambda tmp: nt.encoding.encode("morse", torch.rand(2), 4), "encoding")
refused("nt.encoding.multilevel", "levels=1", lambda tmp: nt.encoding.multilevel(torch.rand(2), 4, levels=1), "levels")
refused("nt.encoding.positional", "T beyond what float32 counts exactly",
        lambda tmp: nt.encoding.positional(torch.rand(2), 200), "T")
for fn in ("decode_rate", "decode_positional", "decode_first_spike", "decode_multilevel"):
    f = getattr(nt.encoding, fn)
    entry = f"nt.encoding.{fn}"
    refused(entry, "T = 0 steps", lambda tmp, f=f: f(torch.zeros(0, 3)), "s")
    refused(entry, "a list", lambda tmp, f=f: f([[1.0]]), "s")
    refused(entry, "complex spikes", lambda tmp, f=f: f(torch.ones(2, 3, dtype=torch.cfloat)), "s")
    accepted(entry, "int spikes decode as floats", lambda tmp, f=f: f(torch.ones(2, 3, dtype=torch.long)),
             lambda y: y.is_floating_point() and y.shape == (3,))
refused("nt.encoding.decode_positional", "non-binary spikes",
        lambda tmp: nt.encoding.decode_positional(torch.full((2, 3), 0.5)), "s")
refused("nt.encoding.decode_multilevel", "levels=0", lambda tmp: nt.encoding.decode_multilevel(torch.ones(2, 3), 0),
        "levels")
propagates_nan("nt.encoding.decode_rate", "a NaN spike",
               lambda tmp: nt.encoding.decode_rate(with_nan(torch.ones(2, 3))))


# ---- accounting, model files, export ------------------------------------------------------------------

refused("nt.accounting.count", "a string model", lambda tmp: nt.accounting.count("model"), "model")
refused("nt.accounting.count", "an unknown profile", lambda tmp: nt.accounting.count(nn.Linear(2, 2), "cmos3"),
        "profile")
refused_path("nt.accounting.count", "a missing profile file",
             lambda tmp: nt.accounting.count(nn.Linear(2, 2), tmp / "none.toml"), "none.toml")
refused("nt.accounting.count", "dataflow='magic'", lambda tmp: nt.accounting.count(nn.Linear(2, 2), dataflow="magic"),
        "dataflow")
refused("nt.accounting.Counter", "a class for a model", lambda tmp: nt.accounting.Counter(nn.Linear), "model")
refused("nt.accounting.Counter", "per_inference before any call",
        lambda tmp: nt.accounting.Counter(nn.Linear(2, 2)).per_inference, "inferences")
refused("nt.accounting.Counter", "energy per token before any call",
        lambda tmp: nt.accounting.Counter(nn.Linear(2, 2)).energy_j_per_token, "tokens")
refused("nt.accounting.Counter", "report before any call", lambda tmp: nt.accounting.Counter(nn.Linear(2, 2)).report(),
        "inferences")


def counted(model, x):
    with nt.accounting.count(model) as c:
        model(x)
    return c


accepted("nt.accounting.count", "an empty batch counts nothing",
         lambda tmp: counted(nn.Linear(2, 2), torch.rand(0, 2)).totals["macs"], lambda n: n == 0)
accepted("nt.accounting.count", "a NaN input is counted (real: MACs)",
         lambda tmp: counted(nn.Linear(2, 2), with_nan(torch.rand(1, 2))).totals["macs"], lambda n: n == 4)


def saved(tmp: Path, **kw) -> Path:
    return nt.zoo.save_model(tmp / "m.safetensors", "SNNClassifier", {"in_features": 3, "hidden": [2], "classes": 2},
                             nt.models.SNNClassifier(3, (2,), 2), **kw)


refused("nt.zoo.save_model", "an unknown class name",
        lambda tmp: nt.zoo.save_model(tmp / "m.safetensors", "Nope", {}, nn.Linear(2, 2)), "name")
refused("nt.zoo.save_model", "kwargs not a dict",
        lambda tmp: nt.zoo.save_model(tmp / "m.safetensors", "SNNClassifier", [3], nt.models.SNNClassifier(3)),
        "kwargs")
refused("nt.zoo.save_model", "kwargs that rebuild another model",
        lambda tmp: nt.zoo.save_model(tmp / "m.safetensors", "SNNClassifier", {"in_features": 5},
                                      nt.models.SNNClassifier(3)), "kwargs")
refused("nt.zoo.save_model", "a model that is not a module",
        lambda tmp: nt.zoo.save_model(tmp / "m.safetensors", "SNNClassifier", {"in_features": 3}, "model"), "model")
refused_path("nt.zoo.save_model", "a folder as path",
             lambda tmp: nt.zoo.save_model(tmp, "SNNClassifier", {"in_features": 3}, nt.models.SNNClassifier(3)),
             "path")
refused_path("nt.zoo.load_model", "a missing file", lambda tmp: nt.zoo.load_model(tmp / "none.safetensors"),
             "none.safetensors")
refused_path("nt.zoo.load_model", "a folder", lambda tmp: nt.zoo.load_model(tmp), "{tmp}")
refused("nt.zoo.load_model", "a text file", lambda tmp: nt.zoo.load_model(
    (lambda p: (p.write_text("hello"), p)[1])(tmp / "m.safetensors")), "m.safetensors")
refused("nt.zoo.load_model", "a truncated file", lambda tmp: nt.zoo.load_model(
    (lambda p: (p.write_bytes(p.read_bytes()[:-7]), p)[1])(saved(tmp))), "m.safetensors")
refused("nt.zoo.load_model", "an int path", lambda tmp: nt.zoo.load_model(3), "path")
accepted("nt.zoo.load_model", "a saved model round-trips",
         lambda tmp: nt.zoo.load_model(saved(tmp))[0], lambda m: isinstance(m, nt.models.SNNClassifier))

refused("nt.export.to_nir", "a string model", lambda tmp: nt.export.to_nir("model"), "model")
refused("nt.export.to_nir", "a sample of the wrong width",
        lambda tmp: nt.export.to_nir(nt.models.SNNClassifier(3, (2,), 2), torch.rand(1, 4)), "sample")
refused("nt.export.to_nir", "dt=0", lambda tmp: nt.export.to_nir(nt.models.SNNClassifier(3, (2,), 2), dt=0.0), "dt")
refused("nt.export.to_nir", "a layer NIR has no node for",
        lambda tmp: nt.export.to_nir(nt.mixers.LinearAttention(4)), "LinearAttention")
refused("nt.export.export_model", "format='onnx'",
        lambda tmp: nt.export.export_model(nt.models.SNNClassifier(3, (2,), 2), tmp / "m.nir", format="onnx"), "format")
refused_path("nt.export.export_model", "a missing model file",
             lambda tmp: nt.export.export_model(tmp / "none.safetensors", tmp / "m.nir"), "none.safetensors")
refused("nt.export.export_model", "output over its own input",
        lambda tmp: (lambda p: nt.export.export_model(p, p))(saved(tmp)), "path")
refused_path("nt.export.export_model", "an existing output without force",
             lambda tmp: (lambda p, out: (out.write_text("keep"), nt.export.export_model(p, out)))(
                 saved(tmp), tmp / "out.nir"), "force")


# ---- data loaders, training, experiment configs ----------------------------------------------------------

for fn in ("cifar10", "nmnist", "dvs_gesture", "shd", "ssc", "speech_commands"):
    f = getattr(nt.data, fn)
    refused_path(f"nt.data.{fn}", "a missing root", lambda tmp, f=f: f(tmp / "none"), "none")
    refused_path(f"nt.data.{fn}", "a file as root",
                 lambda tmp, f=f: f((lambda p: (p.write_text("x"), p)[1])(tmp / "file")), "file")
    refused(f"nt.data.{fn}", "an int root", lambda tmp, f=f: f(3), "root")
for fn, arg in (("nmnist", "T"), ("dvs_gesture", "T"), ("shd", "T"), ("ssc", "T")):
    f = getattr(nt.data, fn)
    refused(f"nt.data.{fn}", f"{arg}=0", lambda tmp, f=f, arg=arg: f(tmp, **{arg: 0}), arg)
    refused(f"nt.data.{fn}", "T and bin_us both None", lambda tmp, f=f: f(tmp, T=None, bin_us=None), "bin_us")
refused("nt.data.ssc", "subset='train'", lambda tmp: nt.data.ssc(tmp, subset="train"), "subset")
refused("nt.data.speech_commands", "classes=11", lambda tmp: nt.data.speech_commands(tmp, classes=11), "classes")
refused("nt.data.keywords", "split='train'", lambda tmp: nt.data.keywords(split="train"), "split")
refused("nt.data.scenes", "n=0", lambda tmp: nt.data.scenes(0), "n")
refused("nt.data.pathfinder", "difficulty='medium'", lambda tmp: nt.data.pathfinder(4, difficulty="medium"),
        "difficulty")
refused("nt.data.docstring_modules", "k=99", lambda tmp: nt.data.docstring_modules(k=99), "k")
refused("nt.data.mask_bytes", "float ids", lambda tmp: nt.data.mask_bytes(torch.zeros(2, 3)), "ids")
refused_path("nt.data.text_corpus", "a missing file", lambda tmp: nt.data.text_corpus(tmp / "none.txt"), "none.txt")
refused("nt.data.text_corpus", "tokenizer='words'",
        lambda tmp: nt.data.text_corpus((lambda p: (p.write_text("abc" * 50), p)[1])(tmp / "t.txt"), "words"),
        "tokenizer")
refused("nt.data.text_corpus", "seq_len=0",
        lambda tmp: nt.data.text_corpus((lambda p: (p.write_text("abc" * 50), p)[1])(tmp / "t.txt"), seq_len=0),
        "seq_len")
refused("nt.data.load_digits", "test_fraction=1.5", lambda tmp: nt.data.load_digits(1.5), "test_fraction")
refused("nt.data.load_digits", "test_fraction=nan", lambda tmp: nt.data.load_digits(math.nan), "test_fraction")
refused("nt.data.load_listops", "n_train=0", lambda tmp: nt.data.load_listops(n_train=0), "n_train")
refused("nt.data.load_listops", "max_depth=True", lambda tmp: nt.data.load_listops(max_depth=True), "max_depth")
refused("nt.data.load_seq_digits", "test_fraction=0", lambda tmp: nt.data.load_seq_digits(test_fraction=0.0),
        "test_fraction")
refused("nt.data.load_text", "L=0", lambda tmp: nt.data.load_text(L=0), "L")
refused_path("nt.data.load_text", "a missing file", lambda tmp: nt.data.load_text(tmp / "none.txt"), "none.txt")
accepted("nt.data.load_listops", "numpy sizes",
         lambda tmp: nt.data.load_listops(n_train=np.int64(8), n_test=np.int64(4), max_length=np.int64(32)),
         lambda split: len(split.y_train) == 8)

FitConfig = nt.learning.FitConfig
for arg, bad in (("epochs", 0), ("epochs", 1.5), ("epochs", True), ("batch_size", 0), ("lr", math.nan), ("lr", -1.0),
                 ("weight_decay", -0.1), ("schedule", "linear-ish"), ("warmup_steps", -1), ("grad_clip", 0.0),
                 ("accumulate", 0), ("precision", "fp8"), ("keep_last", 0), ("num_workers", -1), ("device", 3)):
    refused("nt.learning.FitConfig", f"{arg}={bad!r}", lambda tmp, arg=arg, bad=bad: FitConfig(**{arg: bad}), arg)
accepted("nt.learning.FitConfig", "epochs=np.int64(2)", lambda tmp: FitConfig(epochs=np.int64(2)).epochs,
         lambda n: n == 2)
refused("nt.learning.Trainer", "a string model", lambda tmp: nt.learning.Trainer("model"), "model")
refused("nt.learning.Trainer", "a dict config", lambda tmp: nt.learning.Trainer(nn.Linear(2, 2), {"epochs": 1}),
        "config")


def fit(x, y, **kw):
    return nt.learning.Trainer(nn.Linear(3, 2), FitConfig(epochs=1, batch_size=4), **kw).fit(x, y)


refused("nt.learning.Trainer", "fit on empty data", lambda tmp: fit(torch.rand(0, 3), torch.zeros(0, dtype=torch.long)),
        "x")
refused("nt.learning.Trainer", "labels out of range", lambda tmp: fit(torch.rand(4, 3), torch.tensor([0, 1, 2, 5])),
        "y")
refused("nt.learning.Trainer", "labels of another length",
        lambda tmp: fit(torch.rand(4, 3), torch.zeros(3, dtype=torch.long)), "y")
refused("nt.learning.Trainer", "float labels for a classifier",
        lambda tmp: fit(torch.rand(4, 3), torch.rand(4)), "y")
refused("nt.learning.Trainer", "x a list", lambda tmp: fit([[0.0] * 3] * 4, torch.zeros(4, dtype=torch.long)), "x")
accepted("nt.learning.Trainer", "resume into a fresh folder simply starts",
         lambda tmp: nt.learning.Trainer(nn.Linear(3, 2), FitConfig(epochs=1, batch_size=4), run_dir=tmp / "new").fit(
             torch.rand(4, 3), torch.zeros(4, dtype=torch.long), resume=True), lambda losses: len(losses) == 1)

DIGITS = nt.experiments.DigitsSweep
refused("experiments.config.from_dict", "an unknown key", lambda tmp: xconfig.from_dict(DIGITS, {"nope": 1}), "nope")
refused("experiments.config.from_dict", "a wrong type", lambda tmp: xconfig.from_dict(DIGITS, {"Ts": "four"}), "Ts")
refused("experiments.config.from_dict", "fit.epochs=0", lambda tmp: xconfig.from_dict(DIGITS, {"fit": {"epochs": 0}}),
        "fit.epochs")
refused("experiments.config.from_dict", "an empty list", lambda tmp: xconfig.from_dict(DIGITS, {"Ts": []}), "Ts")
refused("experiments.config.from_dict", "an unknown encoding",
        lambda tmp: xconfig.from_dict(DIGITS, {"encodings": ["nope"]}), "encodings")
refused_path("experiments.config.load", "a missing file", lambda tmp: xconfig.load(DIGITS, tmp / "none.toml"),
             "none.toml")
refused_path("experiments.config.load", "a folder", lambda tmp: xconfig.load(DIGITS, tmp), "{tmp}")
refused("experiments.config.load", "a binary file",
        lambda tmp: xconfig.load(DIGITS, (lambda p: (p.write_bytes(b"\xff\xfe\x00\x01"), p)[1])(tmp / "bin.toml")),
        "bin.toml")
refused("experiments.config.load", "invalid TOML",
        lambda tmp: xconfig.load(DIGITS, (lambda p: (p.write_text("Ts = [1,"), p)[1])(tmp / "bad.toml")), "bad.toml")
refused("experiments.config.with_overrides", "no '=' in an assignment",
        lambda tmp: xconfig.with_overrides(DIGITS.quick(), ["fit.epochs"]), "fit.epochs")
refused("experiments.config.with_overrides", "an unknown key",
        lambda tmp: xconfig.with_overrides(DIGITS.quick(), ["fit.nope=1"]), "fit.nope")
refused("experiments.config.with_overrides", "beta=1.5",
        lambda tmp: xconfig.with_overrides(DIGITS.quick(), ["beta=1.5"]), "beta")
accepted("experiments.config.with_overrides", "a partial fit table keeps the other fit keys",
         lambda tmp: (xconfig.with_overrides(DIGITS.quick(), ["fit.epochs=3"]), DIGITS.quick()),
         lambda pair: pair[0].fit.epochs == 3 and pair[0].fit.lr == pair[1].fit.lr)
