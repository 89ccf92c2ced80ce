"""Inter-token NPUs: spiking SSM classifiers, spiking transformers and language models, each with its twin."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..data.text import decode, encode
from ..layers import EventLinear, SpikingLinear, TimeBatchNorm
from ..mixers.attention import SoftmaxAttention, SpikingAttention
from ..mixers.base import DEFAULT, Fire, check_tokens, is_memoryless, legacy_neuron, resolve_neuron
from ..mixers.blocks import Residual
from ..mixers.mamba import MambaBlock, SpikingMamba
from ..mixers.rwkv import RWKVBlock, SpikeGPTBlock
from ..mixers.spiking_ssm import SpikingLRU, SpikingSSM, bernoulli_readout, legacy_lru_readout, legacy_readout
from ..neurons import LIF
from ..spikes import DEFAULT_SURROGATE
from ._common import _check_features, _check_ids, _embed


class SpikingMLPBlock(nn.Module):
    """Channel MLP W_2 f(W_1 x): f = a memoryless ``neuron`` (default reset-free Bernoulli at
    threshold 1, :class:`~neurotoken.mixers.base.Fire`), or GELU for the twin (``neuron=None``)."""

    def __init__(self, d_model: int, hidden: int, neuron=DEFAULT, **legacy):
        super().__init__()
        neuron = resolve_neuron(legacy_neuron("SpikingMLPBlock", neuron, legacy, _legacy_mlp_neuron), bernoulli_readout)
        # W_2 reads spikes in the spiking form (event-driven, eq. 93)
        self.fc1, self.fc2 = nn.Linear(d_model, hidden), (nn.Linear if neuron is None else EventLinear)(hidden, d_model)
        self.fire = None if neuron is None else Fire(neuron)
        self.act = nn.GELU()

    @property
    def spiking(self) -> bool:
        return self.fire is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., d_model] -> [..., d_model]."""
        h = self.fc1(_check_features("x", x, self.fc1.in_features, self, min_dim=1))
        return self.fc2(self.act(h) if self.fire is None else self.fire(h))


def _legacy_mlp_neuron(spiking: bool = True, spike="bernoulli", threshold: float = 1.0, surrogate=DEFAULT_SURROGATE):
    """SpikingMLPBlock's NPE from its former keyword arguments."""
    return LIF(0.0, threshold, "none", spike, surrogate) if spiking else None


class SSMBlock(Residual):
    """Deprecated: ``mixers.Residual(d_model, [mixer, mlp], dropout)``."""

    def __init__(self, d_model: int, mixer: nn.Module, mlp: nn.Module, dropout: float = 0.0):
        warnings.warn("models.SSMBlock is deprecated: use neurotoken.mixers.Residual(d_model, [mixer, mlp], dropout)",
                      DeprecationWarning, stacklevel=2)
        super().__init__(d_model, [mixer, mlp], dropout)


SSM_MIXERS = ("selective", "lru")
_LEGACY_NEURON_KEYS = ("spike", "threshold", "surrogate", "reset", "beta")


def _ssm_neurons(owner: str, spiking: bool, neuron, mlp_neuron, options: dict, lru: bool = False) -> tuple:
    """(mixer neuron, MLP neuron) of an SSM model: None for the twin; else the given ones (the MLP's
    defaulting to the mixer's), or those of the former keyword arguments popped from ``options``."""
    legacy = {k: options.pop(k) for k in _LEGACY_NEURON_KEYS if k in options}
    if not spiking:
        return None, None

    def build(spike="bernoulli", threshold: float = 1.0, **mixer):
        kind = legacy_lru_readout if lru else legacy_readout
        return kind(True, spike, threshold, **mixer), _legacy_mlp_neuron(True, spike, threshold)

    if legacy:
        return legacy_neuron(owner, neuron, legacy, build)
    neuron = resolve_neuron(neuron, bernoulli_readout)
    if mlp_neuron is DEFAULT and neuron is not None and not is_memoryless(neuron):
        raise TypeError(f"{owner}: the MLP needs a memoryless neuron; pass mlp_neuron= with a stateful neuron=")
    return neuron, neuron if mlp_neuron is DEFAULT else mlp_neuron


class Bidirectional(nn.Module):
    """A non-causal token mixer from two causal ones: f(x) + flip(g(flip(x))), the reversed scan
    summed with the forward one along the tokens (dim -2) as S4 and LRU run on the Long Range Arena."""

    def __init__(self, forward: nn.Module, backward: nn.Module):
        super().__init__()
        self.forward_mixer, self.backward_mixer = forward, backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, D] -> [B, L, D]."""
        return self.forward_mixer(x) + self.backward_mixer(x.flip(-2)).flip(-2)


CLASSIFIER_POOLS = ("mean", "max")
CLASSIFIER_NORMS = ("layer", "batch")


class SpikingSSMClassifier(nn.Module):
    """Sequence classifier: embedding Linear(in -> D), ``layers`` pre-norm residual blocks of a
    spiking SSM mixer and a channel MLP (:class:`~neurotoken.mixers.Residual`, ``dropout`` on both
    branches), a last norm, ``pool`` ("mean" or "max") over tokens, linear readout. ``norm``: "layer"
    (LayerNorm per token) or "batch" (:class:`~neurotoken.layers.TimeBatchNorm` per channel over batch and
    tokens, as S4 and S5 run LRA's Pathfinder: blank tokens stay small). ``mixer``: "selective"
    (:class:`SpikingSSM`) or "lru" (:class:`~neurotoken.mixers.spiking_ssm.SpikingLRU`, constant complex
    gains); ``bidirectional=True`` sums a second mixer run over the reversed tokens (:class:`Bidirectional`).
    ``neuron`` (an NPE or its config dict; default reset-free Bernoulli at threshold 1) spikes the
    mixer's readout, ``mlp_neuron`` (default: the same) the MLP. ``spiking=False`` is the conventional
    twin (real SSM readouts, GELU MLP). Further keyword arguments go to the mixer.
    """

    def __init__(self, in_features: int = 1, d_model: int = 64, d_state: int = 16, layers: int = 2,
                 classes: int = 10, mlp_ratio: int = 2, spiking: bool = True, neuron=DEFAULT,
                 mixer: str = "selective", dropout: float = 0.0, mlp_neuron=DEFAULT, bidirectional: bool = False,
                 pool: str = "mean", norm: str = "layer", **options):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        lru = _checks.choice("mixer", mixer, SSM_MIXERS) == "lru"
        kind = SpikingLRU if lru else SpikingSSM
        _checks.number("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.spiking = _checks.flag("spiking", spiking)
        self.pool = _checks.choice("pool", pool, CLASSIFIER_POOLS)
        bidirectional = _checks.flag("bidirectional", bidirectional)
        neuron, mlp_neuron = _ssm_neurons("SpikingSSMClassifier", spiking, neuron, mlp_neuron, options, lru)

        def token_mixer() -> nn.Module:
            if bidirectional:
                return Bidirectional(kind(d_model, d_state, neuron, **options), kind(d_model, d_state, neuron, **options))
            return kind(d_model, d_state, neuron, **options)

        norm_layer = TimeBatchNorm if _checks.choice("norm", norm, CLASSIFIER_NORMS) == "batch" else nn.LayerNorm
        self.embed = nn.Linear(in_features, d_model)
        nn.init.zeros_(self.embed.bias)  # blank pixels start as zero tokens (a random bias stalls training)
        self.blocks = nn.Sequential(*(
            Residual(d_model, [token_mixer(), SpikingMLPBlock(d_model, hidden, mlp_neuron)], dropout, norm_layer)
            for _ in range(_checks.positive_int("layers", layers))))
        self.norm = norm_layer(d_model)
        self.readout = nn.Linear(d_model, _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, in_features] -> logits [B, classes]."""
        check_tokens(x, self.in_features, like=self)
        h = self.norm(self.blocks(self.embed(x)))
        return self.readout(h.mean(1) if self.pool == "mean" else h.amax(1))


POOLS = ("last", "mean")


def _transformer_block(d_model: int, heads: int, hidden: int, T: int, score: str, mask, neuron) -> Residual:
    """One Spikformer block, pre-norm residual: x + attn(s), then x + W_2 f(W_1 s), s = LN x.

    Spiking (membrane shortcut, Spike-driven Transformer): s = neuron(LN x) along tau, so every
    projection reads spikes, and f = neuron (copies of one NPE). Twin (``neuron=None``):
    SoftmaxAttention and f = GELU, same Linear sizes.
    """
    if neuron is None:
        return Residual(d_model, [SoftmaxAttention(d_model, heads, mask),
                                  nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))])
    return Residual(d_model, [
        nn.Sequential(resolve_neuron(neuron, LIF), SpikingAttention(d_model, heads, T, score, mask, neuron=neuron)),
        nn.Sequential(resolve_neuron(neuron, LIF), SpikingLinear(d_model, hidden, neuron=neuron),
                      EventLinear(hidden, d_model))])


class SpikingTransformer(nn.Module):
    """Spikformer-style sequence classifier: token embedding, ``layers`` blocks
    of attention + MLP (pre-norm residuals), LayerNorm, a linear readout of one token.

    Tokens are real features x [B, L, in_features] (a Linear embedding) or, with ``vocab``,
    integer ids [B, L] (an nn.Embedding); no positional code (add positions as features).
    Spiking: the embedded tokens are fed as a constant current for T virtual steps, blocks run
    along tau ([T, B, L, D], :class:`SpikingAttention` with ``score``), logits are the mean over
    tau of the readout. ``spiking=False`` is the conventional twin (SoftmaxAttention, GELU MLP,
    the same Linear sizes). ``pool``: "last" reads the last token (the query), "mean" averages
    tokens. ``mask`` goes to the attention ("full" for in-context tasks, "causal", a pattern).
    ``neuron``: the NPE of every spiking layer (copied; default :class:`~neurotoken.neurons.LIF`).
    """

    def __init__(self, in_features: int = 5, d_model: int = 64, heads: int = 4, layers: int = 2,
                 classes: int = 4, mlp_ratio: int = 2, T: int = 8, score: str = "and", mask="full",
                 pool: str = "last", vocab: int | None = None, spiking: bool = True, neuron=DEFAULT, **legacy):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        d_model = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        self.T = _checks.positive_int("T", T)
        self.pool = _checks.choice("pool", pool, POOLS)
        self.vocab = None if vocab is None else _checks.positive_int("vocab", vocab)
        self.spiking = _checks.flag("spiking", spiking)
        neuron = resolve_neuron(legacy_neuron("SpikingTransformer", neuron, legacy, LIF), LIF) if spiking else None
        self.embed = nn.Linear(in_features, d_model) if vocab is None else nn.Embedding(vocab, d_model)
        self.blocks = nn.Sequential(*(
            _transformer_block(d_model, heads, hidden, T, score, mask, neuron)
            for _ in range(_checks.positive_int("layers", layers))))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, _checks.positive_int("classes", classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, in_features] (or ids [B, L] with ``vocab``) -> logits [B, classes]."""
        if self.vocab is None:
            h = self.embed(check_tokens(x, self.in_features, like=self))
        else:
            h = _embed("x", _check_ids("x", x, self.embed), self.embed)
        if self.spiking:
            h = h.expand(self.T, *h.shape)
        h = self.norm(self.blocks(h))
        h = h[..., -1, :] if self.pool == "last" else h.mean(-2)
        logits = self.readout(h)
        return logits.mean(0) if self.spiking else logits


LM_BACKBONES = ("spikegpt", "pspikessm", "mamba")


class SpikingLM(nn.Module):
    """Byte-level language model: embedding, ``layers`` stateful blocks, LayerNorm, linear head.

    ``backbone="spikegpt"``: :class:`~neurotoken.mixers.SpikeGPTBlock` (twin: RWKVBlock);
    ``"pspikessm"``: pre-norm residual of :class:`SpikingSSM` and :class:`SpikingMLPBlock` (twin:
    real SSM readouts, GELU MLP); ``"mamba"``: pre-norm residual of :class:`SpikingMamba` alone, its
    projections reading spikes (twin: :class:`MambaBlock`; ``options`` such as ``expand``, ``d_conv``
    go to both). ``neuron`` spikes the mixer (spikegpt: the time-mix output, pspikessm: the SSM
    readout, mamba: the projections' inputs), ``mlp_neuron`` the channel mix / MLP (NPEs or config
    dicts; defaults as in those classes; mamba has no MLP). ``options`` go to SpikeGPTBlock or
    SpikingSSM (ignored by their twins) or to both Mamba forms. State: one block state per layer.
    """

    def __init__(self, vocab: int = 256, d_model: int = 128, layers: int = 2, backbone: str = "spikegpt",
                 spiking: bool = True, hidden_ratio: int = 4, d_state: int = 16, method: str = "auto",
                 neuron=DEFAULT, mlp_neuron=DEFAULT, **options):
        super().__init__()
        self.vocab = _checks.positive_int("vocab", vocab)
        d = _checks.positive_int("d_model", d_model)
        n = _checks.positive_int("layers", layers)
        self.backbone = _checks.choice("backbone", backbone, LM_BACKBONES)
        self.spiking = _checks.flag("spiking", spiking)
        if backbone == "mamba":
            if mlp_neuron is not DEFAULT:
                raise TypeError("mlp_neuron: the mamba backbone has no MLP (neuron= spikes its projections)")
            blocks = [Residual(d, [SpikingMamba(d, d_state, neuron=neuron, method=method, **options) if spiking
                                   else MambaBlock(d, d_state, method=method, **options)]) for _ in range(n)]
        elif backbone == "spikegpt":
            blocks = [SpikeGPTBlock(d, i, n, hidden_ratio, method, neuron, mlp_neuron, **options) if spiking
                      else RWKVBlock(d, i, n, hidden_ratio, method) for i in range(n)]
        else:
            neuron, mlp_neuron = _ssm_neurons("SpikingLM", spiking, neuron, mlp_neuron, options)
            hidden = _checks.positive_int("hidden_ratio", hidden_ratio) * d
            blocks = [Residual(d, [SpikingSSM(d, d_state, neuron, method=method, **options),
                                   SpikingMLPBlock(d, hidden, mlp_neuron)]) for _ in range(n)]
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor, state: tuple | None = None, return_state: bool = False):
        """tokens [B, L] (ints in [0, vocab)) -> next-token logits [B, L, vocab] (and the state)."""
        _check_ids("tokens", tokens, self.embed)
        if state is not None and (not isinstance(state, tuple) or len(state) != len(self.blocks)):
            raise ValueError(f"state must be a tuple of {len(self.blocks)} block states")
        x, states = _embed("tokens", tokens, self.embed), []
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
        if not isinstance(prompt, (str, torch.Tensor)):
            raise TypeError(f"prompt must be a str or token ids [B, P], got {type(prompt).__name__}")
        tokens = _check_ids("prompt", encode(prompt).unsqueeze(0).to(self.embed.weight.device) if isinstance(prompt, str) else prompt, self.embed)
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


__all__ = ["SpikingMLPBlock", "SSMBlock", "Bidirectional", "SpikingSSMClassifier", "CLASSIFIER_POOLS", "CLASSIFIER_NORMS", "SpikingTransformer", "SpikingLM", "SSM_MIXERS",
           "POOLS", "LM_BACKBONES"]
