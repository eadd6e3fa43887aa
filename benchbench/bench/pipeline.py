"""The input pipelines' steady state: can each data set's training pipeline feed the model it is paired with?"""

from __future__ import annotations

import time

import numpy as np

# tf_flowers' photos vary in size; 333 x 500 is the most common one.
STAND_IN_SIZE = {"tf_flowers": (333, 500)}


def pipeline_throughput(dataset: str, image_size: int, batch_size: int, batches: int = 60,
                        examples: int = 2048) -> dict:
    """Images per second the training pipeline delivers in steady state: shuffle, the data set's default
    augmentation at `image_size`, one-hot labels, batching, prefetch, all from the in-memory cache the runner
    reads after the first epoch (decoding happens once per run, so it is not part of the steady state).
    Random uint8 images of the data set's native size stand in for the real ones, which are not needed."""
    import tensorflow as tf

    from benchbench.data import get_dataset
    from benchbench.data.pipeline import train_batches

    spec = get_dataset(dataset)
    h, w = STAND_IN_SIZE.get(dataset, (spec.native_size, spec.native_size))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (examples, h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, spec.num_classes, examples)
    cached = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    ds = train_batches(cached, examples, image_size=image_size, batch_size=batch_size,
                       num_classes=spec.num_classes, seed=0, epoch=0, augment=spec.augment).repeat()
    iterator = iter(ds)
    for _ in range(5):  # fill the cache, the shuffle buffer and the prefetch
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return {"dataset": dataset, "image_size": image_size, "batch_size": batch_size, "augment": spec.augment,
            "stand_in_size": [h, w], "images_per_second": batches * batch_size / (time.perf_counter() - start)}

