"""`folder:PATH` data sets: real PNG files in class folders, split folders or carved splits, unreadable files,
layout mistakes, and a study, a search and a report on such a folder end to end."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from benchbench import cli
from benchbench.data import folder as folder_module
from benchbench.data import get_dataset
from support.cli import main
from support.data import FAR_ABOVE_TRAINING, pipeline_images_per_second
from support.folders import digits_folder
from support.studies import write_study


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Digits as PNG files: all 1,797 in class folders, and 12 per class and split in train/ val/ test/ folders."""
    root = tmp_path_factory.mktemp("folders")
    return {"flat": digits_folder(root / "flat"),
            "split": digits_folder(root / "split", split_folders=True, per_class=12)}


def spec_of(path, fresh: bool = True):
    if fresh:  # the in-process cache would hide a change made to the folder
        folder_module._scan.cache_clear()
    return get_dataset(f"folder:{path}")


def test_carved_splits_are_stratified_fixed_and_recorded(folders):
    spec = spec_of(folders["flat"])
    assert spec.num_classes == 10 and spec.classes[0] == "digit_0"
    assert spec.split_sizes() == {"train": 1257, "val": 180, "test": 360}  # 70 / 10 / 20 % of 1,797
    for row in spec.class_counts():  # stratified: each class split 70 / 10 / 20 too, to an image
        total = row["train"] + row["val"] + row["test"]
        assert abs(row["test"] - 0.2 * total) <= 1 and abs(row["val"] - 0.1 * total) <= 1, row
    train_files, test_files = spec.files
    assert not set(train_files) & set(test_files)
    assert spec_of(folders["flat"]).files == spec.files  # carved the same way every time, whatever the run seed
    assert spec.native_size == 8 and spec.default_image_size == 32  # the median side 8, raised to 32
    assert "carved" in spec.describe()["splits"] and spec.describe()["fingerprint"]
    image, label = next(spec.load("test", None).as_numpy_iterator())
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8 and label == spec.labels[1][0]


def test_split_folders_are_taken_as_they_are(folders):
    spec = spec_of(folders["split"])
    assert spec.split_sizes() == {"train": 120, "val": 120, "test": 120}
    assert spec.describe()["splits"] == "split folders"
    spec.check_val_size(120)
    with pytest.raises(ValueError, match="val/ folder is the validation split"):
        spec.check_val_size(50)


def test_unreadable_images_are_named_and_skipped_or_refused(folders, tmp_path, capsys):
    root = tmp_path / "digits"
    shutil.copytree(folders["flat"], root)
    broken = sorted((root / "digit_3").glob("*.png"))[0]
    broken.write_bytes(b"not a png")
    name = f"digit_3/{broken.name}"
    spec = spec_of(root)
    assert spec.unreadable == (name,) and spec.num_train_total + spec.num_test == 1796
    assert f"skipping 1 of 1797 images that cannot be decoded ({name})" in capsys.readouterr().err
    for path in sorted(root.glob("digit_*/*.png"))[::50]:  # 36 more: 2.1 %
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"3\d of 1797 images cannot be decoded .*more than 2%"):
        spec_of(root)


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "no such directory"),
    (lambda root: (root / "only").mkdir(parents=True), "at least two classes (only 'only' found)"),
    (lambda root: [(root / c).mkdir(parents=True) for c in "ab"], "class folder 'a' has no images"),
    (lambda root: (root / "digit_1" / "notes.txt").write_text("x"), "1 files are not images TensorFlow decodes"),
])
def test_layout_mistakes_are_one_line_exit_2(folders, tmp_path, capsys, make, message):
    root = tmp_path / "data"
    if "decodes" in message:
        shutil.copytree(folders["flat"], root)
    make(root)
    code, _, err = main(["datasets", f"folder:{root}"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("cache", [True, False])
def test_folder_pipeline_far_exceeds_a_training_step(folders, cache):
    """As for the built-in digits (test_data.py): thousands of images/s at 64 px, decoded once into memory (a
    folder up to folder.CACHE_IN_MEMORY_BYTES decoded) or read and decoded again every epoch (a larger one)."""
    assert pipeline_images_per_second(f"folder:{folders['flat']}", image_size=64, batch_size=40, epochs=3,
                                      cache=cache) > FAR_ABOVE_TRAINING


def test_datasets_command_lists_classes_per_split(folders, capsys):
    assert cli.main(["datasets", f"folder:{folders['flat']}"]) == 0
    out = capsys.readouterr().out
    assert "10 classes, train / val / test 1257 / 180 / 360" in out and "trains at 32 px" in out
    counts = {row["class"]: row for row in get_dataset(f"folder:{folders['flat']}").class_counts()}
    assert [line.split()[1:4] for line in out.splitlines() if line.startswith("digit_7")] == \
        [[str(counts["digit_7"][split]) for split in ("train", "val", "test")]]


def test_a_study_a_search_and_a_report_on_image_folders(folders, tmp_path, capsys):
    """Two models on both folder layouts, the leaderboard from their results, and a search on one folder."""
    flat, split = (f"folder:{folders[key]}" for key in ("flat", "split"))
    study = write_study(tmp_path, "own", datasets=[flat, split], models=["vit_tiny", "shiftvit_keras"], seeds=[0],
                        epochs=1, batch_size=40,
                        overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 8},
                                   "shiftvit_keras": {"model.depths": [1]}}, tracking="none")
    assert cli.main(["study", str(study), "--out", str(tmp_path / "out"), "--report-dir",
                     str(tmp_path / "reports"), "--quiet"]) == 0
    runs = pd.read_csv(tmp_path / "out" / "own" / "runs.csv")
    assert Counter(runs["dataset"]) == {flat: 2, split: 2} and runs["test_top1"].notna().all()
    records = [json.loads(line) for line in (tmp_path / "out" / "own" / "records.jsonl").read_text().splitlines()]
    assert {r["resolved"]["data"]["splits"].split(":")[0] for r in records} == {"carved", "split folders"}
    assert all(r["run_id"].startswith(("vit_tiny_folder-", "shiftvit_keras_folder-")) for r in records)
    leaderboard = (tmp_path / "reports" / "own" / "leaderboard.md").read_text()
    assert flat in leaderboard and split in leaderboard
    # `report FILE.toml` finds the results where this study wrote them (--out), not in ./results
    assert cli.main(["report", str(study), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "own" / "leaderboard.md").read_text().split("report generated")[1].count(flat) == \
        leaderboard.split("report generated")[1].count(flat)
    capsys.readouterr()

    assert cli.main(["tune", "--model", "vit_tiny", "--dataset", flat, "--trials", "2", "--epochs", "1",
                     "--batch-size", "40", "--set", "model.depth=1", "--set", "model.patch_size=8",
                     "--tracking", "none", "--out", str(tmp_path / "search")]) == 0
    out = capsys.readouterr().out
    assert "2 complete" in out and "best val top-1" in out
