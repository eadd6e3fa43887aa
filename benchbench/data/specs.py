"""Dataset specs: what a data set is (classes, sizes, splits) and how to read it, behind a registry.

Every spec yields (uint8 image of shape (H, W, 3), int64 label) examples per split. The validation split is
carved deterministically from the training data, independent of the run seed, so every run and every seed
of a study validates on the same images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator

import numpy as np

from benchbench.registry import Registry


class DataMissingError(RuntimeError):
    """The data set is not prepared in the data directory; the message gives the command that prepares it."""


DATA_DIR_ENV = "BENCHBENCH_DATA_DIR"


def resolve_data_dir(data_dir: str | None) -> str | None:
    """--data-dir, else $BENCHBENCH_DATA_DIR, else None (TFDS's own default, ~/tensorflow_datasets)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


@contextlib.contextmanager
def using_data_dir(data_dir: str | None) -> Iterator[None]:
    """$BENCHBENCH_DATA_DIR set to `data_dir` (when given) for the duration of one command: every check that
    opens a `tfds:NAME` data set, and every process the command starts, then looks in the same directory."""
    if not data_dir:
        yield
        return
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = data_dir
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = before


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    native_size: int | None  # None: images of varying size
    default_image_size: int
    augment: str  # default training augmentation (see benchbench.data.pipeline.AUGMENTATIONS)
    default_val_size: int
    source: str  # shown by `benchbench datasets`
    num_train_total: int  # before the validation carve-out
    num_test: int
    download: bool = True  # whether `benchbench data download` has anything to do

    def split_sizes(self, val_size: int | None = None) -> dict[str, int]:
        val = self.default_val_size if val_size is None else val_size
        return {"train": self.num_train_total - val, "val": val, "test": self.num_test}

    def check_val_size(self, val_size: int) -> None:
        if not 0 < val_size < self.num_train_total:
            raise ValueError(f"{self.name}: val_size must be between 1 and {self.num_train_total - 1}, got {val_size}")

    # Source-specific behaviour, overridden by the subclasses below.
    cache_in_memory = True  # whether a run keeps the decoded examples in memory after its first epoch

    def describe(self) -> dict:
        """What a run records about its data beside the split sizes (run.json's resolved.data)."""
        return {"source": self.source}

    def is_present(self, data_dir: str | None) -> bool:
        return True

    def prepare(self, data_dir: str | None) -> None:
        pass

    def load(self, split: str, data_dir: str | None, val_size: int | None = None):
        raise NotImplementedError

    def require_present(self, data_dir: str | None) -> None:
        if not self.is_present(data_dir):
            raise missing(self.name, data_dir)


def missing(name: str, data_dir: str | None) -> DataMissingError:
    """The error for a data set that is not prepared where the run looks: it names the command to run."""
    where = data_dir or "the TFDS default directory (~/tensorflow_datasets)"
    flag = f" --data-dir {data_dir}" if data_dir else ""
    return DataMissingError(f"dataset {name!r} is not prepared in {where}; training never downloads: run "
                            f"`benchbench data download {name}{flag}` on a machine with network")


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(factory: Callable[[], DatasetSpec]) -> Callable[[], DatasetSpec]:
    """Registers the spec a zero-argument factory returns, under the spec's name."""
    spec = factory()
    DATASETS.add(spec.name, spec)
    return factory


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)


def catalogue(data_dir: str | None) -> list[dict]:
    """`benchbench datasets`: one row per data set, with its splits and whether it is on disk."""
    rows = []
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        sizes = spec.split_sizes()
        rows.append({"dataset": name, "classes": spec.num_classes, "native px": spec.native_size or "varies",
                     "train px": spec.default_image_size,
                     "train / val / test": f"{sizes['train']} / {sizes['val']} / {sizes['test']}",
                     "augment": spec.augment, "present": "yes" if spec.is_present(data_dir) else "no",
                     "source": spec.source})
    return rows


MIN_SIZE, MAX_SIZE, SIZE_STEP = 32, 224, 32  # bounds and step of a default training size taken from the data
VAL_FRACTION, TEST_FRACTION = 0.1, 0.2  # of all images: the splits carved from a user's data that has none


def native_size(sizes: list[tuple[int, int]]) -> int | None:
    """The side every image has, when all are the same square size; else None (sizes vary)."""
    return sizes[0][0] if sizes and all(h == w == sizes[0][0] for h, w in sizes) else None


def default_image_size(sizes: list[tuple[int, int]]) -> int:
    """A data set's default training size from its images' (height, width): the median shorter side, rounded to
    a multiple of 32 (what every model family here accepts) and clamped to [32, 224]: larger photos train at
    ImageNet's 224 unless the run gives --image-size."""
    median = float(np.median([min(h, w) for h, w in sizes])) if sizes else MIN_SIZE
    return int(min(MAX_SIZE, max(MIN_SIZE, SIZE_STEP * round(median / SIZE_STEP))))


# --- TensorFlow Datasets --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TFDSDataset(DatasetSpec):
    tfds_name: str = ""
    train_split: str = "train"  # the TFDS split whose first num_train_total examples train and validate
    test_split: str = "test"

    def _builder(self, data_dir):
        import tensorflow_datasets as tfds

        return tfds.builder(self.tfds_name, data_dir=data_dir)

    def is_present(self, data_dir):
        return self._builder(data_dir).is_prepared()

    def prepare(self, data_dir):
        import importlib_resources  # noqa: F401  (TFDS 4.9.10 needs it on the download path, undeclared)

        self._builder(data_dir).download_and_prepare()

    def tfds_split(self, split: str, val_size: int | None = None) -> str:
        """The TFDS split string: validation is the last `val_size` training examples (a fixed slice)."""
        sizes = self.split_sizes(val_size)
        if split == "test":
            return self.test_split
        cut = sizes["train"]
        if split == "train":
            return f"{self.train_split}[:{cut}]"
        return f"{self.train_split}[{cut}:{self.num_train_total}]"

    def load(self, split, data_dir, val_size=None):
        import tensorflow as tf

        builder = self._builder(data_dir)
        ds = builder.as_dataset(split=self.tfds_split(split, val_size), shuffle_files=False, as_supervised=True)

        def to_rgb(image, label):
            image = tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image
            return image, tf.cast(label, tf.int64)

        return ds.map(to_rgb, num_parallel_calls=tf.data.AUTOTUNE)


@register_dataset
def cifar10() -> DatasetSpec:
    # keras.io ShiftViT: the last 10,000 training images validate.
    return TFDSDataset(name="cifar10", tfds_name="cifar10", num_classes=10, native_size=32, default_image_size=32,
                       augment="pad_crop_flip", default_val_size=10_000, source="tfds:cifar10",
                       num_train_total=50_000, num_test=10_000)


@register_dataset
def cifar100() -> DatasetSpec:
    # keras.io ViT: validation_split=0.1, i.e. the last 5,000 training images.
    return TFDSDataset(name="cifar100", tfds_name="cifar100", num_classes=100, native_size=32, default_image_size=32,
                       augment="pad_crop_flip", default_val_size=5_000, source="tfds:cifar100",
                       num_train_total=50_000, num_test=10_000)


@register_dataset
def tf_flowers() -> DatasetSpec:
    # TFDS has a single 3,670-image split. Test is the keras.io MobileViT tutorial's held-out train[90%:]
    # (367 images, so our test numbers compare with its reported ones); validation is carved from the rest.
    return TFDSDataset(name="tf_flowers", tfds_name="tf_flowers", num_classes=5, native_size=None,
                       default_image_size=256, augment="resize_crop_flip", default_val_size=330,
                       source="tfds:tf_flowers", num_train_total=3_303, num_test=367, test_split="train[3303:]")


# --- In-memory data sets: scikit-learn's digits, synthetic --------------------------------------------

@dataclasses.dataclass(frozen=True)
class ArrayDataset(DatasetSpec):
    """A data set held in memory as uint8 arrays; subclasses supply `arrays()`."""

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train_images, train_labels, test_images, test_labels), train in a fixed order."""
        raise NotImplementedError

    def load(self, split, data_dir, val_size=None):
        sizes = self.split_sizes(val_size)
        x_train, y_train, x_test, y_test = self.arrays()
        if split == "train":
            x, y = x_train[: sizes["train"]], y_train[: sizes["train"]]
        elif split == "val":
            x, y = x_train[sizes["train"]:], y_train[sizes["train"]:]
        else:
            x, y = x_test, y_test
        return self.examples(x, y)

    def examples(self, x: np.ndarray, y: np.ndarray):
        """The (image, label) dataset of one split's arrays: here the images themselves."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((x, y.astype("int64")))


@dataclasses.dataclass(frozen=True)
class DigitsDataset(ArrayDataset):
    def arrays(self):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        # 0..16 grey levels -> 0..255 RGB, the format every model takes.
        images = np.repeat((digits.images * (255.0 / 16.0)).round().astype("uint8")[..., None], 3, axis=-1)
        x_train, x_test, y_train, y_test = train_test_split(
            images, digits.target, test_size=self.num_test, stratify=digits.target, random_state=0)
        # Stratify the validation carve-out too: reorder train so its tail is a stratified sample.
        idx_fit, idx_val = train_test_split(np.arange(len(x_train)), test_size=self.default_val_size,
                                            stratify=y_train, random_state=0)
        order = np.concatenate([idx_fit, idx_val])
        return x_train[order], y_train[order], x_test, y_test


@register_dataset
def digits() -> DatasetSpec:
    # scikit-learn ships these 1,797 real 8x8 handwritten digits: the data set that needs no network.
    return DigitsDataset(name="digits", num_classes=10, native_size=8, default_image_size=32, augment="pad_crop",
                         default_val_size=180, source="sklearn.datasets.load_digits", num_train_total=1_437,
                         num_test=360, download=False)


@dataclasses.dataclass(frozen=True)
class SyntheticDataset(ArrayDataset):
    def arrays(self):
        rng = np.random.default_rng(1234)
        n = self.num_train_total + self.num_test
        labels = rng.integers(0, self.num_classes, n)
        # Class-dependent mean colour plus noise: learnable, so tests can check that training learns.
        means = rng.uniform(40, 215, (self.num_classes, 3))
        images = means[labels][:, None, None, :] + rng.normal(0, 40, (n, self.native_size, self.native_size, 3))
        images = images.clip(0, 255).astype("uint8")
        cut = self.num_train_total
        return images[:cut], labels[:cut], images[cut:], labels[cut:]


@register_dataset
def synthetic() -> DatasetSpec:
    return SyntheticDataset(name="synthetic", num_classes=10, native_size=32, default_image_size=32, augment="none",
                            default_val_size=64, source="generated (tests only)", num_train_total=320, num_test=64,
                            download=False)
