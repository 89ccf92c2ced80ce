"""HiPPO-LegS matrix gains (Gu et al. 2020): eq. (16) with a matrix A, the constant-gain SSM of S4.

Per channel c an N-dimensional state follows the continuous-time LegS system
dS/dt = A S + B u, discretised with step Delta_c (bilinear or zero-order hold) to

    S_{c,t} = Ā_c S_{c,t-1} + B̄_c u_{c,t},   y_{c,t} = C_c S_{c,t} + d_c u_{c,t}      (16) with matrix A

The gains do not depend on the input, so the whole output is one causal convolution,
y_c = K_c * u_c with K_{c,k} = C_c Ā_c^k B̄_c, evaluated by FFT ("fft") beside the token-by-token
recurrence ("sequential", the reference).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import _checks
from .base import Fire, Mixer, check_state, check_tokens, resolve_neuron

DISCRETIZATIONS = ("bilinear", "zoh")
HIPPO_METHODS = ("fft", "sequential")


def legs(N: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS in continuous time: A_nk = -(2n+1)^{1/2} (2k+1)^{1/2} (n > k), -(n+1) (n = k),
    0 (n < k); B_n = (2n+1)^{1/2}. Returns A [N, N], B [N]."""
    _checks.positive_int("N", N)
    root = torch.sqrt(2 * torch.arange(N, dtype=dtype) + 1)
    return -(torch.outer(root, root).tril(-1) + torch.diag(torch.arange(1, N + 1, dtype=dtype))), root


def discretize(A: torch.Tensor, B: torch.Tensor, dt, method: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Ā, B̄ of dS/dt = A S + B u held over a step dt.

    bilinear: Ā = (I - dt/2 A)^{-1} (I + dt/2 A),  B̄ = (I - dt/2 A)^{-1} dt B;
    zoh:      Ā = exp(dt A),  B̄ = A^{-1} (exp(dt A) - I) B, read off exp(dt [[A, B], [0, 0]]).
    A [N, N], B [N], dt > 0 a number or a tensor of any shape [...]; returns Ā [..., N, N], B̄ [..., N].
    """
    _checks.tensor("A", A, min_dim=2, max_dim=2)
    N = A.shape[0]
    if A.shape[1] != N:
        raise ValueError(f"A must be square [N, N], got shape {tuple(A.shape)}")
    _checks.tensor("B", B, min_dim=1, max_dim=1)
    if B.shape[0] != N:
        raise ValueError(f"B must have shape ({N},) to match A, got {tuple(B.shape)}")
    _checks.choice("method", method, DISCRETIZATIONS)
    dt = torch.as_tensor(dt, dtype=A.dtype, device=A.device)
    _checks.tensor("dt", dt)
    if bool((dt <= 0).any()):
        raise ValueError("dt must be > 0")
    return _discretize(A, B, dt, method)


def _discretize(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`discretize` on trusted inputs (dt > 0 a tensor): no value check, so forward passes call it."""
    N = A.shape[0]
    dt = dt[..., None, None]
    if method == "bilinear":
        eye = torch.eye(N, dtype=A.dtype, device=A.device)
        left = eye - dt / 2 * A
        return torch.linalg.solve(left, eye + dt / 2 * A), torch.linalg.solve(left, dt[..., 0] * B)
    top = torch.cat([A, B.unsqueeze(-1)], -1)
    block = torch.linalg.matrix_exp(dt * torch.cat([top, torch.zeros_like(top[:1])], -2))
    return block[..., :N, :N], block[..., :N, N]


def krylov(M: torch.Tensor, x: torch.Tensor, length: int) -> torch.Tensor:
    """[x, M x, ..., M^{length-1} x] stacked at dim -2, by repeated squaring: M [..., N, N],
    x [..., N] -> [..., length, N] (log2(length) products instead of length)."""
    rows, power = x.unsqueeze(-2), M
    while rows.shape[-2] < length:
        rows = torch.cat([rows, rows @ power.mT], -2)  # (M^m M^j x)^T = (M^j x)^T (M^m)^T
        power = power @ power
    return rows[..., :length, :]


def causal_conv(kernel: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """y_{t,c} = sum_{k<=t} K_{c,k} u_{t-k,c} by FFT in float64: kernel [D, L], u [B, L, D] -> [B, L, D]."""
    L = u.shape[1]
    spectrum = torch.fft.rfft(kernel.double(), 2 * L) * torch.fft.rfft(u.double().transpose(1, 2), 2 * L)
    return torch.fft.irfft(spectrum, 2 * L)[..., :L].transpose(1, 2).to(u.dtype)


def hippo_ssm(u: torch.Tensor, A_bar: torch.Tensor, B_bar: torch.Tensor, C: torch.Tensor,
              state: torch.Tensor | None = None, method: str = "fft", return_state: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eq. (16)-(17) with matrix gains, per channel c: S_{c,t} = Ā_c S_{c,t-1} + B̄_c u_{c,t}, y_{c,t} = C_c S_{c,t}.

    u [B, L, D]; Ā [D, N, N]; B̄, C [D, N]; state S_{-1} [B, D, N]. "sequential" runs the recurrence
    token by token; "fft" convolves with K_{c,k} = C_c Ā_c^k B̄_c and adds C_c Ā_c^{t+1} S_{c,-1}.
    Returns y [B, L, D] and the last state S_{L-1} [B, D, N] (None unless ``return_state``).
    """
    check_tokens(u, name="u")
    Bsz, L, D = u.shape
    _checks.tensor("A_bar", A_bar, min_dim=3, max_dim=3)
    N = A_bar.shape[-1]
    for name, t, shape in (("A_bar", A_bar, (D, N, N)), ("B_bar", B_bar, (D, N)), ("C", C, (D, N))):
        check_state(name, t, shape)
    if state is not None:
        check_state("state", state, (Bsz, D, N), like=u)
    _checks.choice("method", method, HIPPO_METHODS)
    if method == "sequential":
        S = u.new_zeros(Bsz, D, N) if state is None else state
        ys = []
        for u_t in u.unbind(1):
            S = torch.einsum("dnm,bdm->bdn", A_bar, S) + B_bar * u_t.unsqueeze(-1)
            ys.append(torch.einsum("dn,bdn->bd", C, S))
        return torch.stack(ys, 1), S if return_state else None
    rows = krylov(A_bar.mT, C, L + (state is not None))  # [D, L(+1), N]: row k is C Ā^k
    y = causal_conv(torch.einsum("dkn,dn->dk", rows[:, :L], B_bar), u)
    if state is not None:
        y = y + torch.einsum("dtn,bdn->btd", rows[:, 1:], state)
    if not return_state:
        return y, None
    S = torch.einsum("dkn,bkd->bdn", krylov(A_bar, B_bar, L).flip(1), u)  # sum_k Ā^{L-1-k} B̄ u_k
    if state is not None:
        S = S + torch.einsum("dnm,bdm->bdn", torch.linalg.matrix_power(A_bar, L), state)
    return y, S


class HiPPOSSM(Mixer):
    """S4-style constant-gain SSM with HiPPO-LegS gains: per channel, :func:`hippo_ssm` on Ā, B̄ =
    ``discretization``(A, B, Delta_c) of :func:`legs`, then y = W_o (C S + d u).

    A, B are fixed buffers; C [D, N] (normal, scale N^-1/2), the skip d and log Delta (log-uniform
    in ``dt_range``, one per channel or one ``shared_dt``) are trained. ``method``: "fft"
    (convolution, parallel in L) or "sequential" (the recurrence). State: S [B, D, N].
    ``neuron`` (a memoryless NPE or its config dict) makes the spiking form: the readout drives it,
    s = spike(C S + d u - theta), and W_o reads the spikes (eq. 40); None (default) is this
    conventional form.
    """

    def __init__(self, d_model: int, d_state: int = 64, discretization: str = "bilinear", method: str = "fft",
                 dt_range: tuple[float, float] = (1e-3, 1e-1), shared_dt: bool = False, neuron=None):
        super().__init__()
        self.d_model = _checks.positive_int("d_model", d_model)
        self.d_state = _checks.positive_int("d_state", d_state)
        self.discretization = _checks.choice("discretization", discretization, DISCRETIZATIONS)
        self.method = _checks.choice("method", method, HIPPO_METHODS)
        lo, hi = _checks.increasing("dt_range", dt_range, min_len=2)
        if len(dt_range) != 2 or lo <= 0:
            raise ValueError(f"dt_range must be (low, high) with 0 < low < high, got {tuple(dt_range)}")
        A, B = legs(d_state, torch.float32)
        self.register_buffer("A", A)
        self.register_buffer("B", B)
        steps = 1 if _checks.flag("shared_dt", shared_dt) else d_model
        self.log_dt = nn.Parameter(torch.empty(steps).uniform_(math.log(lo), math.log(hi)))
        self.C = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.skip = nn.Parameter(torch.ones(d_model))
        self.out = nn.Linear(d_model, d_model)
        neuron = resolve_neuron(neuron, None)
        self.fire = None if neuron is None else Fire(neuron)

    @property
    def spiking(self) -> bool:
        return self.fire is not None

    def gains(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ā [D, N, N] and B̄ [D, N] of the current step sizes."""
        A_bar, B_bar = _discretize(self.A, self.B, self.log_dt.exp(), self.discretization)
        return A_bar.expand(self.d_model, -1, -1), B_bar.expand(self.d_model, -1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        self.check_input(x)
        y, S = hippo_ssm(x, *self.gains(), self.C, state, self.method, return_state)
        y = y + self.skip * x
        y = self.out(y if self.fire is None else self.fire(y))
        return (y, S) if return_state else y

    def initial_state(self, batch: int) -> torch.Tensor:
        """S = 0 [B, D, N]."""
        return self._zeros(batch, self.d_model, self.d_state)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The mixer's own counts of one forward on x [B, L, D], state size N (the output projection
        is an nn.Linear child, counted on its own), to leading order:

        discretisation: s N^3 (one N x N solve or exponential per distinct step, s = 1 or D)
        sequential: B L D (N^2 + 2N + 1)         Ā S, B̄ u, C S, skip d u per token and channel
        fft: D (N^3 ceil(log2 L) + L N^2 + L N)  kernel rows C Ā^k by squaring, K_k = (C Ā^k) B̄
             + (D + 2 B D) 2L log2(2L)           rfft of K, rfft and irfft of u (2L real points each)
             + B D (4 (L + 1) + L)               spectrum product, skip
        state_updates = B L D N;  state_bytes = B D N * element size (carried S).
        A state passed in, or one returned, adds lower-order terms not counted here.
        """
        x = inputs[0]
        B, L, D = x.shape
        N = self.d_state
        macs = self.log_dt.numel() * N ** 3
        if self.method == "sequential":
            macs += B * L * D * (N * N + 2 * N + 1)
        else:
            fft = round(2 * L * math.log2(2 * L))
            macs += (D * (N ** 3 * math.ceil(math.log2(L)) + L * N * N + L * N) + (D + 2 * B * D) * fft
                     + B * D * (4 * (L + 1) + L))
        return {"macs": macs, "state_updates": B * L * D * N, "state_bytes": B * D * N * x.element_size()}


__all__ = ["DISCRETIZATIONS", "HIPPO_METHODS", "legs", "discretize", "krylov", "causal_conv", "hippo_ssm", "HiPPOSSM"]
