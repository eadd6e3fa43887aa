"""Checks every registered model gets with no new test code: shape, finiteness, learning, save/load."""

import keras
import numpy as np
import pytest

import benchbench
from model_checks import BATCH, NUM_CLASSES, build, image_size_for, images

ALL_MODELS = benchbench.list_models()


def test_catalogue_is_complete():
    expected = {"vit_keras", "vit_tiny", "vit_small", "shiftvit_keras", "shiftvit_t_light", "shiftvit_t",
                "shiftvit_s", "mobilevit_xxs", "mobilevit_xs", "mobilevit_s", "resnet50v2", "convnext_tiny"}
    assert expected <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shape_and_logits(name):
    model = build(name)
    assert model.input_shape == (None, image_size_for(name), image_size_for(name), 3)
    out = np.asarray(model(images(image_size_for(name)), training=False))
    assert out.shape == (BATCH, NUM_CLASSES)
    assert np.isfinite(out).all()
    # Logits, not probabilities: a softmax output would sum to one on every row.
    assert not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_training_step_lowers_the_loss(name):
    model = build(name)
    # Dropout and stochastic depth off (both are Dropout layers), so the check measures learning, not noise.
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    # Eager steps: tracing a graph for the big variants costs more than the six steps themselves.
    model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    x = images(image_size_for(name), n=8)
    y = np.arange(8) % NUM_CLASSES
    losses = [float(model.train_on_batch(x, y)) for _ in range(6)]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", ALL_MODELS)
def test_save_and_load_round_trip(name, tmp_path):
    model = build(name)
    x = images(image_size_for(name))
    before = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = benchbench.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), before)
    assert loaded.name == model.name
