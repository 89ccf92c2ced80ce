"""Inter-token mixers: token sequences [B, L, D] -> [B, L, D], parallel forward and recurrent step."""

from . import attention, sparse, spiking_ssm, ssm
from .attention import KVCache, SoftmaxAttention, SpikingAttention
from .spiking_ssm import SpikingSSM, SpikingSSMState, lif_fixed_point
from .ssm import LinearAttention, Mixer, SelectiveSSM, linear_attention, selective_scan, ssm_scan

__all__ = ["attention", "sparse", "ssm", "spiking_ssm", "SoftmaxAttention", "SpikingAttention", "KVCache",
           "LinearAttention", "SelectiveSSM", "Mixer", "linear_attention", "selective_scan", "ssm_scan",
           "SpikingSSM", "SpikingSSMState", "lif_fixed_point"]
