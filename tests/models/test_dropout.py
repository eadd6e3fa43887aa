"""The half-bits dropout (layers/dropout.py) against its definition: the realised drop rate by simulation, the
independence of the two draws a Philox word feeds, the kept values' scale, the gradient against NumPy, seeding,
and the broadcast mask of stochastic depth."""

import keras
import numpy as np
import pytest
from scipy import stats

from benchbench.layers.dropout import RESOLUTION, Dropout, drop_threshold

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the fast path is TensorFlow's")


def _mask(rate, shape, seed=0, noise_shape=None):
    """The layer's output on ones: 0 where dropped, 1 / (1 - rate) where kept."""
    layer = Dropout(rate, noise_shape=noise_shape, seed=seed)
    return keras.ops.convert_to_numpy(layer(np.ones(shape, "float32"), training=True))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9, 1e-3])
def test_drop_rate_is_the_16_bit_threshold_within_binomial_noise(rate):
    mask = _mask(rate, (1000, 1001))  # odd size: the last word's second half is discarded
    p = drop_threshold(rate) / RESOLUTION
    assert abs(p - rate) <= 0.5 / RESOLUTION
    dropped = int((mask == 0).sum())
    assert stats.binomtest(dropped, mask.size, p).pvalue > 1e-4
    kept = mask[mask != 0]
    np.testing.assert_array_equal(kept, np.float32(1.0 / (1.0 - rate)))


def test_the_two_halves_of_a_word_are_independent():
    """Neighbouring elements share a Philox word: their joint drops must be p^2, not correlated."""
    rate = 0.3
    flat = (_mask(rate, (2_000_000,)) == 0).reshape(-1, 2)
    table = np.array([[np.sum(~flat[:, 0] & ~flat[:, 1]), np.sum(~flat[:, 0] & flat[:, 1])],
                      [np.sum(flat[:, 0] & ~flat[:, 1]), np.sum(flat[:, 0] & flat[:, 1])]])
    assert stats.chi2_contingency(table).pvalue > 1e-4


def test_a_biased_generator_would_fail_the_rate_check():
    """The binomial check has power: a generator dropping 51 % instead of 50 % is rejected."""
    mask = _mask(0.5, (1000, 1000))
    assert stats.binomtest(int((mask == 0).sum()), mask.size, 0.5 + 0.01).pvalue < 1e-4


def test_gradient_is_the_mask_times_the_upstream_gradient():
    import tensorflow as tf

    layer = Dropout(0.25, seed=3)
    x = tf.Variable(np.random.default_rng(0).normal(size=(64, 33)).astype("float32"))
    upstream = np.random.default_rng(1).normal(size=(64, 33)).astype("float32")
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    grad, y = tape.gradient(loss, x).numpy(), y.numpy()
    mask = np.where(y != 0, np.float32(1 / 0.75), np.float32(0))  # x is never exactly 0
    np.testing.assert_allclose(y, x.numpy() * mask, rtol=1e-7)
    np.testing.assert_allclose(grad, upstream * mask, rtol=1e-7)


def test_seeded_layers_repeat_and_successive_calls_differ():
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    x = np.ones((256, 256), "float32")
    first = keras.ops.convert_to_numpy(a(x, training=True))
    np.testing.assert_array_equal(first, keras.ops.convert_to_numpy(b(x, training=True)))
    assert (first != keras.ops.convert_to_numpy(a(x, training=True))).mean() > 0.4


def test_noise_shape_drops_whole_samples_like_stochastic_depth():
    mask = _mask(0.5, (4000, 3, 5), noise_shape=(None, 1, 1))
    per_sample = mask.reshape(4000, -1)
    assert (per_sample == per_sample[:, :1]).all()
    assert 0.45 < (per_sample[:, 0] == 0).mean() < 0.55


def test_inference_and_rate_zero_pass_through():
    x = np.arange(12, dtype="float32").reshape(3, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Dropout(0.5)(x, training=False)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Dropout(0.0)(x, training=True)), x)


def test_softmax_dropout_is_dropout_of_softmax_with_its_gradient(monkeypatch):
    """after_softmax (attention probabilities): bitwise the values and random stream of the layer called on
    softmax(scores), and the gradient of the composition, worked out in NumPy from its definition."""
    import tensorflow as tf

    from benchbench.layers import dropout

    fused_calls = []  # the fused path, not the layer on softmax (the same values), is what is tested
    monkeypatch.setattr(dropout, "tensorflow_softmax_dropout",
                        lambda *args, real=dropout.tensorflow_softmax_dropout: fused_calls.append(1) or real(*args))

    rng = np.random.default_rng(0)
    scores = tf.Variable(rng.normal(scale=3.0, size=(8, 2, 17, 17)).astype("float32"))
    upstream = rng.normal(size=(8, 2, 17, 17))
    fused, plain = Dropout(0.2, seed=5), Dropout(0.2, seed=5)
    for _ in range(2):  # successive calls draw the same successive masks
        with tf.GradientTape() as tape:
            y = fused.after_softmax(scores, training=True)
            loss = tf.reduce_sum(y * upstream.astype("float32"))
        np.testing.assert_array_equal(y.numpy(), plain(tf.nn.softmax(scores), training=True).numpy())
    grad = tape.gradient(loss, scores).numpy()
    s = scores.numpy().astype("float64")
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    mask = np.where(y.numpy() != 0, 1 / 0.8, 0.0)  # no probability is exactly 0 here
    # y_j = p_j m_j and dp_j / ds_i = p_j (delta_ij - p_i): dL/ds_i = sum_j u_j m_j p_j (delta_ij - p_i)
    reference = upstream * mask * p - p * (upstream * mask * p).sum(-1, keepdims=True)
    np.testing.assert_allclose(grad, reference, rtol=1e-4, atol=1e-6)
    assert 0.1 < (mask == 0).mean() < 0.3 and len(fused_calls) == 2
    np.testing.assert_array_equal(fused.after_softmax(scores, training=False).numpy(), tf.nn.softmax(scores).numpy())
