"""Inter-token mixers: token sequences [B, L, D] -> [B, L, D], parallel forward and recurrent step."""

from . import attention, hippo, rwkv, sparse, spiking_ssm, ssm
from .attention import KVCache, SoftmaxAttention, SpikingAttention
from .hippo import HiPPOSSM
from .rwkv import (Residual, RWKVBlock, RWKVChannelMix, RWKVTimeMix, SpikeGPTBlock, SpikingOutput, spiking_neuron,
                   wkv, wkv_parallel, wkv_sequential)
from .spiking_ssm import SpikingLRU, SpikingSSM, SpikingSSMState, lif_fixed_point
from .ssm import LinearAttention, Mixer, SelectiveSSM, linear_attention, selective_scan, ssm_scan

RWKV = RWKVBlock  # the name in DESIGN.md's public API

__all__ = ["attention", "hippo", "sparse", "ssm", "spiking_ssm", "rwkv", "HiPPOSSM", "SoftmaxAttention",
           "SpikingAttention", "KVCache",
           "LinearAttention", "SelectiveSSM", "Mixer", "linear_attention", "selective_scan", "ssm_scan",
           "SpikingSSM", "SpikingLRU", "SpikingSSMState", "lif_fixed_point", "RWKV", "RWKVBlock", "RWKVTimeMix",
           "RWKVChannelMix",
           "SpikeGPTBlock", "SpikingOutput", "spiking_neuron", "Residual", "wkv", "wkv_parallel", "wkv_sequential"]
