"""ViT's token layers: prepend a class token, add a learned position embedding, read the class token back."""

from __future__ import annotations

import keras
from keras import layers, ops

from benchbench.layers import trunc_normal


@keras.saving.register_keras_serializable(package="benchbench")
class TokenEmbedding(layers.Layer):
    """(B, N, D) patch tokens -> (B, N [+1], D): optional learned [class] token first, then + position embedding.

    The position embedding is indexed like the tokens, which come out of the patch projection in row-major
    (raster) order, as in ViT (Dosovitskiy et al. 2021, eq. 1) and google-research/vision_transformer.
    """

    def __init__(self, class_token: bool = True, init_std: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.class_token = class_token
        self.init_std = init_std

    def build(self, input_shape):
        num_tokens, dim = input_shape[1] + int(self.class_token), input_shape[2]
        init = trunc_normal(self.init_std)
        self.cls = self.add_weight(shape=(1, 1, dim), initializer="zeros", name="cls") if self.class_token else None
        self.position = self.add_weight(shape=(1, num_tokens, dim), initializer=init, name="position")

    def call(self, tokens):
        if self.class_token:
            cls = ops.broadcast_to(ops.cast(self.cls, tokens.dtype), (ops.shape(tokens)[0], 1, tokens.shape[2]))
            tokens = ops.concatenate([cls, tokens], axis=1)
        return tokens + ops.cast(self.position, tokens.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] + int(self.class_token), input_shape[2])

    def get_config(self):
        return {**super().get_config(), "class_token": self.class_token, "init_std": self.init_std}


@keras.saving.register_keras_serializable(package="benchbench")
class ClassTokenPool(layers.Layer):
    """(B, N, D) -> (B, D): the representation of the [class] token (token 0)."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
