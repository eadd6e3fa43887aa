"""ShiftViT's defining operation: the partial shift that replaces attention."""

from __future__ import annotations

import keras
from keras import layers, ops

from benchbench.layers import TokenMixing


def partial_shift(x, n_div: int):
    """Shifts 4 groups of C // n_div channels of an NHWC map by one pixel, zero-filling the vacated border.

    As in the paper (Wang et al. 2022, sec. 3.1) and microsoft/SPACH: with g = C // n_div, channels [0, g)
    move left (out[:, :, w] = x[:, :, w + 1]), [g, 2g) right, [2g, 3g) up (out[:, h] = x[:, h + 1]),
    [3g, 4g) down, and the remaining C - 4g channels pass through: 4 / n_div of the channels move.
    """
    # Written with split / slice / concatenate rather than strided indexing: their gradients (concatenate,
    # pad, slice) touch each element once, where TensorFlow's strided-slice gradient scatters into a
    # zero-filled copy of the whole input per slice; fwd+bwd is 3x faster (issue 7's profile).
    g = x.shape[-1] // n_div
    b, h, w, _ = ops.shape(x)
    left, right, up, down, rest = ops.split(x, [g, 2 * g, 3 * g, 4 * g], axis=-1)
    zero_col, zero_row = ops.zeros((b, h, 1, g), x.dtype), ops.zeros((b, 1, w, g), x.dtype)
    left = ops.concatenate([ops.slice(left, (0, 0, 1, 0), (b, h, w - 1, g)), zero_col], axis=2)
    right = ops.concatenate([zero_col, ops.slice(right, (0, 0, 0, 0), (b, h, w - 1, g))], axis=2)
    up = ops.concatenate([ops.slice(up, (0, 1, 0, 0), (b, h - 1, w, g)), zero_row], axis=1)
    down = ops.concatenate([zero_row, ops.slice(down, (0, 0, 0, 0), (b, h - 1, w, g))], axis=1)
    return ops.concatenate([left, right, up, down, rest], axis=-1)


@keras.saving.register_keras_serializable(package="benchbench")
class PartialShift(layers.Layer):
    """Layer form of `partial_shift`: no parameters, no FLOPs, just data movement."""

    def __init__(self, n_div: int = 12, **kwargs):
        super().__init__(**kwargs)
        self.n_div = n_div
        self.token_mixing = None

    def build(self, input_shape):
        self.token_mixing = TokenMixing(self.name, "shift", (input_shape[1], input_shape[2]))

    def call(self, x):
        return partial_shift(x, self.n_div)

    def get_config(self):
        return {**super().get_config(), "n_div": self.n_div}
