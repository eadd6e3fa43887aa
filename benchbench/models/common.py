"""Pieces every family shares: input normalisation, stochastic depth, weight initialisers."""

from __future__ import annotations

import keras
from keras import layers

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
