"""Inter-token mixers: token sequences [B, L, D] -> [B, L, D], parallel forward and recurrent step."""

from . import attention, sparse
from .attention import KVCache, SoftmaxAttention, SpikingAttention

__all__ = ["attention", "sparse", "SoftmaxAttention", "SpikingAttention", "KVCache"]
