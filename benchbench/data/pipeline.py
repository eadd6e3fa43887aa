"""tf.data input pipeline: deterministic for a given seed, augmentation owned here (never inside models).

Order and augmentation of epoch e depend only on (seed, e), never on how many epochs ran before in this
process, so a run resumed at epoch e sees exactly the images an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def _fixed_knobs(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Turns tf.data's autotuning off: AUTOTUNE then means min(16, cores) map threads and a default prefetch.

    Deleting an autotuned iterator waits for the tuning thread, which sleeps for its doubling optimisation
    period and was not woken here (TensorFlow 2.21): 4 in 10 runs stalled 6-8 s as their fit or evaluate
    returned, after 20 s of training (issue 7, py-spy on the stalled thread). Fixed knobs deliver 0-13 %
    fewer images per second than tuned ones here, still 50-176x what the models consume."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _resize(image, size: int):
    return tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear")


def _pad_crop(image, seeds, size: int, flip: bool):
    """Resize to size, zero-pad by size/8 and take a random size x size crop (CIFAR's pad-4 crop at 32 px)."""
    image = _resize(image, size)
    pad = max(1, size // 8)
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1]) if flip else image


def _resize_crop_flip(image, seeds, size: int):
    """keras.io MobileViT: resize to size + 24 (280 for 256), random size crop, horizontal flip."""
    image = _resize(image, size + size * 3 // 32)
    image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def _random_resized_crop_flip(image, seeds, size: int):
    """Inception-style random resized crop (area 8-100 %, aspect 3/4-4/3), then flip."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.zeros([1, 0, 4]), seed=seeds[0], area_range=(0.08, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3), min_object_covered=0.0, use_image_if_no_bounding_boxes=True)
    image = _resize(tf.slice(image, begin, crop_size), size)
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


AUGMENTATIONS: dict[str, Callable] = {
    "none": lambda image, seeds, size: _resize(image, size),
    "pad_crop": lambda image, seeds, size: _pad_crop(image, seeds, size, flip=False),
    "pad_crop_flip": lambda image, seeds, size: _pad_crop(image, seeds, size, flip=True),
    "resize_crop_flip": _resize_crop_flip,
    "random_resized_crop_flip": _random_resized_crop_flip,
}


def train_batches(examples: tf.data.Dataset, num_examples: int, *, image_size: int, batch_size: int,
                  num_classes: int, seed: int, epoch: int, augment: str) -> tf.data.Dataset:
    """One epoch of shuffled, augmented, batched (float32 images in [0, 255], one-hot labels)."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; choose from {', '.join(AUGMENTATIONS)}")
    epoch_seed = seed * 1_000_003 + epoch
    augment_fn = AUGMENTATIONS[augment]
    # One independent stateless seed pair per example: the same result whatever the map parallelism.
    seeds = tf.data.Dataset.random(seed=epoch_seed).batch(4).map(lambda s: tf.reshape(s, (2, 2)))
    ds = examples.shuffle(num_examples, seed=epoch_seed, reshuffle_each_iteration=False)
    ds = tf.data.Dataset.zip(ds, seeds).map(
        lambda example, s: (augment_fn(example[0], s, image_size), tf.one_hot(example[1], num_classes)),
        num_parallel_calls=AUTOTUNE, deterministic=True)
    return _fixed_knobs(ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE))


def training_epochs(examples: tf.data.Dataset, num_examples: int, *, first_epoch: int, epochs: int,
                    **kwargs) -> tf.data.Dataset:
    """Epochs first_epoch, ..., epochs - 1 of `train_batches` back to back: one dataset for one `fit` call."""

    def epoch_batches(epoch):
        # The epoch is a tensor in this traced function. TensorFlow pairs each op seed with the graph's seed
        # and, when that is 0 (keras.utils.set_random_seed(0)), compares the op seed in Python, which a
        # tensor cannot do. The batches depend on (seed, epoch) only, so the traced graph gets its own seed.
        tf.random.set_seed(GRAPH_SEED)
        return train_batches(examples, num_examples, epoch=epoch, **kwargs)

    return _fixed_knobs(tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches).prefetch(AUTOTUNE))


GRAPH_SEED = 20_221_122


def eval_batches(examples: tf.data.Dataset, *, image_size: int, batch_size: int, num_classes: int) -> tf.data.Dataset:
    ds = examples.map(lambda image, label: (_resize(image, image_size), tf.one_hot(label, num_classes)),
                      num_parallel_calls=AUTOTUNE, deterministic=True)
    return _fixed_knobs(ds.batch(batch_size).prefetch(AUTOTUNE))


def padded_images(batches: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """The images of eval batches, the last one padded with zeros to a full batch: `predict` then traces one
    input shape instead of two (a trace costs a MobileViT-XXS about 1.4 s on 2 cores, more than the pass);
    drop the padded rows' outputs (the first len(dataset) rows are the real ones)."""
    def pad(images, _labels):
        return tf.pad(images, [[0, batch_size - tf.shape(images)[0]], [0, 0], [0, 0], [0, 0]])

    return _fixed_knobs(batches.map(pad))
