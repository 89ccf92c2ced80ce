"""Inter-token mixing by state-space dynamics, eq. (16)-(20), on token sequences [B, L, D].

Per head and value channel c a state vector S_{c,t} in R^N stores key-value associations,

    S_{c,t} = a_{c,t} S_{c,t-1} + b_{c,t} v_{c,t} k_t        (16)
    y_{c,t} = q_t^T S_{c,t}                                   (17)

a = b = 1 is linear attention, eq. (18)-(20); a = exp(-Delta A), b = Delta with
Delta = softplus(W x + b) is the selective (gated) SSM of Mamba. Pure functions hold the maths,
modules hold the parameters; states are explicit so ``step`` continues a sequence exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..kernels import triton as triton_kernels
from ..scan import METHODS, choose, linear_scan
from .base import Mixer, check_state, check_tokens

LINEAR_ATTENTION_METHODS = ("quadratic", "chunked", "recurrent", "scan")


def _check_qkv(q, k, v, state) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        _checks.tensor(name, t, min_dim=4, max_dim=4)
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape [B, L, H, N], got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have shape [B, L, H, P] matching k's {tuple(k.shape[:3])}, got {tuple(v.shape)}")
    if k.shape[1] == 0:
        raise ValueError(f"q, k, v must hold at least one token (L >= 1), got shape {tuple(k.shape)}")
    if state is not None:
        B, _, H, N = k.shape
        check_state("state", state, (B, H, v.shape[-1], N), like=k)


# ---- pure functions ---------------------------------------------------------------------------

def ssm_scan(a, b, k: torch.Tensor, v: torch.Tensor, q: torch.Tensor, state: torch.Tensor | None = None,
             method: str = "parallel") -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (16)-(17): S_{c,t} = a_{c,t} S_{c,t-1} + b_{c,t} v_{c,t} k_t,  y_{c,t} = q_t^T S_{c,t}.

    k, q [B, L, H, N]; v [B, L, H, P]; a a number or broadcastable to [B, L, H, P, N] (per state
    element: diagonal gains), b a number or broadcastable to [B, L, H, P]; state S_{-1} [B, H, P, N].
    ``method`` is a :func:`neurotoken.scan.linear_scan` method ("sequential" = recurrent form).
    Returns y [B, L, H, P] and the last state S_{L-1} [B, H, P, N].
    """
    _check_qkv(q, k, v, state)
    _checks.choice("method", method, METHODS.names())
    u = (b * v).unsqueeze(-1) * k.unsqueeze(-2)
    S = linear_scan(a, u, h0=state, dim=1, method=method)
    return torch.einsum("blhpn,blhn->blhp", S, q), S[:, -1]


def _quadratic(q, k, v, state):
    """Eq. (19)-(20) on one block: y_t = sum_{t'<=t} (q_t^T k_t') v_t' + q_t^T S_{-1}; S_{L-1}."""
    scores = torch.einsum("blhn,bmhn->bhlm", q, k).tril()
    y = torch.einsum("bhlm,bmhp->blhp", scores, v)
    S = torch.einsum("blhp,blhn->bhpn", v, k)
    if state is not None:
        y = y + torch.einsum("blhn,bhpn->blhp", q, state)
        S = S + state
    return y, S


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor | None = None,
                     causal: bool = True, method: str = "chunked", chunk_size: int = 64
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear attention, eq. (18)-(20): y_{c,t} = sum_{t'<=t} (q_t^T k_t') v_{c,t'} (+ q_t^T S_{-1}).

    q, k [B, L, H, N]; v [B, L, H, P]; state S_{-1} [B, H, P, N] (sum of past v k^T). Forms, all
    equal: "quadratic" (masked L x L scores), "chunked" (quadratic within chunks of
    ``chunk_size``, state carried between them), "recurrent" (eq. 18 token by token), "scan"
    (eq. 18 by the parallel prefix scan). ``causal=False`` lets every token read the full state
    S_{L-1} (bidirectional). Returns y [B, L, H, P] and S_{L-1}.
    """
    _check_qkv(q, k, v, state)
    _checks.choice("method", method, LINEAR_ATTENTION_METHODS)
    chunk_size = _checks.positive_int("chunk_size", chunk_size)
    if not causal:
        S = torch.einsum("blhp,blhn->bhpn", v, k) + (0 if state is None else state)
        return torch.einsum("blhn,bhpn->blhp", q, S), S
    if method in ("recurrent", "scan"):
        return ssm_scan(1.0, 1.0, k, v, q, state, "sequential" if method == "recurrent" else "parallel")
    size = q.shape[1] if method == "quadratic" else chunk_size
    ys = []
    for qc, kc, vc in zip(q.split(size, 1), k.split(size, 1), v.split(size, 1)):
        y, state = _quadratic(qc, kc, vc, state)
        ys.append(y)
    return torch.cat(ys, 1), state


def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, k: torch.Tensor, q: torch.Tensor,
                   state: torch.Tensor | None = None, method: str = "auto"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba's selective scan, eq. (16)-(17) with a_{c,t} = exp(-Delta_{c,t} A_c), b_{c,t} = Delta_{c,t}.

    x (values v) and delta (> 0) [B, L, D]; A [D, N] > 0 (diagonal state matrix per channel);
    input-dependent keys k and queries q [B, L, N]; state [B, D, N]. Returns y [B, L, D] and the
    last state [B, D, N]. ``method="triton"`` (and "auto" on CUDA) runs the fused Triton kernel with the
    state in registers where it can run; elsewhere the linear scan ``method`` over the expanded state.
    """
    check_tokens(x)
    for name, t, shape in (("delta", delta, x.shape), ("A", A, (x.shape[2], -1)),
                           ("k", k, (*x.shape[:2], -1)), ("q", q, (*x.shape[:2], -1))):
        _checks.tensor(name, t, min_dim=len(shape), max_dim=len(shape))
        if any(want not in (-1, got) for want, got in zip(shape, t.shape)):
            raise ValueError(f"{name} must have shape {tuple(shape)} (-1: any), got {tuple(t.shape)}")
    if A.shape[1] != k.shape[2] or q.shape != k.shape:
        raise ValueError(f"A [D, N], k and q [B, L, N] must agree on N, got {tuple(A.shape)}, "
                         f"{tuple(k.shape)}, {tuple(q.shape)}")
    if state is not None:
        check_state("state", state, (x.shape[0], *A.shape), like=x)
    if (method == "triton" or (method == "auto" and choose(x, 1) == "triton")) \
            and triton_kernels.unsupported_real(x, delta, A, k, q) is None:
        from ..kernels.triton.selective_scan import selective_scan as triton_selective_scan

        return triton_selective_scan(x, delta, A, k, q, state)
    if state is not None:
        state = state.unsqueeze(1)
    a = torch.exp(-delta.unsqueeze(-1) * A).unsqueeze(2)
    y, S = ssm_scan(a, delta.unsqueeze(2), k.unsqueeze(2), x.unsqueeze(2), q.unsqueeze(2), state, method)
    return y.squeeze(2), S.squeeze(1)


# ---- modules --------------------------------------------------------------------------------

class LinearAttention(Mixer):
    """Multi-head linear attention, eq. (14)-(20): q, k, v = W_q x, W_k x, W_v x split into heads,
    y = W_o concat_h(eq. 19 per head). State: the per-head sums S = sum_t v_t k_t^T [B, H, P, N].

    d_key (N) defaults to d_model / heads (P); ``method`` and ``chunk_size`` as in
    :func:`linear_attention` (all forms give the same result).
    """

    def __init__(self, d_model: int, heads: int = 1, d_key: int | None = None, causal: bool = True,
                 method: str = "chunked", chunk_size: int = 64):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.heads = _checks.positive_int("heads", heads)
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.d_key = d_model // heads if d_key is None else _checks.positive_int("d_key", d_key)
        self.causal = _checks.flag("causal", causal)
        self.method = _checks.choice("method", method, LINEAR_ATTENTION_METHODS)
        self.chunk_size = _checks.positive_int("chunk_size", chunk_size)
        self.query = nn.Linear(d_model, heads * self.d_key, bias=False)
        self.key = nn.Linear(d_model, heads * self.d_key, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        self.check_input(x)
        q, k, v = (f(x).unflatten(-1, (self.heads, -1)) for f in (self.query, self.key, self.value))
        y, S = linear_attention(q, k, v, state, self.causal, self.method, self.chunk_size)
        y = self.out(y.flatten(-2))
        return (y, S) if return_state else y

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        if not self.causal:
            raise ValueError("step needs causal=True: a bidirectional mixer reads tokens not yet seen")
        return super().step(x_t, state)

    def initial_state(self, batch: int) -> torch.Tensor:
        """S = 0 [B, H, P, N]."""
        return self._zeros(batch, self.heads, self.d_model // self.heads, self.d_key)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D], H heads, key size N, P = D / H
        (the q, k, v and out projections are nn.Linear children, counted on their own):

        macs = B H sum over blocks of c tokens (quadratic: one block of L; chunked: chunk_size):
                 c^2 (N + P)                   scores q k^T and their weighted sum of v
                 + 2 c P N                     readout of the carried state, state update
               recurrent, scan or causal=False: 2 L P N (S += v k^T, y = S q per token)
        state_updates = B L H P N (eq. 18);  state_bytes = B H P N * element size (carried S).
        """
        B, L, D = inputs[0].shape
        H, N, P = self.heads, self.d_key, D // self.heads
        if self.causal and self.method in ("quadratic", "chunked"):
            size = L if self.method == "quadratic" else self.chunk_size
            blocks = [min(size, L - i) for i in range(0, L, size)]
            mixing = sum(c * c * (N + P) + 2 * c * P * N for c in blocks)
        else:
            mixing = 2 * L * P * N
        return {"macs": B * H * mixing,
                "state_updates": B * L * H * P * N,
                "state_bytes": B * H * P * N * inputs[0].element_size()}


class SelectiveSSM(Mixer):
    """Gated (selective) SSM, Mamba's selective scan: per channel c and token t

        Delta_t = softplus(W_Delta x_t + b_Delta),  a_{c,t} = exp(-Delta_{c,t} A_c),  b_{c,t} = Delta_{c,t}
        S_{c,t} = a_{c,t} S_{c,t-1} + Delta_{c,t} x_{c,t} k_t,   y_{c,t} = q_t^T S_{c,t} + d_c x_{c,t}

    (eq. 16-17 with v = x, keys k_t = W_k x_t and queries q_t = W_q x_t in R^N), output W_o y.
    A [D, N] > 0 is parametrised by log A (S4D-real init A_{c,n} = n + 1); Delta's bias starts at
    softplus^-1 of log-uniform steps in ``dt_range``. State: S [B, D, N]. ``method`` is the
    :func:`neurotoken.scan.linear_scan` method ("auto": the Triton kernel on CUDA, the fused numba
    scan on the CPU where numba is installed).
    """

    def __init__(self, d_model: int, d_state: int = 16, method: str = "auto",
                 dt_range: tuple[float, float] = (1e-3, 1e-1)):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.d_state = _checks.positive_int("d_state", d_state)
        self.method = _checks.choice("method", method, METHODS.names())
        lo, hi = _checks.increasing("dt_range", dt_range, min_len=2)
        if len(dt_range) != 2 or lo <= 0:
            raise ValueError(f"dt_range must be (low, high) with 0 < low < high, got {tuple(dt_range)}")
        self.delta = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_state, bias=False)
        self.query = nn.Linear(d_model, d_state, bias=False)
        self.log_A = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_model, 1))
        self.skip = nn.Parameter(torch.ones(d_model))
        self.out = nn.Linear(d_model, d_model)
        with torch.no_grad():
            dt = torch.exp(torch.empty(d_model).uniform_(math.log(lo), math.log(hi)))
            self.delta.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)

    def readout(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """y = q^T S + d x before the output projection, and the last state S [B, D, N]."""
        y, S = selective_scan(x, F.softplus(self.delta(x)), self.log_A.exp(), self.key(x), self.query(x),
                              state, self.method)
        return y + self.skip * x, S

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        self.check_input(x)
        y, S = self.readout(x, state)
        y = self.out(y)
        return (y, S) if return_state else y

    def initial_state(self, batch: int) -> torch.Tensor:
        """S = 0 [B, D, N]."""
        return self._zeros(batch, self.d_model, self.d_state)

    def _ssm_counts(self, x: torch.Tensor) -> dict[str, int]:
        """The scan's own counts (projections are nn.Linear children); see ``accounting``."""
        B, L, D = x.shape
        N = self.d_state
        return {"macs": 4 * B * L * D * N + 2 * B * L * D,
                "state_updates": B * L * D * N,
                "state_bytes": B * D * N * x.element_size()}

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D], state size N (the Delta, k, q and
        out projections are nn.Linear children, counted on their own):

        macs = 4 B L D N               Delta A, decay a S, input (Delta x) k, readout q^T S
             + 2 B L D                 Delta x and the skip d x
        state_updates = B L D N;  state_bytes = B D N * element size (carried S).
        """
        return self._ssm_counts(inputs[0])


__all__ = ["LINEAR_ATTENTION_METHODS", "ssm_scan", "linear_attention", "selective_scan", "LinearAttention",
           "SelectiveSSM"]
