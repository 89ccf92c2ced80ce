"""Inter-token mixers: token sequences [B, L, D] -> [B, L, D], parallel forward and recurrent step."""

from . import attention, base, blocks, blocksparse, hippo, mamba, rwkv, sparse, spiking_ssm, ssm
from .attention import KVCache, SoftmaxAttention, SpikingAttention
from .base import Fire, Mixer, memoryless
from .blocks import Residual, SpikingOutput
from .hippo import HiPPOSSM
from .mamba import MambaBlock, MambaState, SpikingMamba
from .rwkv import (RWKVBlock, RWKVChannelMix, RWKVTimeMix, SpikeGPTBlock, spiking_neuron, wkv, wkv_parallel,
                   wkv_sequential)
from .spiking_ssm import SpikingLRU, SpikingSSM, SpikingSSMState, lif_fixed_point
from .ssm import LinearAttention, SelectiveSSM, linear_attention, selective_scan, ssm_scan

RWKV = RWKVBlock  # the short public name

__all__ = ["attention", "base", "blocks", "blocksparse", "hippo", "mamba", "MambaBlock", "MambaState", "SpikingMamba",
           "sparse", "ssm", "spiking_ssm", "rwkv", "HiPPOSSM", "Fire",
           "memoryless", "SoftmaxAttention",
           "SpikingAttention", "KVCache",
           "LinearAttention", "SelectiveSSM", "Mixer", "linear_attention", "selective_scan", "ssm_scan",
           "SpikingSSM", "SpikingLRU", "SpikingSSMState", "lif_fixed_point", "RWKV", "RWKVBlock", "RWKVTimeMix",
           "RWKVChannelMix",
           "SpikeGPTBlock", "SpikingOutput", "spiking_neuron", "Residual", "wkv", "wkv_parallel", "wkv_sequential"]
