"""Dataset specs, the TFDS path (through tfds.testing.mock_data, no network) and the input pipeline."""

from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

from benchbench.data import DataMissingError, get_dataset, list_datasets
from benchbench.data.pipeline import AUGMENTATIONS, eval_batches, train_batches, training_epochs
from support.data import pipeline_images_per_second


def test_catalogue():
    assert list_datasets() == ["cifar10", "cifar100", "digits", "synthetic", "tf_flowers"]
    assert get_dataset("cifar100").split_sizes() == {"train": 45_000, "val": 5_000, "test": 10_000}
    assert get_dataset("cifar10").split_sizes(2_000) == {"train": 48_000, "val": 2_000, "test": 10_000}
    assert get_dataset("tf_flowers").split_sizes()["test"] == 367


def _labels(ds):
    return np.array([label for _, label in ds.as_numpy_iterator()])


def test_digits_is_real_stratified_and_fixed():
    spec = get_dataset("digits")
    sizes = spec.split_sizes()
    labels = {split: _labels(spec.load(split, None)) for split in ("train", "val", "test")}
    assert {split: len(v) for split, v in labels.items()} == sizes
    for split in ("val", "test"):  # stratified: every class present in proportion
        counts = np.bincount(labels[split], minlength=10)
        assert counts.min() >= 0.8 * counts.mean()
    image, _ = next(spec.load("train", None).as_numpy_iterator())
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8 and image.max() > 200
    np.testing.assert_array_equal(_labels(spec.load("val", None)), labels["val"])  # same carve-out every time


def test_missing_tfds_dataset_names_dir_and_command(tmp_path):
    with pytest.raises(DataMissingError) as error:
        get_dataset("cifar100").require_present(str(tmp_path))
    message = str(error.value)
    assert "'cifar100'" in message and str(tmp_path) in message
    assert f"benchbench data download cifar100 --data-dir {tmp_path}" in message


@pytest.mark.parametrize("name,split_string", [("cifar10", "train[:40000]"), ("tf_flowers", "train[:3303][:2973]")])
def test_validation_is_a_fixed_slice_of_train(name, split_string):
    spec = get_dataset(name)
    assert spec.tfds_split("train") == split_string
    assert spec.tfds_split("val").endswith(f"{spec.split_sizes()['train']}:{spec.num_train_total}]")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tf_flowers"])
def test_tfds_loading_path_with_mock_data(name, tmp_path):
    """The real TFDS reader (builder.as_dataset), fed by TFDS's own mock instead of the network."""
    spec = get_dataset(name)
    with tfds.testing.mock_data(num_examples=12), \
            mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
        spec.require_present(str(tmp_path))
        for split in ("train", "val", "test"):
            examples = spec.load(split, str(tmp_path))
            image, label = next(examples.as_numpy_iterator())
            assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8
            assert 0 <= label < spec.num_classes
        batches = train_batches(spec.load("train", str(tmp_path)), 12, image_size=32, batch_size=4,
                                num_classes=spec.num_classes, seed=0, epoch=0, augment=spec.augment)
        x, y = next(batches.as_numpy_iterator())
        assert x.shape == (4, 32, 32, 3) and y.shape == (4, spec.num_classes)


def _first_batches(seed, epoch, augment="pad_crop_flip", n=2):
    spec = get_dataset("digits")
    ds = train_batches(spec.load("train", None), spec.split_sizes()["train"], image_size=32, batch_size=32,
                       num_classes=10, seed=seed, epoch=epoch, augment=augment)
    return [x for x, _ in ds.take(n).as_numpy_iterator()]


@pytest.mark.parametrize("augment", sorted(AUGMENTATIONS))
def test_pipeline_is_deterministic_per_seed_and_epoch(augment):
    first = _first_batches(0, 0, augment)
    np.testing.assert_array_equal(first[0], _first_batches(0, 0, augment)[0])
    assert not np.array_equal(first[0], _first_batches(0, 1, augment)[0])
    assert not np.array_equal(first[0], _first_batches(1, 0, augment)[0])
    assert first[0].dtype == np.float32 and 0 <= first[0].min() and first[0].max() <= 255


def test_eval_pipeline_keeps_order_and_every_example():
    spec = get_dataset("digits")
    labels = np.concatenate([y.argmax(1) for _, y in eval_batches(spec.load("test", None), image_size=32,
                                                                  batch_size=64, num_classes=10).as_numpy_iterator()])
    np.testing.assert_array_equal(labels, _labels(spec.load("test", None)))


def test_every_pipeline_a_run_iterates_has_autotuning_off():
    """Deleting an autotuned iterator stalled 6-8 s in 4 of 10 runs (see pipeline._fixed_knobs)."""
    spec = get_dataset("digits")
    examples, n = spec.load("train", None), spec.split_sizes()["train"]
    kwargs = dict(image_size=32, batch_size=32, num_classes=10, seed=0, augment="pad_crop_flip")
    pipelines = [train_batches(examples, n, epoch=0, **kwargs),
                 training_epochs(examples, n, first_epoch=0, epochs=2, **kwargs),
                 eval_batches(examples, image_size=32, batch_size=32, num_classes=10)]
    assert [ds.options().autotune.enabled for ds in pipelines] == [False] * 3


def test_pipeline_throughput_far_exceeds_a_training_step():
    """A 64 px digits epoch streams at thousands of images/s; CPU training of the smallest model here runs
    at a few hundred, so the pipeline is never the bottleneck."""
    assert pipeline_images_per_second("digits", image_size=64, batch_size=64, epochs=3) > 2_000


def test_datasets_command_lists_sizes_and_presence(tmp_path, capsys):
    from benchbench.cli import main

    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(list_datasets())
    assert "1257 / 180 / 360" in rows["digits"] and rows["digits"].split()[10] == "yes"
    assert "40000 / 10000 / 10000" in rows["cifar10"] and rows["cifar10"].split()[10] == "no"


def test_data_download_prepares_through_tfds(tmp_path, capsys, monkeypatch):
    """`data download` calls TFDS's download_and_prepare (mocked by TFDS itself: no network here) on the
    directory from --data-dir, else $BENCHBENCH_DATA_DIR."""
    from benchbench.cli import main

    monkeypatch.setenv("BENCHBENCH_DATA_DIR", str(tmp_path / "from_env"))
    with tfds.testing.mock_data(num_examples=4), \
            mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare") as prepare:
        assert main(["data", "download", "cifar10"]) == 0
    prepare.assert_called_once()
    assert f"cifar10 is ready in {tmp_path / 'from_env'}" in capsys.readouterr().out
    assert main(["data", "download", "digits"]) == 0
    assert "needs no download" in capsys.readouterr().out
    assert main(["data", "download", "imagenet"]) == 2
