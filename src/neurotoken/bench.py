"""Speed benchmarks behind ``neurotoken bench``: our paths and the peers' on the same inputs, in one
process. Each case reports the median time, the ratio to the best peer, and the fraction of the
memory-bandwidth bound: (bytes that must move) / (copy bandwidth measured here, by a tensor copy that
takes its turn among each case's functions, so it meets the same machine state). A peer row is what
a case compares against: another library (snnTorch, SpikingJelly, Norse), or our readable
reference where no library exists (the sequential scan loop, the float32 matmul, dense masked
attention). Peers and matplotlib are imported lazily; a peer that fails to import is skipped with
a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from . import _checks
from .neurons import LIF, NPEParams, npe_multistep
from .scan import choose, linear_scan
from .spikes import DEFAULT_SURROGATE, Binary

F32 = 4  # bytes per float32


def _sync(device: torch.device | str | None) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously; the CPU needs nothing)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


_BESIDE: list[tuple[Callable[[], object], int, list[float]]] = []  # set by copy_beside
COPY = "(copy beside)"


@contextlib.contextmanager
def copy_beside(nbytes: int, device="cpu"):
    """Within it, every :func:`time_fns` call also times a float32 copy of ``nbytes`` in its rotation
    (one more participant, so it meets the same machine state as the functions: the caches and
    frequency the heavy calls before it leave) and appends the bandwidth that copy reached (bytes/s,
    as :func:`copy_bandwidth`) to the list it yields."""
    src = torch.ones(nbytes // F32, device=device)
    dst = torch.empty_like(src)
    bandwidths: list[float] = []
    _BESIDE.append((lambda: dst.copy_(src), 2 * nbytes, bandwidths))
    try:
        yield bandwidths
    finally:
        _BESIDE.pop()


def time_fns(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, device=None,
             peaks: dict[str, int] | None = None) -> dict[str, float]:
    """Median wall time of each ``fns[name]()`` in seconds over ``repeats`` calls, after ``warmup``
    calls each; the calls take turns, so a change in the machine's load reaches every one alike, in a
    new (seeded) order each round, so none always runs right after the same one (a call right after a
    heavy one can take twice as long on this CPU); a function that makes gradients frees them before
    it returns, or the next one would pay for freeing them.
    On a CUDA ``device`` each call is timed to the end of its queued work, and ``peaks`` (when
    given) receives each function's peak allocated device memory in bytes over its first call."""
    cuda = device is not None and torch.device(device).type == "cuda"
    beside = _BESIDE[-1] if _BESIDE else None
    if beside is not None:
        fns = {**fns, COPY: beside[0]}
    for name, fn in fns.items():
        for i in range(warmup):
            if cuda and peaks is not None and i == 0:
                _sync(device)
                torch.cuda.reset_peak_memory_stats(device)
            fn()
            if cuda and peaks is not None and i == 0:
                _sync(device)
                peaks[name] = torch.cuda.max_memory_allocated(device)
    times = {name: [] for name in fns}
    order = random.Random(0)
    for _ in range(repeats):
        for name in order.sample(list(fns), len(fns)):
            fn = fns[name]
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    medians = {name: statistics.median(t) for name, t in times.items()}
    if beside is not None:
        beside[2].append(beside[1] / medians.pop(COPY))
        if peaks is not None:
            peaks.pop(COPY, None)
    return medians


def time_fn(fn: Callable[[], object], repeats: int = 7, warmup: int = 2, device=None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after ``warmup`` calls."""
    return time_fns({"fn": fn}, repeats, warmup, device)["fn"]


def copy_bandwidth(nbytes: int = 64 * 2**20, repeats: int = 7, device="cpu") -> float:
    """Measured memory bandwidth of ``device`` in bytes/s: a float32 tensor copy reads and writes
    nbytes each."""
    src = torch.ones(nbytes // F32, device=device)
    dst = torch.empty_like(src)
    return 2 * nbytes / time_fn(lambda: dst.copy_(src), repeats, device=device)


def saved_bytes_per_neuron_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """Bytes of the tensors autograd saves for backward while ``fn`` runs on x [T, ...] (T >= 2), per
    neuron and time step: the growth from x[:1] to x (each storage counted once), so per-neuron
    tensors (the initial state, per-neuron parameters) do not count."""
    def saved(x):
        storages = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x.detach().clone().requires_grad_())
        return sum(storages.values())
    return (saved(x) - saved(x[:1])) / (x[1:].numel())


def _peer_lifs(device="cpu") -> tuple[dict[str, Callable[[], Callable]], dict[str, str]]:
    """Factories of multi-step LIF callables x [T, B, N] -> spikes on ``device`` for each importable
    peer, and notes for the peers skipped. Each peer runs as its documentation shows (subtract/soft
    reset, ATan-type surrogate, theta = 1), SpikingJelly with the implementation it picks for the
    device (its Triton/CUDA kernels on a GPU, named in the row)."""
    peers, skipped = {}, {}
    try:
        import snntorch as snn

        def snntorch_leaky():
            lif = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract").to(device)

            def run(x):
                mem, spikes = lif.init_leaky(), []
                for x_t in x:
                    spk, mem = lif(x_t, mem)
                    spikes.append(spk)
                return torch.stack(spikes)
            return run
        peers["snntorch Leaky"] = snntorch_leaky
    except Exception as e:  # noqa: BLE001 - any import failure skips the peer
        skipped["snntorch"] = f"{type(e).__name__}: {e}"
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
        from spikingjelly.activation_based.functional import neuron as sj_functional

        def spikingjelly_lif():
            # SpikingJelly 2.0's LIFNode has no `backend` argument: it picks its kernel per device
            node = neuron.LIFNode(tau=10.0, v_threshold=1.0, v_reset=None, step_mode="m",
                                  surrogate_function=surrogate.ATan()).to(device)

            def run(x):
                functional.reset_net(node)
                return node(x)
            return run
        try:
            kernel = sj_functional.neuron_implementation("lif", torch.device(device))["implementation"]
        except Exception:  # noqa: BLE001 - older releases cannot say
            kernel = None
        peers["spikingjelly LIFNode" + (f" ({kernel})" if kernel else "")] = spikingjelly_lif
    except Exception as e:  # noqa: BLE001
        skipped["spikingjelly"] = f"{type(e).__name__}: {e}"
    try:
        import norse.torch as norse

        def norse_lif():
            lif = norse.LIF().to(device)
            return lambda x: lif(x)[0]
        peers["norse LIF"] = norse_lif
    except Exception as e:  # noqa: BLE001
        skipped["norse"] = f"{type(e).__name__}: {e}"
    return peers, skipped


def _triton_runs(device) -> bool:
    """Whether the Triton kernels run on ``device``: compiled on CUDA, interpreted on the CPU under
    ``TRITON_INTERPRET=1``."""
    from .kernels import triton

    return triton.unsupported(torch.empty(0, device=device)) is None


def _ours(device="cpu") -> dict[str, Callable[[], Callable]]:
    """Our multi-step LIFs for ``device``: the fused numba kernel on the CPU (float32, and bf16 states),
    the Triton kernel (float32, and bf16 states with bit spikes) where it runs, and the sequential
    reference."""
    p = NPEParams(0.9, 1.0)
    ours = {}
    if torch.device(device).type == "cpu":
        fused, fused_bf16 = (LIF(beta=0.9, backend="fused", state_dtype=d) for d in (torch.float32, torch.bfloat16))
        ours = {"neurotoken fused": lambda: fused, "neurotoken fused (bf16 state)": lambda: fused_bf16,
                "neurotoken fused (kernel only)": lambda: lambda x: npe_multistep(x, p, None, "fused", False)[0]}
    if _triton_runs(device):
        triton, lean = LIF(beta=0.9, backend="triton"), LIF(beta=0.9, backend="triton", state_dtype=torch.bfloat16)
        ours.update({"neurotoken triton": lambda: triton, "neurotoken triton (bf16 state, bit spikes)": lambda: lean})
    sequential = LIF(beta=0.9, backend="sequential")
    return {**ours, "neurotoken sequential": lambda: sequential}


def lif_cases(T: int = 64, B: int = 32, N: int = 2048, repeats: int = 7, peers: bool = True,
              device="cpu") -> tuple[list[dict], dict]:
    """Multi-step LIF (subtract reset, surrogate gradient), forward and forward+backward, on one
    input x [T, B, N] on ``device``. Must move: forward x in, s out (2 T B N floats);
    forward+backward also x, dL/ds in and dL/dx out (5 T B N floats). Forward+backward rows carry
    ``saved_bytes_per_neuron_step`` (what autograd keeps for backward) and, on CUDA, every row the
    peak device memory ``peak_bytes``."""
    x = 0.5 * torch.randn(T, B, N, generator=torch.Generator(device).manual_seed(0), device=device) + 0.3
    xg = x.clone().requires_grad_()
    grad_out = torch.ones_like(x)
    impls = _ours(device)
    skipped = {}
    if peers:
        found, skipped = _peer_lifs(device)
        impls.update(found)
    fns = {name: make() for name, make in impls.items()}
    rows = []
    for mode, floats in (("forward", 2), ("forward+backward", 5)):
        def run(fn, mode=mode):
            if mode == "forward":
                with torch.no_grad():
                    return fn(x)
            torch.autograd.backward(fn(xg), grad_out)
            xg.grad = None  # freed inside the timed call that made it (see time_fns)
        peaks = {}
        times = time_fns({name: (lambda fn=fn: run(fn)) for name, fn in fns.items()}, repeats, device=device,
                         peaks=peaks)
        for name, t in times.items():
            saved = {} if mode == "forward" else {
                "saved_bytes_per_neuron_step": saved_bytes_per_neuron_step(fns[name], x[:, :1])}
            rows.append({"case": f"LIF {mode} T={T} B={B} N={N}", "impl": name,
                         "peer": not name.startswith("neurotoken"), "median_s": t, "bytes": floats * T * B * N * F32,
                         "peak_bytes": peaks.get(name), **saved})
    return rows, skipped


def scan_cases(L: int = 4096, B: int = 8, D: int = 256, repeats: int = 5, methods=None, device="cpu") -> list[dict]:
    """Reset-free spiking SSM layer, s = spike(h) with h_t = a h_{t-1} + b_t along L (a per channel),
    forward+backward: linear_scan by each method on tokens b [B, L, D], then the torch spike function
    (the sequential loop is the peer; the auto row names the method it picked), and the whole layer
    in the fused LIF kernel (reset none) on the same values time-leading [L, B, D], its layout.
    ``methods`` None: sequential, parallel, the device's kernel (fused on the CPU, triton on CUDA)
    and auto. Must move: b in, s out, dL/ds in, dL/db out (4 B L D floats)."""
    kernel = "fused" if torch.device(device).type == "cpu" else "triton"
    methods = ("sequential", "parallel", kernel, "auto") if methods is None else methods
    g = torch.Generator(device).manual_seed(0)
    b = torch.randn(B, L, D, generator=g, device=device).requires_grad_()
    b_time = b.detach().transpose(0, 1).contiguous().requires_grad_()
    a = 0.5 + 0.5 * torch.rand(D, generator=g, device=device)
    spike, case = Binary(), f"reset-free spiking SSM fwd+bwd L={L} B={B} D={D}"

    def scan(method):
        def run():
            spike(linear_scan(a, b, dim=1, method=method), 1.0, DEFAULT_SURROGATE).sum().backward()
            b.grad = None
        return run

    def fused():
        npe_multistep(b_time, NPEParams(a, 1.0, "none"), None, kernel, all_states=False)[0].sum().backward()
        b_time.grad = None
    auto = choose(b, 1)
    runs = {f"linear_scan {m}" + (f" (picks {auto})" if m == "auto" else "") + " + spike": scan(m) for m in methods}
    runs[f"neurotoken {kernel} LIF (reset none)"] = fused
    peaks = {}
    times = time_fns(runs, repeats, device=device, peaks=peaks)
    return [{"case": case, "impl": name, "peer": name == "linear_scan sequential + spike", "median_s": t,
             "bytes": 4 * B * L * D * F32, "peak_bytes": peaks.get(name)} for name, t in times.items()]


def selective_scan_cases(B: int = 2, L: int = 512, D: int = 256, N: int = 16, repeats: int = 5, methods=None,
                         device="cpu") -> list[dict]:
    """Mamba's selective scan (``selective_scan``, eq. (16)-(17)) on x, delta [B, L, D], A [D, N], k, q
    [B, L, N], forward and forward+backward (gradients of every input), by each of ``methods`` (None:
    sequential, the peer, parallel, auto (the fused scan on the CPU), and triton where it runs). Must move in float32: forward the
    inputs in, y and the last state out (3 B L D + 2 B L N + D N + B D N floats); forward+backward also
    dL/dy in and the inputs' gradients out (6 B L D + 4 B L N + 2 D N + B D N floats)."""
    from .mixers.ssm import selective_scan

    if methods is None:
        methods = ("sequential", "parallel", "auto") + (("triton",) if _triton_runs(device) else ())
    g = torch.Generator(device).manual_seed(0)
    x = torch.randn(B, L, D, generator=g, device=device)
    delta = torch.nn.functional.softplus(torch.randn(B, L, D, generator=g, device=device) - 2)
    A = 0.5 + torch.rand(D, N, generator=g, device=device)
    k, q = (torch.randn(B, L, N, generator=g, device=device) / N ** 0.5 for _ in range(2))
    inputs = [t.requires_grad_() for t in (x, delta, A, k, q)]
    rows = []
    for mode, floats in (("forward", 3 * B * L * D + 2 * B * L * N + D * N + B * D * N),
                         ("forward+backward", 6 * B * L * D + 4 * B * L * N + 2 * D * N + B * D * N)):
        def run(method, mode=mode):
            def go():
                if mode == "forward":
                    with torch.no_grad():
                        return selective_scan(*inputs, method=method)
                y, last = selective_scan(*inputs, method=method)
                torch.autograd.backward((y, last), (torch.ones_like(y), torch.ones_like(last)))
                for t in inputs:
                    t.grad = None
            return go
        peaks = {}
        times = time_fns({f"selective_scan {m}": run(m) for m in methods}, repeats, device=device, peaks=peaks)
        rows += [{"case": f"selective scan {mode} B={B} L={L} D={D} N={N}", "impl": name,
                  "peer": name == "selective_scan sequential", "median_s": t, "bytes": floats * F32,
                  "peak_bytes": peaks.get(name)} for name, t in times.items()]
    return rows


def attention_cases(B: int = 8, H: int = 4, L: int = 512, bits: int = 256, sparse_L: int = 4096, d: int = 64,
                    density: float = 0.01, repeats: int = 5, device="cpu") -> list[dict]:
    """Binary AND attention scores of q, k [B, H, L, bits] (bits = tau x d_head): bit-packed popcount
    scores (on the CPU the numba kernel on packed inputs, and with packing; on CUDA the Triton kernel,
    with packing) vs the float32 matmul of the spikes; must move: packed q, k in, float32 scores out.
    On the CPU also softmax attention at one head over a causal local window of ~density L keys per
    query: event-driven gather/scatter vs dense masked; must move: q, k, v in, out, one index per pair
    (on CUDA the blocksparse case times sparse attention)."""
    import numpy as np

    from .kernels import bitpack
    from .kernels._popcount_numba import popcount_scores
    from .mixers import attention, sparse

    g = torch.Generator(device).manual_seed(0)
    q, k = ((torch.rand(B, H, L, bits, generator=g, device=device) < 0.2).float() for _ in range(2))
    case = f"AND scores B={B} H={H} L={L} bits={bits}"
    score_bytes = B * H * (L * L * F32 + 2 * L * bits // 8)
    runs = {"torch float32 matmul": lambda: q @ k.transpose(-1, -2)}
    if torch.device(device).type == "cpu":
        packed, packed_t = bitpack.pack_bits(q), np.ascontiguousarray(bitpack.pack_bits(k).transpose(0, 2, 1))
        out = np.empty((B * H, L, L), dtype=np.float32)
        runs["neurotoken bitpack popcount kernel"] = lambda: popcount_scores(packed, packed_t, False, bits, out)
        runs["neurotoken bitpack (with packing)"] = lambda: bitpack.packed_scores(q, k)
    else:
        runs["neurotoken bitpack triton (with packing)"] = lambda: bitpack.packed_scores(q, k)
    peaks = {}
    rows = [{"case": case, "impl": name, "peer": name.startswith("torch"), "median_s": t, "bytes": score_bytes,
             "peak_bytes": peaks.get(name)}
            for name, t in time_fns(runs, repeats, device=device, peaks=peaks).items()]
    if torch.device(device).type != "cpu":
        return rows
    mask = sparse.local(sparse_L, max(1, round(density * sparse_L)))
    pattern = sparse.to_csr(mask)
    qs, ks, vs = torch.randn(3, 1, sparse_L, d, generator=g).unbind(0)
    case = f"sparse attention L={sparse_L} d={d} pairs={pattern.nnz}"
    runs = {"torch dense masked softmax": lambda: attention.softmax_attention(qs, ks, vs, mask),
            "neurotoken event-driven": lambda: sparse.sparse_attention(qs, ks, vs, pattern)}
    return rows + [{"case": case, "impl": name, "peer": name.startswith("torch"), "median_s": time_fn(run, repeats),
                    "bytes": 4 * sparse_L * d * F32 + pattern.nnz * 8} for name, run in runs.items()]


def _neighbour_gather(q, k, v, window: int, block: int = 64):
    """The plain torch baseline for a causal local window (<= block + 1 keys): each query block
    attends its own and the previous key block, gathered as overlapping views, masked, softmaxed."""
    import math

    import torch.nn.functional as F

    L = q.shape[-2]
    n = -(-L // block)
    pad = n * block - L
    qb = F.pad(q, (0, 0, 0, pad)).unflatten(-2, (n, block)) / math.sqrt(q.shape[-1])
    kb, vb = (F.pad(t, (0, 0, block, pad)).unfold(-2, 2 * block, block).transpose(-1, -2) for t in (k, v))
    i = torch.arange(n * block, device=q.device).view(n, block, 1)
    j = (torch.arange(n, device=q.device) * block - block).view(n, 1, 1) + torch.arange(2 * block, device=q.device)
    s = (qb @ kb.transpose(-1, -2)).masked_fill(~((j <= i) & (i - j < window) & (j >= 0)), -math.inf)
    return (torch.softmax(s, -1) @ vb).flatten(-3, -2)[..., :L, :]


def blocksparse_cases(L: int = 4096, d: int = 64, window: int = 41, stride: int = 44, fixed_block: int = 64,
                      blocks: tuple[int, int, int] = (16, 32, 64), repeats: int = 5, device="cpu") -> list[dict]:
    """Softmax attention (one head, q, k, v [1, L, d]) over causal local, strided and fixed patterns,
    forward and forward+backward: the block-sparse path (tiles of ``blocks`` per pattern, strided and
    fixed in their residue-permuted layout) vs dense masked attention and, for the local window, a
    plain torch gather of neighbouring key blocks; off the CPU also torch's fused SDPA with the mask.
    Must move: q, k, v in, out (4 L d floats; twice that with gradients). Rows of ours carry
    ``vs_dense``, the ratio to dense masked attention."""
    import torch.nn.functional as F

    from .mixers import attention, blocksparse, sparse

    g = torch.Generator(device).manual_seed(0)
    q, k, v = (torch.randn(1, L, d, generator=g, device=device).requires_grad_() for _ in range(3))
    patterns = {f"local window={window}": (sparse.local(L, window), None, blocks[0]),
                f"strided stride={stride}": (sparse.strided(L, stride), stride, blocks[1]),
                f"fixed block={fixed_block}": (sparse.fixed(L, fixed_block), fixed_block, blocks[2])}
    rows = []
    for name, (mask, period, block) in patterns.items():
        tiles = blocksparse.plan(mask, block, period).to(device)
        mask = mask.to(device)
        impls = {"torch dense masked softmax": lambda a, b, c: attention.softmax_attention(a, b, c, mask),
                 f"neurotoken block-sparse (block {block})":
                     lambda a, b, c: blocksparse.block_sparse_attention(a, b, c, tiles)}
        if name.startswith("local") and window <= 65:
            impls["torch gather of neighbouring key blocks"] = lambda a, b, c: _neighbour_gather(a, b, c, window)
        if torch.device(device).type != "cpu":
            impls["torch SDPA (masked)"] = lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask)
        for mode, floats in (("forward", 4), ("forward+backward", 8)):
            case = f"block-sparse attention {mode} {name} L={L} d={d} density={float(mask.float().mean()):.2%}"
            runs = {}
            for impl, fn in impls.items():
                def run(fn=fn, mode=mode):
                    if mode == "forward":
                        with torch.no_grad():
                            return fn(q, k, v)
                    fn(q, k, v).sum().backward()
                    q.grad = k.grad = v.grad = None
                runs[impl] = run
            peaks = {}
            times = time_fns(runs, repeats, device=device, peaks=peaks)
            dense = times["torch dense masked softmax"]
            rows += [{"case": case, "impl": impl, "peer": impl.startswith("torch"), "median_s": t,
                      "bytes": floats * L * d * F32, "peak_bytes": peaks.get(impl),
                      **({} if impl.startswith("torch") else {"vs_dense": dense / t})}
                     for impl, t in times.items()]
    return rows


def reset_cases(T: int = 64, B: int = 32, N: int = 256, repeats: int = 5) -> list[dict]:
    """LIF with the reset kept (subtract), forward+backward: sequential BPTT, fused kernel, and the
    parallel fixed-point iteration (exact: same spikes and gradients, ``iterations`` scans).
    Must move: x in, s out, dL/ds in, dL/dx out (4 T B N floats)."""
    from .mixers.spiking_ssm import lif_fixed_point

    g = torch.Generator().manual_seed(0)
    x = (0.6 * torch.rand(T, B, N, generator=g)).requires_grad_()
    p = NPEParams(0.9, 1.0, "subtract")
    case = f"LIF subtract reset fwd+bwd T={T} B={B} N={N}"
    with torch.no_grad():
        spikes, _, iterations = lif_fixed_point(x, p)

    def run(backend):
        def go():
            s = lif_fixed_point(x, p)[0] if backend == "fixed_point" else npe_multistep(x, p, None, backend)[0]
            s.sum().backward()
            x.grad = None
        return go
    extra = {"iterations": iterations, "spike_rate": spikes.mean().item()}
    return [{"case": case, "impl": f"neurotoken {b}", "peer": False, "median_s": time_fn(run(b), repeats),
             "bytes": 4 * T * B * N * F32, **extra} for b in ("sequential", "fused", "fixed_point")]


def _spikes(shape: tuple[int, ...], rate: float, generator: torch.Generator) -> torch.Tensor:
    """Binary spikes of ``shape`` on the generator's device, each 1 with probability ``rate``."""
    return (torch.rand(shape, generator=generator, device=generator.device) < rate).float()


def event_linear_cases(M: int = 2048, K: int = 1024, N: int = 1024, rates=(0.01, 0.05, 0.1, 0.2),
                       mask_rate: float = 0.05, repeats: int = 5, device="cpu") -> list[dict]:
    """y = x W^T + b on binary spikes x [M, K] at each rate, W [N, K]: forward, and forward+backward
    with no input gradient (a first layer), the exact dense one, and one sparse where a narrow
    surrogate is non-zero (``mask_rate`` of the inputs); the event-driven kernel and the auto chooser
    vs the dense product (and torch's CSR product, forward). Must move: x, W in, y out (and their
    gradients). Rows of ours carry ``vs_dense``, the ratio to the dense product."""
    from .kernels.event_linear import EventLinear, dense_linear, event_linear

    g = torch.Generator(device).manual_seed(0)
    auto = EventLinear(K, N, device=device)
    weight, bias = auto.weight, auto.bias
    rows = []
    for rate in rates:
        x = _spikes((M, K), rate, g)
        mask = torch.rand(M, K, generator=g, device=device) < mask_rate
        impls = {"torch dense": lambda x, **kw: dense_linear(x, weight, bias),
                 "neurotoken event": lambda x, **kw: event_linear(x, weight, bias, **kw),
                 "neurotoken auto": lambda x, **kw: auto(x)}
        modes = {"forward": (x, {}), "fwd+bwd, no input grad": (x, {}),
                 "fwd+bwd, exact input grad": (x.clone().requires_grad_(), {}),
                 f"fwd+bwd, input grad in a {mask_rate:.0%} mask": (x.clone().requires_grad_(), {"grad_mask": mask})}
        for mode, (xin, kw) in modes.items():
            case, runs = f"event linear {mode} M={M} K={K} N={N} rate={rate:.0%}", {}
            for impl, fn in impls.items():
                if kw and impl == "neurotoken auto":
                    continue  # the chooser computes the exact input gradient

                def run(fn=fn, xin=xin, kw=kw, mode=mode):
                    if mode == "forward":
                        with torch.no_grad():
                            return fn(xin)
                    y = fn(xin, **kw)
                    y.backward(torch.ones_like(y))
                    weight.grad = bias.grad = xin.grad = None
                runs[impl] = run
            if mode == "forward":
                def csr(x=x):
                    with torch.no_grad(), warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                        return x.to_sparse_csr() @ weight.T + bias
                runs["torch sparse CSR (with the conversion)"] = csr
            peaks = {}
            times = time_fns(runs, repeats, device=device, peaks=peaks)
            floats = (M * K + N * K + M * N) * (1 if mode == "forward" else 2)
            rows += [{"case": case, "impl": impl, "peer": impl.startswith("torch"), "median_s": t, "bytes": floats * F32,
                      "peak_bytes": peaks.get(impl),
                      **({} if impl.startswith("torch") else {"vs_dense": times["torch dense"] / t})}
                     for impl, t in times.items()]
    return rows


class _Multistep(torch.nn.Module):
    """A peer's multi-step LIF callable x [T, ...] -> spikes as a module."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def snn_step_cases(T: int = 16, B: int = 128, sizes=(784, 1024, 1024, 10), rate: float = 0.075, gain: float = 4.0,
                   repeats: int = 5, peers: bool = True, device="cpu") -> tuple[list[dict], dict]:
    """One SGD training step (forward, cross-entropy of the rate-decoded readout, backward, update) of
    a LIF SNN ``sizes`` on binary input spikes [T, B, sizes[0]] at ``rate``: ours (SpikingLinear with
    the event chooser, our LIF), our dense path, and each importable peer's LIF between torch Linear
    layers. Every network starts from the same weights (the default initialisation times ``gain``, so
    the hidden layers fire sparsely, as trained ones do); the rows carry the hidden layers' spike rates.
    Must move: the weights and their gradients, the activations of every layer (read and written)."""
    from torch import nn

    from .kernels.event_linear import EventLinear
    from .layers import SpikingLinear

    g = torch.Generator(device).manual_seed(0)
    x, labels = _spikes((T, B, sizes[0]), rate, g), torch.randint(sizes[-1], (B,), generator=g, device=device)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]

    def ours(backend):
        return nn.Sequential(*(SpikingLinear(a, b, beta=0.9, linear_backend=backend) for a, b in zip(sizes, sizes[1:-1])),
                             EventLinear(sizes[-2], sizes[-1], backend=backend))

    def peer(make_lif):
        layers = [nn.Linear(sizes[0], sizes[1])]
        for a, b in zip(sizes[1:], sizes[2:]):
            layers += [_Multistep(make_lif()), nn.Linear(a, b)]
        return nn.Sequential(*layers)
    nets = {"neurotoken (event chooser)": ours("auto"), "neurotoken dense": ours("dense")}
    skipped = {}
    if peers:
        found, skipped = _peer_lifs(device)
        nets.update({name.split()[0]: peer(make) for name, make in found.items()})
    nets = {name: net.to(device) for name, net in nets.items()}
    with torch.no_grad():
        for linear in reference:
            linear.weight.mul_(gain)
        for net in nets.values():
            for linear, ref in zip((m for m in net.modules() if isinstance(m, nn.Linear)), reference):
                linear.load_state_dict(ref.state_dict())
        hidden = nets["neurotoken dense"][:-1]
        rates = [round(hidden[:i + 1](x).mean().item(), 4) for i in range(len(hidden))]
    case = f"SNN training step {'-'.join(map(str, sizes))} T={T} B={B} input rate={rate:.1%}"
    params = sum(p.numel() for p in nets["neurotoken dense"].parameters())
    activations = T * B * sum(sizes)
    steps = {}
    for name, net in nets.items():
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)

        def step(net=net, opt=opt):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x).mean(0), labels).backward()
            opt.step()
        steps[name] = step
    peaks = {}
    return [{"case": case, "impl": name, "peer": not name.startswith("neurotoken"), "median_s": t,
             "bytes": (3 * params + 4 * activations) * F32, "hidden_spike_rates": rates, "peak_bytes": peaks.get(name)}
            for name, t in time_fns(steps, repeats, device=device, peaks=peaks).items()], skipped


def summarise(rows: list[dict], bandwidth: float) -> list[dict]:
    """Add per row: ratio to the best peer of its case (peer time / our time; > 1 means faster),
    and the fraction of the bandwidth bound (bytes / bandwidth / time), with the row's own
    ``copy_Bps`` (a copy timed in its case's rotations) where it has one, else ``bandwidth``."""
    for row in rows:
        peer_times = [r["median_s"] for r in rows if r["case"] == row["case"] and r["peer"]]
        row["vs_best_peer"] = min(peer_times) / row["median_s"] if peer_times else None
        row["bound_s"] = row["bytes"] / row.get("copy_Bps", bandwidth)
        row["fraction_of_bound"] = row["bound_s"] / row["median_s"]
    return rows


CASES = ("lif", "scan", "selective-scan", "reset", "attention", "blocksparse", "event-linear", "snn-step")
GPU_CASES = ("lif", "scan", "selective-scan", "blocksparse", "attention", "event-linear", "snn-step")  # in priority order
QUICK = {"lif": dict(T=8, B=2, N=64), "scan": [dict(L=128, B=2, D=16)], "selective-scan": dict(B=2, L=33, D=8, N=4),
         "reset": dict(T=8, B=2, N=16),
         "attention": dict(B=1, H=1, L=32, bits=64, sparse_L=128, d=8, density=0.1),
         "blocksparse": dict(L=100, d=8, window=5, stride=6, fixed_block=16, blocks=(16, 16, 16)),
         "event-linear": dict(M=64, K=48, N=32, rates=(0.05, 0.5)), "snn-step": dict(T=2, B=4, sizes=(20, 16, 16, 3))}
CPU_SIZES = {"lif": dict(T=64, B=32, N=2048), "scan": [dict(L=4096, B=8, D=256), dict(L=64, B=8, D=256)],
             "selective-scan": dict(B=2, L=512, D=256, N=16)}
GPU_SIZES = {"lif": dict(T=64, B=64, N=65536), "scan": [dict(L=4096, B=8, D=4096)],
             "selective-scan": dict(B=8, L=2048, D=1536, N=16), "attention": dict(B=1, H=32, L=4096, bits=256),
             "blocksparse": dict(L=16384, d=64, window=819, stride=20, fixed_block=1024, blocks=(64, 64, 64)),
             "event-linear": dict(M=16384, K=4096, N=4096), "snn-step": dict(T=16, B=1024)}


def _device(device) -> torch.device:
    """``device`` as a torch.device this machine has (cpu or cuda[:N]), else ValueError naming it."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: no CUDA device here (torch.cuda.is_available() is False)")
    return device


def run_all(quick: bool = False, repeats: int = 7, peers: bool = True, cases: tuple[str, ...] | None = None,
            device="cpu") -> dict:
    """The chosen ``cases`` (None: every one that runs on ``device``) at full sizes for the device
    (``quick``: tiny sizes, for tests), with the device's copy bandwidth measured in the same run:
    on the CPU each case's bounds use the median of the copies timed beside its functions
    (:func:`copy_beside`; the row's ``copy_Bps``: this machine's bandwidth drifts within a run), and
    ``copy_bandwidth_Bps`` is the median over all cases; ``copy_bandwidth_alone_Bps`` is a copy
    timed alone before them (the bounds' bandwidth on CUDA)."""
    device = _device(device)
    allowed = CASES if device.type == "cpu" else GPU_CASES
    cases = allowed if cases is None else cases
    for i, case in enumerate(cases):
        _checks.choice(f"cases[{i}]", case, allowed)
    full = CPU_SIZES if device.type == "cpu" else GPU_SIZES
    sizes = QUICK if quick else {case: full.get(case, {}) for case in CASES}
    nbytes = 2**20 if quick else 64 * 2**20 if device.type == "cpu" else 2**30
    alone = copy_bandwidth(nbytes, repeats, device)
    on = dict(repeats=repeats, device=device)
    cpu = device.type == "cpu"  # on CUDA the copy's buffers would count in every row's peak memory
    runners = {
        "lif": lambda: lif_cases(**sizes["lif"], peers=peers, **on),
        "scan": lambda: ([row for size in sizes["scan"] for row in scan_cases(**size, **on)], {}),
        "selective-scan": lambda: (selective_scan_cases(**sizes["selective-scan"], **on), {}),
        "reset": lambda: (reset_cases(**sizes["reset"], repeats=repeats), {}),
        "attention": lambda: (attention_cases(**sizes["attention"], **on), {}),
        "blocksparse": lambda: (blocksparse_cases(**sizes["blocksparse"], **on), {}),
        "event-linear": lambda: (event_linear_cases(**sizes["event-linear"], **on), {}),
        "snn-step": lambda: snn_step_cases(**sizes["snn-step"], peers=peers, **on)}
    rows, skipped = [], {}
    with copy_beside(nbytes, device) if cpu else contextlib.nullcontext([]) as beside:
        for case in (c for c in allowed if c in cases):  # on CUDA in priority order
            first = len(beside)
            case_rows, case_skipped = runners[case]()
            for row in case_rows if len(beside) > first else ():
                row["copy_Bps"] = statistics.median(beside[first:])  # the copies timed in this case's rotations
            rows += case_rows
            skipped.update(case_skipped)
    bandwidth = statistics.median(beside) if beside else alone
    machine = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg(),
               "device": str(device), "copy_bandwidth_Bps": bandwidth, "copy_bandwidth_alone_Bps": alone}
    rows = summarise(rows, bandwidth)
    if device.type == "cuda":
        machine["device_name"] = torch.cuda.get_device_name(device)
    return {"machine": machine, "skipped_peers": skipped, "rows": rows}


def save(results: dict, out: Path) -> tuple[Path, Path]:
    """Write results.json and a bar chart results.png (median ms per implementation, per case)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / "results.json", out / "results.png"
    json_path.write_text(json.dumps(results, indent=2))
    cases = list(dict.fromkeys(r["case"] for r in results["rows"]))
    fig, axes = plt.subplots(len(cases), 1, figsize=(9, 2.2 * len(cases)), squeeze=False)
    for ax, case in zip(axes[:, 0], cases):
        rows = [r for r in results["rows"] if r["case"] == case]
        ax.barh([r["impl"] for r in rows], [1e3 * r["median_s"] for r in rows],
                color=["tab:gray" if r["peer"] else "tab:blue" for r in rows])
        ax.axvline(1e3 * rows[0]["bound_s"], color="tab:red", linestyle="--", label="bandwidth bound")
        ax.set_xscale("log")
        ax.set_title(case, fontsize=9)
        ax.set_xlabel("median ms (log)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return json_path, png_path
