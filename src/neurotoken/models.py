"""Assembled NPUs, each with a conventional twin (``spiking=False``) of the same layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from . import encoding as _encoding
from .data.text import decode, encode
from .layers import SpikingLinear, SpikingMLP
from .mixers.attention import SoftmaxAttention, SpikingAttention
from .mixers.rwkv import Residual, RWKVBlock, SpikeGPTBlock
from .mixers.spiking_ssm import SpikingLRU, SpikingSSM
from .mixers.ssm import check_tokens
from .neurons import LIF
from .spikes import DEFAULT_SURROGATE, resolve_spike
from .surrogate import resolve


class SNNClassifier(nn.Module):
    """Intra-token classifier (eq. 13): encode x along tau, LIF layers, rate-decoded linear readout.

    logits = mean_t (W_out s_t + b_out), s_t the spikes of the last hidden layer. With
    ``spiking=False`` it is the conventional twin: the same Linear layers with ReLU and no tau.
    ``encoding`` names an encoder of :mod:`neurotoken.encoding` ("direct" feeds x as a current).
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (128,), classes: int = 10, T: int = 8,
                 encoding: str = "direct", spiking: bool = True, **neuron):
        super().__init__()
        self.T = _checks.positive_int("T", T)
        self.encoding = encoding
        self.spiking = spiking
        _encoding.ENCODERS.get(encoding)  # fail early on unknown names
        sizes = [in_features, *hidden]
        if spiking:
            self.body = SpikingMLP(sizes, **neuron)
        else:
            layers = []
            for a, b in zip(sizes, sizes[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.body = nn.Sequential(*layers)
        self.readout = nn.Linear(sizes[-1], _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in_features] (values in [0, 1] for spike encoders) -> logits [B, classes]."""
        _checks.tensor("x", x, min_dim=2, max_dim=2)
        if not self.spiking:
            return self.readout(self.body(x))
        s = _encoding.encode(self.encoding, x, self.T)
        return self.readout(self.body(s)).mean(0)


class SpikingMLPBlock(nn.Module):
    """Channel MLP W_2 f(W_1 x): f = spike(. - theta) of a spike kind, or GELU for the twin."""

    def __init__(self, d_model: int, hidden: int, spiking: bool = True, spike="bernoulli", threshold: float = 1.0,
                 surrogate=DEFAULT_SURROGATE):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, hidden), nn.Linear(hidden, d_model)
        self.spiking = spiking
        self.spike, self.surrogate = resolve_spike(spike), resolve(surrogate)
        self.threshold = _checks.number("threshold", threshold, low=0.0, low_open=True)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if not self.spiking:
            return self.fc2(self.act(h))
        s = self.spike(h, self.threshold, self.surrogate)
        self.last_spikes = s.detach()
        return self.fc2(s)

    def accounting(self, inputs: tuple, output) -> dict[str, int]:
        """The hidden spike function's own work: one neuron update per hidden unit and token,
        spikes = the nonzero ones (fc1 and fc2 are counted as Linear layers)."""
        if not self.spiking:
            return {}
        return {"neuron_updates": self.last_spikes.numel(), "spikes": int(torch.count_nonzero(self.last_spikes))}


class SSMBlock(nn.Module):
    """Pre-norm residual block: x + drop(mixer(LN x)), then + drop(MLP(LN x))."""

    def __init__(self, d_model: int, mixer: nn.Module, mlp: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.mixer, self.norm2, self.mlp = nn.LayerNorm(d_model), mixer, nn.LayerNorm(d_model), mlp
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.mixer(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


SSM_MIXERS = ("selective", "lru")


class SpikingSSMClassifier(nn.Module):
    """Sequence classifier: embedding Linear(in -> D), ``layers`` pre-norm residual blocks of a
    spiking SSM mixer and a channel MLP (:class:`SSMBlock`, ``dropout`` on both branches), LayerNorm,
    mean over tokens, linear readout. ``mixer``: "selective" (:class:`SpikingSSM`) or "lru"
    (:class:`~neurotoken.mixers.spiking_ssm.SpikingLRU`, constant complex gains). ``spiking=False``
    is the conventional twin (real SSM readouts, GELU MLP). Further keyword arguments go to the mixer.
    """

    def __init__(self, in_features: int = 1, d_model: int = 64, d_state: int = 16, layers: int = 2,
                 classes: int = 10, mlp_ratio: int = 2, spiking: bool = True, spike="bernoulli",
                 threshold: float = 1.0, mixer: str = "selective", dropout: float = 0.0, **options):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        kind = SpikingLRU if _checks.choice("mixer", mixer, SSM_MIXERS) == "lru" else SpikingSSM
        _checks.number("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.spiking = spiking
        self.embed = nn.Linear(in_features, d_model)
        nn.init.zeros_(self.embed.bias)  # blank pixels start as zero tokens (a random bias stalls training)
        self.blocks = nn.Sequential(*(
            SSMBlock(d_model, kind(d_model, d_state, spiking, spike, threshold, **options),
                     SpikingMLPBlock(d_model, hidden, spiking, spike, threshold), dropout)
            for _ in range(_checks.positive_int("layers", layers))))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, in_features] -> logits [B, classes]."""
        check_tokens(x, self.in_features)
        return self.readout(self.norm(self.blocks(self.embed(x))).mean(1))


POOLS = ("last", "mean")


def _transformer_block(d_model: int, heads: int, hidden: int, T: int, score: str, mask, spiking: bool,
                       neuron: dict) -> SSMBlock:
    """One Spikformer block, pre-norm residual: x + attn(s), then x + W_2 f(W_1 s), s = LN x.

    Spiking (membrane shortcut, Spike-driven Transformer): s = LIF(LN x) along tau, so every
    projection reads spikes, and f = LIF. Twin: SoftmaxAttention and f = GELU, same Linear sizes.
    """
    if not spiking:
        return SSMBlock(d_model, SoftmaxAttention(d_model, heads, mask),
                        nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)))
    return SSMBlock(d_model, nn.Sequential(LIF(**neuron), SpikingAttention(d_model, heads, T, score, mask, **neuron)),
                    nn.Sequential(LIF(**neuron), SpikingLinear(d_model, hidden, **neuron), nn.Linear(hidden, d_model)))


class SpikingTransformer(nn.Module):
    """Spikformer-style sequence classifier (MISSION section 5): token embedding, ``layers`` blocks
    of attention + MLP (pre-norm residuals), LayerNorm, a linear readout of one token.

    Tokens are real features x [B, L, in_features] (a Linear embedding) or, with ``vocab``,
    integer ids [B, L] (an nn.Embedding); no positional code (add positions as features).
    Spiking: the embedded tokens are fed as a constant current for T virtual steps, blocks run
    along tau ([T, B, L, D], :class:`SpikingAttention` with ``score``), logits are the mean over
    tau of the readout. ``spiking=False`` is the conventional twin (SoftmaxAttention, GELU MLP,
    the same Linear sizes). ``pool``: "last" reads the last token (the query), "mean" averages
    tokens. ``mask`` goes to the attention ("full" for in-context tasks, "causal", a pattern).
    LIF options (beta, threshold, ...) as keyword arguments.
    """

    def __init__(self, in_features: int = 5, d_model: int = 64, heads: int = 4, layers: int = 2,
                 classes: int = 4, mlp_ratio: int = 2, T: int = 8, score: str = "and", mask="full",
                 pool: str = "last", vocab: int | None = None, spiking: bool = True, **neuron):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        self.T = _checks.positive_int("T", T)
        self.pool = _checks.choice("pool", pool, POOLS)
        self.vocab = None if vocab is None else _checks.positive_int("vocab", vocab)
        self.spiking = spiking
        self.embed = nn.Linear(in_features, d_model) if vocab is None else nn.Embedding(vocab, d_model)
        self.blocks = nn.Sequential(*(
            _transformer_block(d_model, heads, hidden, T, score, mask, spiking, neuron)
            for _ in range(_checks.positive_int("layers", layers))))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, _checks.positive_int("classes", classes))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if self.vocab is None:
            return check_tokens(x, self.in_features)
        _checks.tensor("x", x, min_dim=2, max_dim=2)
        if x.dtype not in (torch.int32, torch.int64) or x.shape[1] == 0:
            raise ValueError(f"x must be integer token ids [B, L] with L >= 1, got {x.dtype} of shape {tuple(x.shape)}")
        if bool(((x < 0) | (x >= self.vocab)).any()):
            raise ValueError(f"x must hold token ids in [0, {self.vocab}), got values in "
                             f"[{int(x.min())}, {int(x.max())}]")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, in_features] (or ids [B, L] with ``vocab``) -> logits [B, classes]."""
        h = self.embed(self._check(x))
        if self.spiking:
            h = h.expand(self.T, *h.shape)
        h = self.norm(self.blocks(h))
        h = h[..., -1, :] if self.pool == "last" else h.mean(-2)
        logits = self.readout(h)
        return logits.mean(0) if self.spiking else logits


LM_BACKBONES = ("spikegpt", "pspikessm")


class SpikingLM(nn.Module):
    """Byte-level language model: embedding, ``layers`` stateful blocks, LayerNorm, linear head.

    ``backbone="spikegpt"``: :class:`~neurotoken.mixers.SpikeGPTBlock` (twin: RWKVBlock);
    ``"pspikessm"``: pre-norm residual of :class:`SpikingSSM` and :class:`SpikingMLPBlock` (twin:
    real SSM readouts, GELU MLP). ``spiking=False`` builds the conventional twin and ignores
    ``options``, which otherwise go to SpikeGPTBlock (spikegpt: thresholds, spike kinds, LIF
    arguments) or to SpikingSSM (pspikessm; ``spike`` and ``threshold`` also to the MLP).
    State: one block state per layer.
    """

    def __init__(self, vocab: int = 256, d_model: int = 128, layers: int = 2, backbone: str = "spikegpt",
                 spiking: bool = True, hidden_ratio: int = 4, d_state: int = 16, method: str = "auto",
                 **options):
        super().__init__()
        self.vocab = _checks.positive_int("vocab", vocab)
        d = _checks.positive_int("d_model", d_model)
        n = _checks.positive_int("layers", layers)
        self.backbone = _checks.choice("backbone", backbone, LM_BACKBONES)
        self.spiking = spiking
        if backbone == "spikegpt":
            blocks = [SpikeGPTBlock(d, i, n, hidden_ratio, method, **options) if spiking
                      else RWKVBlock(d, i, n, hidden_ratio, method) for i in range(n)]
        else:
            spike, threshold = options.pop("spike", "bernoulli"), options.pop("threshold", 1.0)
            hidden = _checks.positive_int("hidden_ratio", hidden_ratio) * d
            blocks = [Residual(d, [SpikingSSM(d, d_state, spiking, spike, threshold, method=method, **options),
                                   SpikingMLPBlock(d, hidden, spiking, spike, threshold)]) for _ in range(n)]
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor, state: tuple | None = None, return_state: bool = False):
        """tokens [B, L] (ints in [0, vocab)) -> next-token logits [B, L, vocab] (and the state)."""
        _checks.tensor("tokens", tokens, min_dim=2, max_dim=2)
        if tokens.is_floating_point() or tokens.is_complex() or tokens.shape[1] == 0:
            raise ValueError(f"tokens must be integers [B, L] with L >= 1, got {tokens.dtype} {tuple(tokens.shape)}")
        if bool((tokens < 0).any() or (tokens >= self.vocab).any()):
            raise ValueError(f"tokens must lie in [0, {self.vocab})")
        if state is not None and (not isinstance(state, tuple) or len(state) != len(self.blocks)):
            raise ValueError(f"state must be a tuple of {len(self.blocks)} block states")
        x, states = self.embed(tokens), []
        for block, s in zip(self.blocks, state or (None,) * len(self.blocks)):
            x, s = block(x, s, return_state=True)
            states.append(s)
        logits = self.head(self.norm(x))
        return (logits, tuple(states)) if return_state else logits

    def step(self, token: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """One token [B] -> (logits [B, vocab], state): exactly the next position of ``forward``."""
        _checks.tensor("token", token, min_dim=1, max_dim=1)
        logits, state = self(token.unsqueeze(1), state, return_state=True)
        return logits[:, 0], state

    @torch.no_grad()
    def generate(self, prompt: str | torch.Tensor, n: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> str | torch.Tensor:
        """Continue ``prompt`` by ``n`` tokens: prefill the prompt in parallel, then step recurrently,
        sampling softmax(logits / temperature) (``temperature=0``: greedy argmax). A text prompt
        (UTF-8 bytes) gives the continuation as text, a token tensor [B, P] the new tokens [B, n]."""
        _checks.positive_int("n", n)
        _checks.number("temperature", temperature, low=0.0)
        tokens = encode(prompt).unsqueeze(0) if isinstance(prompt, str) else prompt
        training = self.training
        self.eval()
        try:
            logits, state = self(tokens, return_state=True)
            last, new = logits[:, -1], []
            for i in range(n):
                if temperature == 0:
                    token = last.argmax(-1)
                else:
                    token = torch.multinomial(F.softmax(last / temperature, -1), 1, generator=generator)[:, 0]
                new.append(token)
                if i < n - 1:
                    last, state = self.step(token, state)
        finally:
            self.train(training)
        new = torch.stack(new, 1)
        return decode(new[0]) if isinstance(prompt, str) else new
