"""Layers several model families share: self-attention, batch norm with its fused kernel, dropout with a cheaper
mask, stochastic depth, initialisers and input normalisation. Like all model code, written in keras.ops (runs on any
backend), but for two TensorFlow kernels each chosen in one place, Keras' own path elsewhere: fused batch norm and
the dropout mask."""

from benchbench.layers.attention import SelfAttention
from benchbench.layers.batch_norm import BatchNorm
from benchbench.layers.drop_path import drop_path, stochastic_depth_rates
from benchbench.layers.dropout import Dropout
from benchbench.layers.init import imagenet_normalization, trunc_normal
from benchbench.layers.mixing import TokenMixing, token_mixing

__all__ = ["BatchNorm", "Dropout", "SelfAttention", "TokenMixing", "drop_path", "imagenet_normalization",
           "stochastic_depth_rates", "token_mixing", "trunc_normal"]
