"""Batch norm with TensorFlow's fused kernel beside Keras' composed fallback, chosen in one place.

Model code is written in keras.ops only; the fused kernel is the one backend-specific piece, imported only
when the TensorFlow backend runs it, with Keras' own path everywhere else and a test that both agree
(tests/models/test_faithfulness.py).
"""

from __future__ import annotations

import keras
from keras import layers, ops


def fused_batch_norm(x, gamma, beta, epsilon: float, axis: int):
    """Training-mode batch norm of an NHWC map in one fused TensorFlow kernel.

    Returns (outputs, batch mean, biased batch variance), or None where the kernel does not apply (another
    backend, rank != 4, normalisation over another axis, or a dtype it does not take). The kernel reports the
    Bessel-corrected variance, which is turned back into the biased one Keras' moving average uses."""
    if keras.backend.backend() != "tensorflow" or len(x.shape) != 4 or axis not in (-1, 3):
        return None
    import tensorflow as tf

    if x.dtype not in (tf.float32, tf.float16, tf.bfloat16):
        return None
    empty = tf.constant([], tf.float32)
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=tf.cast(gamma, tf.float32), offset=tf.cast(beta, tf.float32), mean=empty, variance=empty,
        epsilon=epsilon, data_format="NHWC", is_training=True)
    n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    return y, mean, variance * (n - 1.0) / n


@keras.saving.register_keras_serializable(package="benchbench")
class BatchNorm(layers.BatchNormalization):
    """Keras' BatchNormalization whose training step runs a fused kernel where the backend has one.

    Keras 3 composes batch norm from moments, subtract, multiply and add ops on every backend; TensorFlow's
    fused kernel (oneDNN on CPU, cuDNN on GPU) runs forward and backward 2.7x faster on a 16x128x128x64 map
    (issue 7's profile of MobileViT). Same weights, outputs and statistics (see `fused_batch_norm`);
    anything the kernel does not cover (other backends, inference, masks, renorm) takes Keras' own path."""

    def call(self, inputs, training=None, mask=None):
        fused = None
        if (training and self.trainable and mask is None and self.center and self.scale and not self.renorm
                and not self.synchronized):
            fused = fused_batch_norm(inputs, self.gamma, self.beta, self.epsilon, self.axis)
        if fused is None:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = fused
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)
