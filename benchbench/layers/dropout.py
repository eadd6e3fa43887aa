"""Dropout whose mask costs half the random numbers on TensorFlow, beside Keras' own path on other backends.

Keras' dropout on TensorFlow draws one float32 uniform per element (Philox: one 32-bit word each), compares it
with the rate and selects; forward and backward of vit_keras' attention dropout (64 x 4 x 144 x 144) took 21.5
ms over the same graph without it, 14 ms of them drawing the uniforms (issue 20's profile: the draws were 15 %
of vit_keras' training step). Here each 32-bit word gives two 16-bit integers, each compared with
round(rate x 2^16): half the Philox work, and the mask is a multiplication whose gradient is one more.

The drop probability is therefore round(rate x 65536) / 65536: within 7.7e-6 of the rate (Keras' float32
uniforms hold it within 1.2e-7). Every element is dropped independently, kept ones scaled by 1 / (1 - rate)
as in Keras; the seed comes from the layer's SeedGenerator, so a seeded run is bitwise reproducible and a
resumed one continues the same stream. tests/models/test_dropout.py checks the realised rate by
simulation and the gradient against NumPy.
"""

from __future__ import annotations

import keras
from keras import layers

RESOLUTION = 2 ** 16  # the drop probability's quantum on the fast path


def drop_threshold(rate: float) -> int:
    """The 16-bit integer below which an element is dropped: P(drop) = threshold / 2^16."""
    return int(round(rate * RESOLUTION))


def tensorflow_dropout(x, rate: float, noise_shape, seed):
    """x with each element of a `noise_shape` mask (broadcast over x) dropped with probability
    drop_threshold(rate) / 2^16 and the rest scaled by 1 / (1 - rate), from two 16-bit halves per Philox word."""
    import tensorflow as tf

    shape = tf.shape(x) if noise_shape is None else _concrete_noise_shape(x, noise_shape)
    mask = tf.where(_keep(shape, rate, seed), tf.constant(1.0 / (1.0 - rate), x.dtype), tf.constant(0.0, x.dtype))
    return x * mask


def _keep(shape, rate: float, seed):
    """A boolean mask of `shape`, each element kept with probability 1 - drop_threshold(rate) / 2^16."""
    import tensorflow as tf

    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform(tf.reshape((size + 1) // 2, [1]), seed=seed, minval=None, maxval=None,
                                        dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]  # a free view: two per word
    return tf.reshape(halves >= tf.constant(drop_threshold(rate), tf.uint16), shape)


def tensorflow_softmax_dropout(scores, rate: float, seed):
    """dropout(softmax(scores)) over the last axis, the same values as the two apart, with one gradient for both.

    With p = softmax(s) and y = p x mask, dL/ds = t - p sum(t) where t = y x dL/dy: the mask is already in y.
    TensorFlow's two gradients take the dropout's multiplication and then softmax's own: one more pass over the
    (B, heads, N, N) probabilities. At vit_keras' attention (64 x 4 x 144 x 144), softmax, dropout and the
    following matmul, forward and backward, took 32.8 ms against 35.5 (median of 10 alternating rounds, one
    process, the EPYC); its 8 layers make that 2-3 % of the training step, below what one A/B run of the whole
    step resolves here (0.95x and 1.02x in two)."""
    import tensorflow as tf

    @tf.custom_gradient
    def fused(scores):
        probs = tf.nn.softmax(scores)
        kept = tf.where(_keep(tf.shape(scores), rate, seed), probs * tf.constant(1.0 / (1.0 - rate), probs.dtype),
                        tf.constant(0.0, probs.dtype))

        def gradient(upstream):
            t = kept * upstream
            return t - probs * tf.reduce_sum(t, axis=-1, keepdims=True)
        return kept, gradient
    return fused(scores)


def _concrete_noise_shape(x, noise_shape):
    """Keras' rule: None entries of noise_shape take x's size on that axis."""
    import tensorflow as tf

    dynamic = tf.shape(x)
    return tf.stack([dynamic[i] if size is None else size for i, size in enumerate(noise_shape)])


def _int32_seed(seed):
    """The SeedGenerator's int64 state folded into the int32 pair TensorFlow's stateless ops take (as Keras
    does for its own dropout)."""
    import tensorflow as tf

    if seed.dtype == tf.int32:
        return seed
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


@keras.saving.register_keras_serializable(package="benchbench")
class Dropout(layers.Dropout):
    """Keras' Dropout (same arguments, config and seed generator) with the half-bits mask on TensorFlow."""

    def _fast_path(self, training) -> bool:
        """Whether this call drops on TensorFlow with the half-bits mask: training with a rate that is not within
        2^-17 of 1 (those take Keras' path)."""
        return (bool(training) and self.rate > 0 and keras.backend.backend() == "tensorflow"
                and drop_threshold(self.rate) < RESOLUTION)

    def call(self, inputs, training=False):
        if not self._fast_path(training):
            return super().call(inputs, training=training)
        return tensorflow_dropout(inputs, self.rate, self.noise_shape, _int32_seed(self.seed_generator.next()))

    def after_softmax(self, scores, training=False):
        """This dropout on softmax(scores) over the last axis (attention probabilities): on TensorFlow one gradient
        for both (tensorflow_softmax_dropout), the same values and random stream as calling the layer on them."""
        if not self._fast_path(training) or self.noise_shape:
            return self(keras.ops.softmax(scores, axis=-1), training=training)
        return tensorflow_softmax_dropout(scores, self.rate, _int32_seed(self.seed_generator.next()))
