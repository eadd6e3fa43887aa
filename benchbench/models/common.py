"""Pieces several families share: input normalisation, stochastic depth, weight initialisers, and the fast
batch norm and self-attention layers."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from benchbench import kernels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalization(name: str = "normalize") -> layers.Layer:
    """Maps raw [0, 255] RGB to ImageNet-standardised inputs, the convention of the official training code."""
    return layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN], variance=[(255.0 * s) ** 2 for s in IMAGENET_STD], name=name
    )


def drop_path(rate: float, rank: int, name: str) -> layers.Layer:
    """Stochastic depth (Huang et al. 2016): drops a whole residual branch per sample.

    That is dropout whose mask is shared by every position and channel of a sample, which Keras' own
    Dropout does with a broadcast noise_shape (and it scales the kept branches by 1 / (1 - rate)).
    """
    return layers.Dropout(rate, noise_shape=(None,) + (1,) * (rank - 1), name=name)


def stochastic_depth_rates(max_rate: float, depth: int) -> list[float]:
    """Linearly increasing drop-path rates from 0 to max_rate over `depth` blocks (timm / SPACH rule)."""
    if depth == 1:
        return [0.0]
    return [max_rate * i / (depth - 1) for i in range(depth)]


def trunc_normal(std: float = 0.02) -> keras.initializers.Initializer:
    """timm's `trunc_normal_(std=.02)`, used by SPACH and ml-cvnets, truncates at +-2 in absolute value, i.e.
    100 standard deviations: a plain normal. Keras' TruncatedNormal cuts at 2 sigma (std 12 % lower).

    Call it once per layer: a Keras initializer draws its seed when constructed, so one instance shared by
    several layers gives every same-shaped kernel identical initial values."""
    return keras.initializers.RandomNormal(stddev=std)


@keras.saving.register_keras_serializable(package="benchbench")
class BatchNorm(layers.BatchNormalization):
    """Keras' BatchNormalization whose training step runs a fused kernel where the backend has one.

    Keras 3 composes batch norm from moments, subtract, multiply and add ops on every backend; TensorFlow's
    fused kernel (oneDNN on CPU, cuDNN on GPU) runs forward and backward 2.7x faster on a 16x128x128x64 map
    (issue 7's profile of MobileViT). Same weights, outputs and statistics (see `kernels.fused_batch_norm`);
    anything the kernel does not cover (other backends, inference, masks, renorm) takes Keras' own path."""

    def call(self, inputs, training=None, mask=None):
        fused = None
        if (training and self.trainable and mask is None and self.center and self.scale and not self.renorm
                and not self.synchronized):
            fused = kernels.fused_batch_norm(inputs, self.gamma, self.beta, self.epsilon, self.axis)
        if fused is None:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = fused
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="benchbench")
class SelfAttention(layers.Layer):
    """Multi-head self-attention (Vaswani et al. 2017, sec. 3.2.2) over (B, N, D) tokens.

    The parameters of Keras' MultiHeadAttention used for self-attention (query, key, value and output
    projections with biases), with its default initialisation (glorot over the (D, heads x width) and
    (heads x width, D) matrices), computed as one fused query/key/value matmul and two batched matmuls.
    Keras' layer runs an einsum per projection, each with its own transposes: forward and backward of
    vit_keras' attention take 47 ms there and 36 ms here (issue 7's profile). Dropout acts on the attention
    probabilities, as in the reference implementations.
    """

    def __init__(self, num_heads: int, head_dim: int, dropout: float = 0.0, init_std: float | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.head_dim, self.dropout, self.init_std = num_heads, head_dim, dropout, init_std
        self.attention_dropout = layers.Dropout(dropout)

    def _weight(self, shape, name, bias=False):
        if bias:
            init = "zeros"
        else:  # a fresh initializer per kernel (see trunc_normal)
            init = trunc_normal(self.init_std) if self.init_std else keras.initializers.GlorotUniform()
        return self.add_weight(shape=shape, initializer=init, name=name)

    def build(self, input_shape):
        dim, inner = input_shape[-1], self.num_heads * self.head_dim
        self.qkv_kernels = [self._weight((dim, inner), name) for name in ("query", "key", "value")]
        self.qkv_biases = [self._weight((inner,), f"{name}_bias", bias=True) for name in ("query", "key", "value")]
        self.output_kernel = self._weight((inner, dim), "output")
        self.output_bias = self._weight((dim,), "output_bias", bias=True)

    def call(self, x, training=None):
        batch, tokens = ops.shape(x)[0], ops.shape(x)[1]
        heads, width = self.num_heads, self.head_dim
        qkv = ops.matmul(x, ops.concatenate(self.qkv_kernels, axis=1)) + ops.concatenate(self.qkv_biases, axis=0)
        qkv = ops.reshape(qkv, (batch, tokens, 3, heads, width))
        q, k, v = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)), 3, axis=0)  # each (B, heads, N, width)
        scores = ops.einsum("bhqd,bhkd->bhqk", q * (1.0 / math.sqrt(width)), k)
        probs = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        out = ops.reshape(ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3)), (batch, tokens, heads * width))
        return ops.matmul(out, self.output_kernel) + self.output_bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "head_dim": self.head_dim,
                "dropout": self.dropout, "init_std": self.init_std}
