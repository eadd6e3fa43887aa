"""MobileViT's defining operations: unfold a feature map into per-offset patch sequences, attend, fold back."""

from __future__ import annotations

import keras
from keras import layers, ops

from benchbench.layers import Dropout, SelfAttention, trunc_normal


def unfold(x, patch_h: int, patch_w: int):
    """(B, H, W, C) -> (B, P, N, C) with P = patch_h * patch_w pixel offsets and N = (H/ph)(W/pw) patches.

    out[b, i * pw + j, r * (W/pw) + s, c] = x[b, r * ph + i, s * pw + j, c]: sequence p collects the pixel at
    offset (i, j) of every patch, so attention over N mixes patches, never pixels of one patch (Mehta &
    Rastegari 2022, sec. 3.1, fig. 1b; apple/ml-cvnets `unfolding`).
    """
    _, h, w, c = x.shape
    nh, nw = h // patch_h, w // patch_w
    x = ops.reshape(x, (-1, nh, patch_h, nw, patch_w, c))
    x = ops.transpose(x, (0, 2, 4, 1, 3, 5))  # (B, ph, pw, nh, nw, C)
    return ops.reshape(x, (-1, patch_h * patch_w, nh * nw, c))


def fold(patches, height: int, width: int, patch_h: int, patch_w: int):
    """Inverse of `unfold`: (B, P, N, C) -> (B, H, W, C)."""
    c = patches.shape[-1]
    nh, nw = height // patch_h, width // patch_w
    x = ops.reshape(patches, (-1, patch_h, patch_w, nh, nw, c))
    x = ops.transpose(x, (0, 3, 1, 4, 2, 5))  # (B, nh, ph, nw, pw, C)
    return ops.reshape(x, (-1, height, width, c))


class TransformerEncoder(layers.Layer):
    """Pre-norm Transformer layer of ml-cvnets: x + Drop(MHA(LN(x))), then x + Drop(FFN(LN(x))), FFN with SiLU."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attention_dropout: float,
                 ffn_dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.ffn_dim = ffn_dim
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.attn = SelfAttention(num_heads, dim // num_heads, dropout=attention_dropout, init_std=0.02, name="attn")
        self.drop1 = Dropout(dropout)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.fc1 = layers.Dense(ffn_dim, activation="silu", kernel_initializer=trunc_normal(0.02), name="fc1")
        self.ffn_drop = Dropout(ffn_dropout)
        self.fc2 = layers.Dense(dim, kernel_initializer=trunc_normal(0.02), name="fc2")
        self.drop2 = Dropout(dropout)

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attn.build(input_shape)
        self.norm2.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build(tuple(input_shape[:-1]) + (self.ffn_dim,))

    def call(self, x, training=None):
        y = self.norm1(x)
        x = x + self.drop1(self.attn(y, training=training), training=training)
        y = self.fc2(self.ffn_drop(self.fc1(self.norm2(x)), training=training))
        return x + self.drop2(y, training=training)


@keras.saving.register_keras_serializable(package="benchbench")
class MobileViTTransformer(layers.Layer):
    """The global representation of a MobileViT block: unfold -> L Transformer layers -> LayerNorm -> fold.

    Maps whose sides are not multiples of the patch are resized up bilinearly first and back after, as the
    official code does (so 32 px CIFAR images work, at the cost of mixing the interpolated pixels).
    """

    def __init__(self, dim: int, depth: int, num_heads: int, ffn_dim: int, patch_size: int = 2,
                 dropout: float = 0.0, attention_dropout: float = 0.0, ffn_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.depth, self.num_heads, self.ffn_dim, self.patch_size = dim, depth, num_heads, ffn_dim, patch_size
        self.dropout, self.attention_dropout, self.ffn_dropout = dropout, attention_dropout, ffn_dropout
        self.blocks = [
            TransformerEncoder(dim, num_heads, ffn_dim, dropout, attention_dropout, ffn_dropout, name=f"layer{i}")
            for i in range(depth)
        ]
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        p = self.patch_size
        return -(-h // p) * p, -(-w // p) * p

    def build(self, input_shape):
        ph, pw = self._padded(input_shape[1], input_shape[2])
        seq_shape = (None, ph * pw // self.patch_size**2, self.dim)
        for block in self.blocks:
            block.build(seq_shape)
        self.norm.build(seq_shape)

    def call(self, x, training=None):
        h, w = x.shape[1], x.shape[2]
        ph, pw = self._padded(h, w)
        if (ph, pw) != (h, w):
            x = ops.image.resize(x, (ph, pw), interpolation="bilinear")
        p = self.patch_size
        patches = unfold(x, p, p)
        num_patches = patches.shape[2]
        seq = ops.reshape(patches, (-1, num_patches, self.dim))  # (B * P, N, C): attention over N only
        for block in self.blocks:
            seq = block(seq, training=training)
        seq = self.norm(seq)
        x = fold(ops.reshape(seq, (-1, p * p, num_patches, self.dim)), ph, pw, p, p)
        if (ph, pw) != (h, w):
            x = ops.image.resize(x, (h, w), interpolation="bilinear")
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(), "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim, "patch_size": self.patch_size, "dropout": self.dropout,
            "attention_dropout": self.attention_dropout, "ffn_dropout": self.ffn_dropout,
        }
