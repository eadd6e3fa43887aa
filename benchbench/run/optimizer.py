"""AdamW as the recipe trains with it: Keras' AdamW, its Adam step in one fused kernel on TensorFlow.

Keras 3 writes Adam's step as eleven element-wise ops per variable (two moment updates, the bias-corrected
step), each a pass over the parameters; tf.keras 2 called TensorFlow's fused ResourceApplyAdam, one pass that
reads the variable, both moments and the gradient and writes them back in place. The arithmetic is the same,
in the same order: m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2), w -= alpha m / (sqrt(v) + epsilon) with
alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t). On the EPYC the step over vit_keras' 18.9 M-parameter head
layer took 24.5-28 ms against Keras' 60-64 (one process, medians of 10). Weight decay stays Keras' own
(decoupled, before the step); JAX and torch, and amsgrad, take Keras' path.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="benchbench")
class AdamW(keras.optimizers.AdamW):
    """Keras' AdamW (same arguments, variables and config) with TensorFlow's fused Adam step."""

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle, v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype))  # a sparse (embedding) gradient made dense


@keras.saving.register_keras_serializable(package="benchbench")
class AdamWUnscaledDecay(AdamW):
    """AdamW whose decoupled decay is not multiplied by the learning rate: each step subtracts weight_decay x w,
    as TensorFlow Addons' AdamW did (the keras.io ShiftViT and original ViT tutorials'). Keras reads the rate
    for the decay through _get_current_learning_rate inside _apply_weight_decay (on every backend, and under a
    distribution strategy); during that call this optimizer answers 1."""

    _decaying = False

    def _apply_weight_decay(self, variables):
        self._decaying = True
        try:
            super()._apply_weight_decay(variables)
        finally:
            self._decaying = False

    def _get_current_learning_rate(self):
        return 1.0 if self._decaying else super()._get_current_learning_rate()
