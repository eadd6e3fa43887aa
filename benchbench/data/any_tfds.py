"""`tfds:NAME[:CONFIG]`: any image-classification data set of TensorFlow Datasets that the user has prepared
(`benchbench data download tfds:NAME`), read by TFDS as the built-in sets are.

Classes and split sizes come from the prepared data set's info. Its `validation` split validates when it has
one, else the last VAL_FRACTION of train does; its `test` split tests, else the last TEST_FRACTION of train
(fixed slices, as for tf_flowers: never the run seed's choice)."""

from __future__ import annotations

import dataclasses
import functools

from benchbench.data.specs import (
    TEST_FRACTION,
    VAL_FRACTION,
    TFDSDataset,
    default_image_size,
    missing,
    native_size,
)

PREFIX = "tfds:"
SIZE_SAMPLE = 256  # training images whose sizes set the default training size when sizes vary


@dataclasses.dataclass(frozen=True)
class AnyTFDSDataset(TFDSDataset):
    val_split: str = ""  # the data set's own validation split, if it has one
    split_origin: str = ""

    def tfds_split(self, split, val_size=None):
        if self.val_split and split in ("train", "val"):
            return self.train_split if split == "train" else self.val_split
        return super().tfds_split(split, val_size)

    def check_val_size(self, val_size):
        if self.val_split and val_size != self.default_val_size:
            raise ValueError(f"{self.name}: its {self.val_split!r} split validates ({self.default_val_size} images); "
                             "drop val_size")
        super().check_val_size(val_size)

    def describe(self):
        return {"source": self.source, "splits": self.split_origin}


def is_tfds(name: str) -> bool:
    return name.startswith(PREFIX)


def builder_of(name: str, data_dir: str | None):
    """TFDS's builder for `tfds:NAME[:CONFIG]`; an unknown name is one ValueError line."""
    import tensorflow_datasets as tfds

    tfds_name = name[len(PREFIX):].replace(":", "/")
    if not tfds_name:
        raise ValueError("tfds: needs a data set name, e.g. --dataset tfds:oxford_iiit_pet")
    try:
        return tfds.builder(tfds_name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        raise ValueError(f"{name}: not a TensorFlow Datasets name ({str(error).splitlines()[0][:120]}); the "
                         "catalogue is at https://www.tensorflow.org/datasets/catalog") from None


@functools.cache
def tfds_dataset(name: str, data_dir: str | None) -> AnyTFDSDataset:
    builder = builder_of(name, data_dir)
    if not builder.is_prepared():
        raise missing(name, data_dir)
    info = builder.info
    image_key, label_key = _supervised_keys(name, info)
    splits = {key: split.num_examples for key, split in info.splits.items()}
    if "train" not in splits:
        raise ValueError(f"{name}: has no 'train' split (it has {', '.join(sorted(splits))})")
    train = splits["train"]
    test = splits.get("test") or max(1, round(TEST_FRACTION * train))
    val_split = "validation" if splits.get("validation") else ""
    val = splits["validation"] if val_split else max(1, round(VAL_FRACTION * train))
    carved = [] if val_split else [f"val {VAL_FRACTION:.0%}"]
    test_split = "test"
    if not splits.get("test"):
        test_split = f"train[{train - test}:]"
        carved.insert(0, f"test {TEST_FRACTION:.0%}")
        train -= test
    sizes = _image_sizes(builder, info.features[image_key].shape, image_key)
    return AnyTFDSDataset(
        name=name, num_classes=info.features[label_key].num_classes, native_size=native_size(sizes),
        default_image_size=default_image_size(sizes), augment="pad_crop", default_val_size=val, source=name,
        num_train_total=train + (val if val_split else 0), num_test=test,
        tfds_name=name[len(PREFIX):].replace(":", "/"),
        test_split=test_split, val_split=val_split,
        split_origin="the data set's own splits" if not carved else
        f"carved: the last {' and '.join(carved)} of train as fixed slices")


def _supervised_keys(name: str, info) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    keys = info.supervised_keys
    if not (keys and len(keys) == 2 and isinstance(info.features[keys[0]], tfds.features.Image)
            and isinstance(info.features[keys[1]], tfds.features.ClassLabel)):
        raise ValueError(f"{name}: not an image-classification data set (its supervised keys are {keys}, not an "
                         "image and a class label)")
    return keys


def _image_sizes(builder, shape, image_key: str) -> list[tuple[int, int]]:
    """The images' (height, width): the feature's, when fixed; else those of the first SIZE_SAMPLE training
    images."""
    if shape[0] and shape[1]:
        return [(shape[0], shape[1])]
    ds = builder.as_dataset(split=f"train[:{SIZE_SAMPLE}]", shuffle_files=False)
    return [tuple(example[image_key].shape[:2]) for example in ds.take(SIZE_SAMPLE)]
