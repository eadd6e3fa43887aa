"""Dataset specs, the TFDS path (through tfds.testing.mock_data, no network) and the input pipeline."""

import json
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

from benchbench.data import DataMissingError, get_dataset, list_datasets
from benchbench.data.pipeline import AUGMENTATIONS, eval_batches, train_batches, training_epochs
from support.data import FAR_ABOVE_TRAINING, pipeline_images_per_second


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


@pytest.mark.parametrize("name,split_string", [("cifar10", "train[:40000]"), ("tf_flowers", "train[:2973]")])
def test_validation_is_a_fixed_slice_of_train(name, split_string):
    spec = get_dataset(name)
    assert spec.tfds_split("train") == split_string
    assert spec.tfds_split("val").endswith(f"{spec.split_sizes()['train']}:{spec.num_train_total}]")
    for split in ("train", "val", "test"):  # TFDS's own parser: mock_data reads any split string
        tfds.core.ReadInstruction.from_spec(spec.tfds_split(split))


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
    assert pipeline_images_per_second("digits", image_size=64, batch_size=64, epochs=3) > FAR_ABOVE_TRAINING


def test_datasets_command_lists_sizes_and_presence(tmp_path, capsys):
    from benchbench.cli import main

    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "your own data: --dataset folder:PATH" in out
    rows = {line.split()[0]: line for line in out.split("\n\n")[0].splitlines()[2:]}
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


def mocked_tfds(splits: dict[str, int]):
    """TFDS's mock_data for a data set that is not on disk, as if prepared with these split sizes (the sizes a
    prepared data set's info holds: mock_data alone leaves them empty)."""
    import contextlib

    info = tfds.core.SplitDict([tfds.core.SplitInfo(name=name, shard_lengths=[n], num_bytes=0)
                                for name, n in splits.items()])
    stack = contextlib.ExitStack()
    stack.enter_context(tfds.testing.mock_data(num_examples=max(splits.values())))
    stack.enter_context(mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True))
    stack.enter_context(mock.patch.object(tfds.core.DatasetInfo, "splits", new_callable=mock.PropertyMock,
                                          return_value=info))
    return stack


@pytest.mark.parametrize("splits, sizes, origin", [
    ({"train": 50, "test": 12}, {"train": 45, "val": 5, "test": 12}, "carved: the last val 10%"),
    ({"train": 50}, {"train": 35, "val": 5, "test": 10}, "carved: the last test 20% and val 10%"),
    ({"train": 40, "validation": 8, "test": 12}, {"train": 40, "val": 8, "test": 12}, "the data set's own splits"),
])
def test_any_tfds_data_set_maps_or_carves_its_splits(tmp_path, splits, sizes, origin):
    from benchbench.data import any_tfds

    any_tfds.tfds_dataset.cache_clear()
    with mocked_tfds(splits):
        spec = get_dataset("tfds:oxford_iiit_pet", str(tmp_path))
        assert spec.num_classes == 37 and spec.split_sizes() == sizes
        assert spec.describe()["splits"].startswith(origin) and spec.default_image_size >= 32
        for split in ("train", "val", "test"):
            tfds.core.ReadInstruction.from_spec(spec.tfds_split(split))
            image, label = next(spec.load(split, str(tmp_path)).as_numpy_iterator())
            assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8 and 0 <= label < 37


def test_a_run_on_any_tfds_data_set(tmp_path, capsys):
    """`run --dataset tfds:NAME:CONFIG` end to end on mock data; unprepared and unknown names are one line."""
    from benchbench import cli
    from benchbench.data import any_tfds

    any_tfds.tfds_dataset.cache_clear()
    with mocked_tfds({"train": 48, "test": 16}):
        assert cli.main(["run", "--model", "vit_tiny", "--dataset", "tfds:cifar10_corrupted:fog_1", "--epochs", "1",
                         "--batch-size", "16", "--set", "model.depth=1", "--set", "model.patch_size=8",
                         "--data-dir", str(tmp_path), "--tracking", "none", "--out", str(tmp_path / "runs")]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["run_id"].startswith("vit_tiny_tfds-cifar10_corrupted-fog_1_s0_")
    assert record["resolved"]["splits"] == {"train": 43, "val": 5, "test": 16}
    assert record["resolved"]["image_size"] == 32
    assert cli.main(["run", "--model", "vit_tiny", "--dataset", "tfds:cifar10_corrupted:fog_1",
                     "--data-dir", str(tmp_path / "empty")]) == 1
    assert "benchbench data download tfds:cifar10_corrupted:fog_1 --data-dir" in capsys.readouterr().err
    assert cli.main(["datasets", "tfds:no_such_set"]) == 2
    assert "not a TensorFlow Datasets name" in capsys.readouterr().err
    with mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare") as prepare:
        assert cli.main(["data", "download", "tfds:beans", "--data-dir", str(tmp_path / "data")]) == 0
    prepare.assert_called_once()
    assert f"tfds:beans is ready in {tmp_path / 'data'}" in capsys.readouterr().out
