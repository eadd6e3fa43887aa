"""Backend kernels for standard operations, used by the model layers where the backend has a faster one.

Model code is written in keras.ops only (benchbench/models imports no backend); the one exception to that
rule lives here: a fused kernel the layer calls when it applies, with Keras' composed path as the fallback
and a test that both agree (tests/test_faithfulness.py).
"""

from __future__ import annotations

import keras


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
