"""Assembled NPUs, each with a conventional twin (``spiking=False``) of the same layers."""

from .audio import KeywordSpotter
from .bert import BERT_TASKS, SpikingBERT, masked_lm_loss
from .intra import SNNClassifier
from .sequence import (LM_BACKBONES, POOLS, SSM_MIXERS, SpikingLM, SpikingMLPBlock, SpikingSSMClassifier,
                       SpikingTransformer, SSMBlock)
from .vision import SpikingCNN, SpikingSegmenter

__all__ = ["SNNClassifier", "SpikingMLPBlock", "SSMBlock", "SpikingSSMClassifier", "SpikingTransformer", "SpikingLM",
           "SSM_MIXERS", "POOLS", "LM_BACKBONES",
           "SpikingBERT", "BERT_TASKS", "masked_lm_loss",
           "SpikingCNN", "SpikingSegmenter", "KeywordSpotter"]
