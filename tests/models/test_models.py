"""Checks every registered model gets with no new test code: shape, finiteness, learning, save/load."""

import keras
import numpy as np
import pytest

import benchbench
from support.cli import run_script
from support.env import scrubbed_env
from support.models import BATCH, NUM_CLASSES, build, image_size_for, images

ALL_MODELS = benchbench.list_models()
# The paper-size variants' training steps and save/load take 10-25 s each: in the full suite, not `make test-fast`.
BIG = {"convnext_tiny", "resnet50v2", "shiftvit_s", "shiftvit_t", "vit_small"}
SMALL_FAST_BIG_SLOW = [pytest.param(name, marks=pytest.mark.slow) if name in BIG else name for name in ALL_MODELS]


def test_catalogue_is_complete():
    expected = {"vit_keras", "vit_tiny", "vit_small", "shiftvit_keras", "shiftvit_t_light", "shiftvit_t",
                "shiftvit_s", "mobilevit_xxs", "mobilevit_xs", "mobilevit_s", "resnet50v2", "convnext_tiny", "resnet20"}
    assert expected <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_the_catalogue_file_is_the_registry_built_now(name):
    """`benchbench models` reads benchbench/model_catalogue.json instead of building every model: each registered
    model must be in it as its reference configuration builds now."""
    from benchbench.model_catalogue import rows
    from benchbench.models import catalogue

    assert [row["model"] for row in rows()] == ALL_MODELS, "run `make catalogue` after adding or removing a model"
    assert rows(name) == catalogue(name), "run `make catalogue` after changing a model"


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
def test_initial_weights_are_seeded_and_distinct(name):
    """The same seed builds the same weights, and no two random kernels start equal: a Keras initializer draws
    its seed when constructed, so one instance shared by several layers repeats its values in each of them."""
    def initial_weights():
        keras.utils.set_random_seed(0)
        return [np.asarray(v) for v in build(name).weights]

    first, second = initial_weights(), initial_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    kernels = [a.tobytes() for a in first if a.ndim >= 2 and not np.all(a == a.flat[0])]
    assert len(set(kernels)) == len(kernels), f"{len(kernels) - len(set(kernels))} kernels repeat another"


@pytest.mark.slow
def test_initial_weights_do_not_depend_on_the_process():
    """scripts/fingerprint.py, run twice with different string-hash seeds, prints the same weight hashes."""
    one_per_family = sorted({benchbench.model_info(n).family: n for n in ALL_MODELS}.values())
    runs = [run_script("fingerprint.py", *one_per_family, env=scrubbed_env(PYTHONHASHSEED="random"), timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.splitlines()) == len(one_per_family)


@pytest.mark.parametrize("name", SMALL_FAST_BIG_SLOW)
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
    losses = [float(model.train_on_batch(x, y))]
    while len(losses) < 6 and not losses[-1] < 0.8 * losses[0]:  # up to six steps; most need one or two
        losses.append(float(model.train_on_batch(x, y)))
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", SMALL_FAST_BIG_SLOW)
def test_save_and_load_round_trip(name, tmp_path):
    model = build(name)
    x = images(image_size_for(name))
    before = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = benchbench.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), before)
    assert loaded.name == model.name
