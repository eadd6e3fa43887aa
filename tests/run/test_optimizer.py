"""The recipe's AdamW: TensorFlow's fused Adam step against Adam's definition in NumPy, over several steps,
with Keras' decoupled decay in both of its scalings, for dense and sparse (embedding) gradients."""

import numpy as np
import pytest


def numpy_adamw(w, grads, lr, wd, beta_1, beta_2, eps, decay_scale):
    """Loshchilov & Hutter's AdamW as Keras 3 orders it: decay first (w -= decay_scale x wd x w), then Adam's
    bias-corrected step (Kingma & Ba, algorithm 1, with epsilon outside the corrected square root)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w - decay_scale * wd * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("unscaled", [False, True])
def test_fused_adamw_steps_match_the_definition(unscaled):
    import keras
    import tensorflow as tf

    from benchbench.run.optimizer import AdamW, AdamWUnscaledDecay

    lr, wd = 1e-2, 0.05
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(6, 5)).astype("float32")
    grads = [rng.normal(size=(6, 5)).astype("float32") for _ in range(4)]
    optimizer = (AdamWUnscaledDecay if unscaled else AdamW)(lr, weight_decay=wd, beta_1=0.8, beta_2=0.95)
    w = keras.Variable(w0)
    optimizer.build([w])
    step = tf.function(lambda g: optimizer.apply_gradients([(g, w)]))  # as fit runs it: traced
    for g in grads:
        step(tf.constant(g))
    expected = numpy_adamw(w0, grads, lr, wd, 0.8, 0.95, optimizer.epsilon, 1.0 if unscaled else lr)
    np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-5, atol=1e-6)
    # The fused kernel ran: Keras' own path would leave the same values, so ask the graph.
    ops = {op.type for op in step.get_concrete_function(tf.constant(grads[0])).graph.get_operations()}
    assert "ResourceApplyAdam" in ops


def test_a_sparse_gradient_steps_as_a_dense_one():
    """An embedding's gradient arrives as IndexedSlices: the fused step takes it dense, as Keras' Adam does."""
    import keras
    import tensorflow as tf

    from benchbench.run.optimizer import AdamW

    table = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    results = []
    for sparse in (True, False):
        w, optimizer = keras.Variable(table), AdamW(1e-2, weight_decay=0.0)
        optimizer.build([w])
        grad = tf.IndexedSlices(tf.ones((2, 3)), tf.constant([1, 3]), tf.constant([5, 3]))
        optimizer.apply_gradients([(grad if sparse else tf.convert_to_tensor(grad), w)])
        results.append(np.asarray(w))
    np.testing.assert_array_equal(*results)
    assert not np.array_equal(results[0][1], table[1]) and np.array_equal(results[0][0], table[0])
