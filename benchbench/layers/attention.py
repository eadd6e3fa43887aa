"""Multi-head self-attention with one fused query/key/value projection."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from benchbench.layers.dropout import Dropout
from benchbench.layers.init import trunc_normal
from benchbench.layers.mixing import TokenMixing


@keras.saving.register_keras_serializable(package="benchbench")
class SelfAttention(layers.Layer):
    """Multi-head self-attention (Vaswani et al. 2017, sec. 3.2.2) over (B, N, D) tokens.

    The parameters of Keras' MultiHeadAttention used for self-attention (query, key, value and output
    projections with biases), with its default initialisation (glorot over the (D, heads x width) and
    (heads x width, D) matrices), computed as one fused query/key/value matmul and two batched matmuls.
    Keras' layer runs an einsum per projection, each with its own transposes: forward and backward of
    vit_keras' attention take 47 ms there and 36 ms here (issue 7's profile). Dropout acts on the attention
    probabilities, as in the reference implementations.

    extra_tokens: how many of the N tokens are not image positions (ViT's class token); the layer's
    `token_mixing` counts the image tokens one sequence attends over.
    """

    def __init__(self, num_heads: int, head_dim: int, dropout: float = 0.0, init_std: float | None = None,
                 extra_tokens: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.head_dim, self.dropout, self.init_std = num_heads, head_dim, dropout, init_std
        self.extra_tokens = extra_tokens
        self.token_mixing = None
        self.attention_dropout = Dropout(dropout)

    def _weight(self, shape, name, bias=False):
        if bias:
            init = "zeros"
        else:  # a fresh initializer per kernel (see trunc_normal)
            init = trunc_normal(self.init_std) if self.init_std else keras.initializers.GlorotUniform()
        return self.add_weight(shape=shape, initializer=init, name=name)

    def build(self, input_shape):
        self.token_mixing = TokenMixing(self.name, "attention", (input_shape[1] - self.extra_tokens,))
        dim, inner = input_shape[-1], self.num_heads * self.head_dim
        self.qkv_kernels = [self._weight((dim, inner), name) for name in ("query", "key", "value")]
        self.qkv_biases = [self._weight((inner,), f"{name}_bias", bias=True) for name in ("query", "key", "value")]
        self.output_kernel = self._weight((inner, dim), "output")
        self.output_bias = self._weight((dim,), "output_bias", bias=True)

    def call(self, x, training=None):
        batch, tokens = ops.shape(x)[0], ops.shape(x)[1]
        heads, width = self.num_heads, self.head_dim
        # ops.add, not +: Keras adds a bias as TensorFlow's BiasAdd, whose gradient over the (B, N, 3 x heads x
        # width) projections took 27 ms per vit_keras step against 50 for +'s general Sum (op time, the EPYC).
        kernel, bias = ops.concatenate(self.qkv_kernels, axis=1), ops.concatenate(self.qkv_biases, axis=0)
        qkv = ops.add(ops.matmul(x, kernel), bias)
        qkv = ops.reshape(qkv, (batch, tokens, 3, heads, width))
        q, k, v = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)), 3, axis=0)  # each (B, heads, N, width)
        scores = ops.einsum("bhqd,bhkd->bhqk", q * (1.0 / math.sqrt(width)), k)
        probs = self.attention_dropout.after_softmax(scores, training=training)
        out = ops.reshape(ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3)), (batch, tokens, heads * width))
        return ops.add(ops.matmul(out, self.output_kernel), self.output_bias)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "head_dim": self.head_dim,
                "dropout": self.dropout, "init_std": self.init_std, "extra_tokens": self.extra_tokens}
