"""Swin's defining operations: window partition, the cyclic shift with its attention mask, window attention with
a relative position bias, and patch merging (Liu et al. 2021, sec. 3; microsoft/Swin-Transformer).

Feature maps stay (B, H, W, C) between blocks, as in ShiftViT here: a block's attention partitions its map into
non-overlapping w x w windows and attends within each; every second block first rolls the map by half a window
up and left, so windows straddle the previous windows' borders. Pixels the roll brings together from opposite
edges were not neighbours: the mask keeps them from attending to each other.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from benchbench.layers import Dropout, TokenMixing, trunc_normal

MASKED = -100.0  # the official mask value: exp(-100) is zero next to any real score


def window_partition(x, window: int):
    """(B, H, W, C) -> (B * H/w * W/w, w * w, C): windows in raster order, each window's pixels in raster order."""
    _, h, w, c = x.shape
    x = ops.reshape(x, (-1, h // window, window, w // window, window, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, H/w, W/w, w, w, C)
    return ops.reshape(x, (-1, window * window, c))


def window_reverse(windows, window: int, height: int, width: int):
    """Inverse of `window_partition`: (B * nW, w * w, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = ops.reshape(windows, (-1, height // window, width // window, window, window, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, H/w, w, W/w, w, C)
    return ops.reshape(x, (-1, height, width, c))


def relative_position_index(window: int) -> np.ndarray:
    """(w*w, w*w): for query token i and key token j of a window, the row of the (2w-1)^2 bias table that holds
    their offset (dy, dx) = (yi - yj, xi - xj): (dy + w - 1) * (2w - 1) + (dx + w - 1)."""
    ys, xs = np.divmod(np.arange(window * window), window)
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


def shift_regions(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """(H, W) labels of the rolled map: pixels with different labels came from regions that were not adjacent
    before the roll (the last `shift` rows and columns wrapped around from the other edge)."""
    bounds = lambda n: (slice(0, n - window), slice(n - window, n - shift), slice(n - shift, n))  # noqa: E731
    labels = np.zeros((height, width), np.int64)
    for i, rows in enumerate(bounds(height)):
        for j, cols in enumerate(bounds(width)):
            labels[rows, cols] = 3 * i + j
    return labels


def shift_attention_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """(nW, w*w, w*w): 0 where query and key share a region, MASKED where they do not."""
    labels = shift_regions(height, width, window, shift)
    per_window = labels.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    per_window = per_window.reshape(-1, window * window)  # window_partition's order, in NumPy
    return np.where(per_window[:, :, None] == per_window[:, None, :], 0.0, MASKED).astype("float32")


@keras.saving.register_keras_serializable(package="benchbench")
class WindowAttention(layers.Layer):
    """(Shifted) window multi-head self-attention over a (B, H, W, C) map, with a learned bias per head for each
    relative offset within a window. Where the map is no larger than the window, the official rule applies:
    the window becomes the whole map and nothing is shifted."""

    def __init__(self, num_heads: int, window_size: int, shift: bool, attention_dropout: float = 0.0,
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.window_size, self.shift = num_heads, window_size, shift
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.attention_drop = Dropout(attention_dropout)
        self.proj_drop = Dropout(dropout)
        self.token_mixing = None

    def build(self, input_shape):
        _, height, width, dim = input_shape
        self.window = min(self.window_size, height, width)
        self.shift_size = self.window // 2 if self.shift and min(height, width) > self.window_size else 0
        if height % self.window or width % self.window:
            raise ValueError(f"a {height}x{width} map does not split into {self.window}x{self.window} windows: "
                             "choose an image size, patch size and window size that divide")
        if dim % self.num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads {self.num_heads}")
        self.token_mixing = TokenMixing(self.name, "attention", (self.window * self.window,))
        self.qkv = self.add_weight(shape=(dim, 3 * dim), initializer=trunc_normal(0.02), name="qkv")
        self.qkv_bias = self.add_weight(shape=(3 * dim,), initializer="zeros", name="qkv_bias")
        self.proj = self.add_weight(shape=(dim, dim), initializer=trunc_normal(0.02), name="proj")
        self.proj_bias = self.add_weight(shape=(dim,), initializer="zeros", name="proj_bias")
        self.bias_table = self.add_weight(shape=((2 * self.window - 1) ** 2, self.num_heads),
                                          initializer=trunc_normal(0.02), name="relative_position_bias_table")
        self.index = relative_position_index(self.window).reshape(-1)
        self.mask = shift_attention_mask(height, width, self.window, self.shift_size) if self.shift_size else None

    def call(self, x, training=None):
        _, height, width, dim = x.shape
        window, shift, heads = self.window, self.shift_size, self.num_heads
        if shift:
            x = ops.roll(x, shift=(-shift, -shift), axis=(1, 2))
        windows = window_partition(x, window)  # (B * nW, N, C)
        tokens = window * window
        qkv = ops.reshape(ops.add(ops.matmul(windows, self.qkv), self.qkv_bias), (-1, tokens, 3, heads, dim // heads))
        q, k, v = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)), 3, axis=0)  # each (B * nW, heads, N, C/heads)
        scores = ops.matmul(q * (1.0 / math.sqrt(dim // heads)), ops.swapaxes(k, -1, -2))
        bias = ops.reshape(ops.take(self.bias_table, self.index, axis=0), (tokens, tokens, heads))
        scores = scores + ops.transpose(bias, (2, 0, 1))
        if self.mask is not None:
            count = self.mask.shape[0]
            mask = ops.cast(self.mask[None, :, None], scores.dtype)
            scores = ops.reshape(scores, (-1, count, heads, tokens, tokens)) + mask
            scores = ops.reshape(scores, (-1, heads, tokens, tokens))
        probs = self.attention_drop.after_softmax(scores, training=training)
        out = ops.reshape(ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3)), (-1, tokens, dim))
        out = self.proj_drop(ops.add(ops.matmul(out, self.proj), self.proj_bias), training=training)
        out = window_reverse(out, window, height, width)
        return ops.roll(out, shift=(shift, shift), axis=(1, 2)) if shift else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "window_size": self.window_size,
                "shift": self.shift, "attention_dropout": self.attention_dropout, "dropout": self.dropout}


def merge_neighbours(x):
    """(B, H, W, C) -> (B, H/2, W/2, 4C): each 2x2 neighbourhood's pixels concatenated in the official order of
    (row, column) offsets: (0, 0), (1, 0), (0, 1), (1, 1)."""
    return ops.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)


@keras.saving.register_keras_serializable(package="benchbench")
class PatchMerging(layers.Layer):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): `merge_neighbours`, LayerNorm over the 4C, a linear map to 2C without
    bias."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        _, height, width, dim = input_shape
        if height % 2 or width % 2:
            raise ValueError(f"patch merging needs an even map, got {height}x{width}")
        self.norm = layers.LayerNormalization(epsilon=self.epsilon, name="norm")
        self.norm.build((None, height // 2, width // 2, 4 * dim))
        self.reduction = layers.Dense(2 * dim, use_bias=False, kernel_initializer=trunc_normal(0.02),
                                      name="reduction")
        self.reduction.build((None, height // 2, width // 2, 4 * dim))

    def call(self, x):
        return self.reduction(self.norm(merge_neighbours(x)))

    def compute_output_shape(self, input_shape):
        batch, height, width, dim = input_shape
        return batch, height // 2, width // 2, 2 * dim

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
