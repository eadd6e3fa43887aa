"""Layers several model families share: self-attention, batch norm with its fused kernel, stochastic depth,
initialisers and input normalisation. Like all model code, written in keras.ops (runs on any backend)."""

from benchbench.layers.attention import SelfAttention
from benchbench.layers.batch_norm import BatchNorm
from benchbench.layers.drop_path import drop_path, stochastic_depth_rates
from benchbench.layers.init import imagenet_normalization, trunc_normal
from benchbench.layers.mixing import TokenMixing, token_mixing

__all__ = ["BatchNorm", "SelfAttention", "TokenMixing", "drop_path", "imagenet_normalization",
           "stochastic_depth_rates", "token_mixing", "trunc_normal"]
