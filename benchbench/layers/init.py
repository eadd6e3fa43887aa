"""Weight initialisers and the input normalisation every family starts with."""

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


def trunc_normal(std: float = 0.02) -> keras.initializers.Initializer:
    """timm's `trunc_normal_(std=.02)`, used by SPACH and ml-cvnets, truncates at +-2 in absolute value, i.e.
    100 standard deviations: a plain normal. Keras' TruncatedNormal cuts at 2 sigma (std 12 % lower).

    Call it once per layer: a Keras initializer draws its seed when constructed, so one instance shared by
    several layers gives every same-shaped kernel identical initial values."""
    return keras.initializers.RandomNormal(stddev=std)
