"""numba kernels for the fused multi-step LIF (imported lazily by :mod:`neurotoken.kernels.lif`).

Eq. (9)-(10) per neuron, one pass over time, float32, arrays flattened to [T, M]:

    h_t = beta h_{t-1} + x_t - theta s_{t-1}           (reset 0: subtract)
    h_t = beta h_{t-1} [s_{t-1} = 0] + x_t             (reset 1: zero; the mask is not differentiated)
    h_t = beta h_{t-1} + x_t                           (reset 2: none)
    s_t = sum_{k=1}^{K-1} H(h_t - k theta) - neg H(-theta - h_t)
        binary: K = 2, neg = 0;  ternary: K = 2, neg = 1;  multilevel: K levels, neg = 0

Each worker thread (prange) owns a slab of neurons and keeps only their membranes in its own array
(the previous spike is recomputed from the membrane, beta and theta shared by all are two numbers:
per-neuron arrays beside the states pushed the working set out of L2 and slowed every step);
time is the outer loop and every row of the slab streams front to back (walking [T, M] in column
blocks with time inside costs about twice as much: each block row sits on another page). Reset,
spike kind, surrogate formula and whether to differentiate beta, theta are closure constants of the
kernel that :func:`forward` / :func:`backward` build (one per combination, cached in memory and on
disk); optional arrays are None and shared beta, theta scalars (each its own compiled
specialisation, so only these vary), so each time step is one branch-free loop over slab views
indexed from 0 (an offset index would keep numba's negative-index check and stop vectorisation)
that LLVM vectorises.
The float operations are those of :func:`neurotoken.neurons.npe_step` in the same order, so
membranes are bit-identical to the reference. With gradients, forward writes every state h_t;
backward reads them (spikes recomputed from them, or read where only a bf16 state is kept and the
reset or a learnable parameter needs them) and runs the adjoint recurrence backwards in time.
``error_model="numpy"`` drops Python's zero-division checks, which would otherwise stop the
surrogate loops from vectorising.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import textwrap

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload, register_jitable

from .. import surrogate as _surrogate


@njit(inline="always")
def _spike(h, th, neg, levels):
    """s_t of the module docstring, in the reference's float32 comparisons (h - k theta >= 0); NaN
    where h is NaN, as the reference."""
    s = np.float32(h - th >= 0)
    for k in range(2, levels):
        s += np.float32(h - np.float32(k) * th >= 0)
    if neg:
        s -= np.float32(-th - h >= 0)
    return s if h == h else h


@overload(_surrogate.exp)
def _exp(x):
    """The surrogate formulas' exp, compiled as the scalar exp."""
    return lambda x: math.exp(x)


class _Float32(ast.NodeTransformer):
    """Wraps every number in a formula (literals, and global numbers such as math.pi) in np.float32: numba
    types a Python number as float64 and would widen the kernel's float32 arithmetic to it."""

    def __init__(self, scope: dict, local: set[str]):
        self.scope, self.local = scope, local

    def _wrap(self, node):
        return ast.copy_location(ast.Call(ast.Name("_float32", ast.Load()), [node], []), node)

    def visit_Constant(self, node):
        return self._wrap(node) if type(node.value) in (int, float) else node

    def visit_Name(self, node):
        global_number = node.id not in self.local and type(self.scope.get(node.id)) in (int, float)
        return self._wrap(node) if global_number else node

    def visit_Attribute(self, node):  # module.constant, e.g. math.pi
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id not in self.local and root.id in self.scope:
            if type(eval(ast.unparse(node), self.scope)) in (int, float):
                return self._wrap(node)
        return node


@functools.cache
def formula(surrogate: type):
    """A surrogate class's ``formula(x, w)`` in float32 (see :class:`_Float32`), callable from the
    kernels and inlined (a plain function keeps numba's disk cache valid across processes, which a
    compiled one in a closure would not)."""
    fn = surrogate.formula
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    tree.body[0].decorator_list = []
    scope = {**fn.__globals__, "_float32": np.float32}
    local = {a.arg for a in tree.body[0].args.args} | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                                                       and isinstance(n.ctx, ast.Store)}
    tree = ast.fix_missing_locations(_Float32(scope, local).visit(tree))
    exec(compile(tree, inspect.getsourcefile(fn), "exec"), scope)
    return register_jitable(inline="always")(scope[fn.__name__])


@njit(inline="always")
def _spike_grads(h, th, neg, levels, grad, width):
    """(ds/dh, ds/dtheta) of the spike function at membrane h, with the surrogate derivative grad."""
    dh = grad(h - th, width)
    dth = -dh
    for k in range(2, levels):
        g = grad(h - np.float32(k) * th, width)
        dh += g
        dth -= np.float32(k) * g
    if neg:
        g = grad(-th - h, width)
        dh += g
        dth += g
    return dh, dth


@njit(inline="always")
def _keep(s, reset):
    """The factor on beta h_{t-1}: [s_{t-1} = 0] for the zero reset, else 1."""
    return np.float32((reset != 1) | (s == 0))


@njit(inline="always")
def _update(h, x, s, beta, th, reset):
    """One step of eq. (9) in npe_step's operation order."""
    if reset == 0:
        return (beta * h + x) - th * s
    if reset == 1:
        return beta * h * np.float32(s == 0) + x
    return beta * h + x


@intrinsic
def _bits(typingctx, x):
    """The bits of float32 x as a uint32 (a bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@intrinsic
def _float(typingctx, u):
    """The float32 whose bits are uint32 u (a bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


def _encode(v, like):
    """Float32 v as stored in an array like ``like``: itself, a spike as int8, or its bfloat16 bits in a
    uint16 array."""


@overload(_encode)
def _encode_impl(v, like):
    if like.dtype == types.int8:
        return lambda v, like: np.int8(v)
    if like.dtype != types.uint16:
        return lambda v, like: v

    def bf16(v, like):  # round to nearest even, as torch's .to(torch.bfloat16); NaN stays NaN
        u = _bits(v)
        u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        return np.uint16(u if v == v else np.uint32(0x7FC0))
    return bf16


def _decode(v):
    """A stored state as float32 (bfloat16 bits in a uint16 widened)."""


@overload(_decode)
def _decode_impl(v):
    if v != types.uint16:
        return lambda v: v
    return lambda v: _float(np.uint32(v) << np.uint32(16))


def _spike_at(ss, hs, j, th, neg, levels):
    """The spike s[j] of a step: read from ss (the initial spikes, or the int8 spikes the forward
    saved), else (ss None) recomputed from that step's state hs[j] (float32 or bfloat16 bits), which
    gives the bits the forward computed from the same state."""


@overload(_spike_at)
def _spike_at_impl(ss, hs, j, th, neg, levels):
    if isinstance(ss, types.NoneType):
        return lambda ss, hs, j, th, neg, levels: _spike(_decode(hs[j]), th, neg, levels)
    return lambda ss, hs, j, th, neg, levels: np.float32(ss[j])


def _part(p, lo, hi):
    """Neurons [lo, hi) of a per-neuron parameter: a slice of an array; a shared (scalar) one itself."""


@overload(_part)
def _part_impl(p, lo, hi):
    if isinstance(p, types.Array):
        return lambda p, lo, hi: p[lo:hi]
    return lambda p, lo, hi: p


def _at(p, j):
    """Neuron j's value of a parameter part (see :func:`_part`)."""


@overload(_at)
def _at_impl(p, j):
    if isinstance(p, types.Array):
        return lambda p, j: p[j]
    return lambda p, j: p


def _row_of(a, t, lo, hi):
    """Row t, neurons [lo, hi) of an optional array [T, M] (None stays None)."""


@overload(_row_of)
def _row_of_impl(a, t, lo, hi):
    if isinstance(a, types.NoneType):
        return lambda a, t, lo, hi: None
    return lambda a, t, lo, hi: a[t, lo:hi]


def _put(a, j, v):
    """a[j] = v as a stores it (see :func:`_encode`); nothing when a is None."""


@overload(_put)
def _put_impl(a, j, v):
    if isinstance(a, types.NoneType):
        return lambda a, j, v: None

    def put(a, j, v):
        a[j] = _encode(v, a)
    return put


@njit(inline="always")
def _step(h, sp, xt, st, ht, kt, bt, tt, reset, neg, levels):
    """One time step of a slab of neurons: their states h and spikes st advanced, and each state and
    spike also stored in ht, kt where given; sp are the previous spikes (None: recomputed from h)."""
    for j in range(h.size):
        th = _at(tt, j)
        v = _update(h[j], xt[j], _spike_at(sp, h, j, th, neg, levels), _at(bt, j), th, reset)
        h[j] = v
        st[j] = s = _spike(v, th, neg, levels)
        _put(ht, j, v)
        _put(kt, j, s)


@njit(inline="always")
def _slab(w, workers, M):
    """Columns [lo, hi) of worker w: M split evenly on 16-column (64-byte) boundaries."""
    lo = M * w // workers // 16 * 16
    return lo, (M if w == workers - 1 else M * (w + 1) // workers // 16 * 16)


@functools.cache
def forward(reset: int, neg: int, levels: int):
    """The forward kernel for one reset and spike kind (codes of the module docstring)."""
    @njit(cache=True, parallel=True, error_model="numpy")
    def lif_forward(x, beta, th, h0, s0, workers, s_out, h_out, s_keep, h_last):
        """x [T, M]; beta, th [M] or both shared scalars; h0, s0 [M] -> s_out [T, M], the final state
        h_last [M] and, unless None, every state h_out (float32, or bfloat16 bits in uint16) and
        spike s_keep (int8). Only the first step reads s0; later ones recompute s_{t-1} from h."""
        T, M = x.shape
        for w in prange(workers):
            lo, hi = _slab(w, workers, M)
            h, bt, tt = h0[lo:hi].copy(), _part(beta, lo, hi), _part(th, lo, hi)
            for t in range(min(T, 1)):
                _step(h, s0[lo:hi], x[t, lo:hi], s_out[t, lo:hi], _row_of(h_out, t, lo, hi),
                      _row_of(s_keep, t, lo, hi), bt, tt, reset, neg, levels)
            for t in range(1, T):
                _step(h, None, x[t, lo:hi], s_out[t, lo:hi], _row_of(h_out, t, lo, hi),
                      _row_of(s_keep, t, lo, hi), bt, tt, reset, neg, levels)
            h_last[lo:hi] = h
    return lif_forward


@functools.cache
def backward(reset: int, neg: int, levels: int, surrogate: type, params: bool):
    """The adjoint of :func:`forward`'s kernel for one reset, spike kind and surrogate class (its
    ``formula``); with ``params`` it also sums the per-neuron gradients in beta and theta."""
    sub = np.float32(reset == 0)
    grad = formula(surrogate)

    @njit(cache=True, parallel=True, error_model="numpy")
    def lif_backward(hs, ss, beta, th, h0, s0, gs, gh, width, workers, dx, dbeta, dth, dh0, ds0):
        """From the forward's states hs [T, M] (float32, or bfloat16 bits in uint16) and spikes ss
        (int8 [T, M], or None: recomputed from hs), beta, th, h0, s0 as the forward's, dL/ds gs [T, M] and
        dL/dh of the last Tg >= 0 states gh [Tg, M], run backwards in time
        q_t = dL/ds_t = gs_t - theta g_{t+1} (subtract reset) and
        g_t = dL/dh_t = gh_t + q_t ds/dh + beta m_{t+1} g_{t+1}, m = [s_t = 0] (zero reset) or 1.
        Writes dx = g, dh0, ds0 [M] and, with ``params``, dbeta, dth [M] (summed over time)."""
        T, M = hs.shape
        t_grad = T - gh.shape[0]
        for w in prange(workers):
            lo, hi = _slab(w, workers, M)
            n = hi - lo
            g, zero = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)  # g = g_{t+1}
            bt, tt, db, dt = _part(beta, lo, hi), _part(th, lo, hi), dbeta[lo:hi], dth[lo:hi]
            if params:
                db[:], dt[:] = 0, 0
            for t in range(T - 1, -1, -1):
                h_t, s_t, gs_t, dx_t = hs[t, lo:hi], _row_of(ss, t, lo, hi), gs[t, lo:hi], dx[t, lo:hi]
                h_p, s_p = hs[max(t - 1, 0), lo:hi], _row_of(ss, max(t - 1, 0), lo, hi)  # read only for t > 0
                gh_t = gh[t - t_grad, lo:hi] if t >= t_grad else zero
                for j in range(n):
                    thj, bj = _at(tt, j), _at(bt, j)
                    dsdh, dsdth = _spike_grads(_decode(h_t[j]), thj, neg, levels, grad, width)
                    q = gs_t[j] - thj * g[j] * sub
                    keep = _keep(_spike_at(s_t, h_t, j, thj, neg, levels), reset)  # unread unless reset 1
                    g_t = q * dsdh + bj * g[j] * keep + gh_t[j]
                    g[j] = dx_t[j] = g_t  # dL/dx_t as computed: no second pass over the slab
                    if params:
                        if t > 0:
                            hp, sp = _decode(h_p[j]), _spike_at(s_p, h_p, j, thj, neg, levels)
                        else:
                            hp, sp = h0[lo + j], s0[lo + j]
                        db[j] += g_t * hp * _keep(sp, reset)
                        dt[j] += q * dsdth - g_t * sp * sub
            for j in range(n):
                dh0[lo + j] = _at(bt, j) * g[j] * _keep(s0[lo + j], reset)
                ds0[lo + j] = -_at(tt, j) * g[j] * sub
    return lif_backward
