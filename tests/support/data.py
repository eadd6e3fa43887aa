"""Shared measurement for the pipeline-throughput tests."""

import time

from benchbench.data import get_dataset
from benchbench.data.pipeline import train_batches

# Images/s a 64 px training pipeline must beat. Alone, the digits folder streams at 4,400-5,600 img/s here
# (decoded every epoch or cached); in the suite, a pytest worker training beside it on the same 2 cores
# brought it to 1,644 once (December 7). The models these pipelines feed train at a few hundred img/s
# at 32 px and fewer at 64, so 1,000 still says the pipeline is never the bottleneck.
FAR_ABOVE_TRAINING = 1_000


def pipeline_images_per_second(dataset: str, *, image_size: int, batch_size: int, epochs: int,
                               augment: str = "pad_crop_flip", cache: bool = True) -> float:
    """Images/s of the training pipeline over several epochs, after the first pass has filled the cache
    (as a run's first epoch does), or decoding its examples every epoch (`cache=False`: a large image folder)."""
    spec = get_dataset(dataset)
    examples = spec.load("train", None)
    examples = examples.cache() if cache else examples
    n = spec.split_sizes()["train"]
    list(examples)
    start, seen = time.perf_counter(), 0
    for epoch in range(epochs):
        for x, _ in train_batches(examples, n, image_size=image_size, batch_size=batch_size,
                                  num_classes=spec.num_classes, seed=0, epoch=epoch, augment=augment):
            seen += x.shape[0]
    return seen / (time.perf_counter() - start)
