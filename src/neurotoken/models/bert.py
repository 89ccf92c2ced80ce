"""SpikingBERT: a bidirectional spiking self-attention encoder over bytes, with a masked-byte
pre-training head and a classification head, and its conventional twin (``spiking=False``), the
teacher of its distillation (eq. (83); ``return_hidden`` gives the hidden states it matches)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..data.docstrings import IGNORE, PAD
from ..mixers.base import DEFAULT, resolve_neuron
from ..neurons import LIF
from ._common import _check_ids, _embed
from .sequence import _transformer_block

BERT_TASKS = ("classify", "mlm")


class SpikingBERT(nn.Module):
    """Byte encoder: embedding + learned positions, ``layers`` unmasked (mask="full") pre-norm blocks
    of attention + MLP, LayerNorm. Spiking: the embedded tokens are a constant current for T virtual
    steps, blocks of :class:`~neurotoken.mixers.SpikingAttention` (``score``) and spiking MLPs run
    along tau, the hidden states are their mean over tau; ``spiking=False`` is the conventional
    twin (SoftmaxAttention, GELU MLP, the same Linear sizes). Heads: ``task="mlm"`` gives byte
    logits [B, L, vocab] per position (masked-byte pre-training), ``task="classify"`` class logits
    [B, classes] of the mean of the non-PAD positions' hidden states.
    ``neuron``: the NPE of every spiking layer (copied; default :class:`~neurotoken.neurons.LIF`).
    ``dropout``: the fraction of embedded features zeroed while training (BERT's embedding dropout).
    ``ngram``: each position's embedding is the sum of one embedding table per offset of the ``ngram``
    bytes centred on it (PAD beyond the ends), so the blocks see local byte n-grams; 1: the byte alone.
    """

    def __init__(self, vocab: int = 256, d_model: int = 64, heads: int = 4, layers: int = 2, max_len: int = 256,
                 classes: int = 2, mlp_ratio: int = 2, T: int = 4, score: str = "and", spiking: bool = True,
                 neuron=DEFAULT, dropout: float = 0.0, ngram: int = 1):
        super().__init__()
        d = _checks.positive_int("d_model", d_model)
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d
        self.max_len = _checks.positive_int("max_len", max_len)
        self.T = _checks.positive_int("T", T)
        self.spiking = _checks.flag("spiking", spiking)
        neuron = resolve_neuron(neuron, LIF) if spiking else None
        self.embed = nn.Embedding(_checks.positive_int("vocab", vocab), d)
        self.ngram = _checks.positive_int("ngram", ngram)
        self.neighbours = nn.Embedding((ngram - 1) * vocab, d) if ngram > 1 else None  # the other offsets
        self.position = nn.Parameter(0.02 * torch.randn(max_len, d))
        self.drop = nn.Dropout(_checks.number("dropout", dropout, low=0.0, high=1.0, high_open=True))
        self.blocks = nn.Sequential(*(_transformer_block(d, heads, hidden, T, score, "full", neuron)
                                      for _ in range(_checks.positive_int("layers", layers))))
        self.norm = nn.LayerNorm(d)
        self.mlm_head = nn.Linear(d, vocab)
        self.classifier = nn.Linear(d, _checks.positive_int("classes", classes))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Byte ids [B, L] (L <= max_len) -> hidden states [B, L, d_model] (spiking: mean over tau)."""
        _check_ids("tokens", tokens, self.embed)
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"tokens must have at most max_len={self.max_len} positions, got shape "
                             f"{tuple(tokens.shape)}")
        h = _embed("tokens", tokens, self.embed) + self.position[:tokens.shape[1]]
        if self.neighbours is not None:
            h = h + self.neighbours(self._neighbour_ids(tokens)).sum(-2)
        h = self.drop(h)
        if self.spiking:
            h = h.expand(self.T, *h.shape)
        h = self.norm(self.blocks(h))
        return h.mean(0) if self.spiking else h

    def _neighbour_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L, ngram - 1] ids into ``neighbours``: the byte at each other offset of the window, shifted
        into that offset's table."""
        left = (self.ngram - 1) // 2
        windows = F.pad(tokens, (left, self.ngram - 1 - left), value=PAD).unfold(1, self.ngram, 1)
        others = torch.cat((windows[..., :left], windows[..., left + 1:]), -1)
        return others + torch.arange(self.ngram - 1, device=tokens.device) * self.embed.num_embeddings

    def forward(self, tokens: torch.Tensor, task: str = "classify", return_hidden: bool = False):
        """tokens [B, L] -> class logits [B, classes] (``task="classify"``) or byte logits [B, L, vocab]
        (``task="mlm"``); with ``return_hidden`` also the hidden states [B, L, d_model]."""
        _checks.choice("task", task, BERT_TASKS)
        h = self.encode(tokens)
        if task == "mlm":
            logits = self.mlm_head(h)
        else:
            real = (tokens != PAD).unsqueeze(-1).to(h.dtype)
            logits = self.classifier((h * real).sum(1) / real.sum(1).clamp_min(1))
        return (logits, h) if return_hidden else logits

    def load_twin(self, twin: SpikingBERT) -> SpikingBERT:
        """Copy ``twin``'s weights into this model (spike conversion before distillation, eq. (83)): the
        spiking encoder and its twin hold the same Linear, LayerNorm and embedding sizes in the same
        order, so parameter i takes twin parameter i. Returns self."""
        if not isinstance(twin, SpikingBERT):
            raise TypeError(f"twin must be a SpikingBERT, got {type(twin).__name__}")
        mine, theirs = list(self.parameters()), list(twin.parameters())
        if [p.shape for p in mine] != [p.shape for p in theirs]:
            raise ValueError(f"twin must have this model's parameter shapes in order (same vocab, d_model, "
                             f"heads, layers, mlp_ratio, max_len, classes, ngram and no learnable neurons), got "
                             f"{[tuple(p.shape) for p in theirs]} for {[tuple(p.shape) for p in mine]}")
        with torch.no_grad():
            for p, q in zip(mine, theirs):
                p.copy_(q)
        return self


def masked_lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A Trainer ``loss_fn`` for masked-byte pre-training: cross-entropy of ``model(x, task="mlm")``
    at the masked positions of :func:`~neurotoken.data.docstrings.mask_bytes` (targets IGNORE elsewhere)."""
    logits = model(x, task="mlm")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


__all__ = ["SpikingBERT", "BERT_TASKS", "masked_lm_loss"]
