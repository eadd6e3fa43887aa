"""`folder:PATH`: the user's own images, one sub-folder per class (Keras' image_dataset_from_directory layout,
torchvision's ImageFolder).

Splits come from `train/`, `val/` and `test/` sub-folders when the folder has a `train/` one; whatever is
missing is carved from the training images, stratified by class, with a fixed seed (the run seed never
changes which images validate or test). Every image is decoded once by TensorFlow, as the pipeline will
decode it, and the outcome is kept in the cache per file (size and modification time): unreadable files are
named and skipped, or the data set is refused when they are more than MAX_UNREADABLE of it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchbench import io
from benchbench.data.specs import (
    TEST_FRACTION,
    VAL_FRACTION,
    ArrayDataset,
    DatasetSpec,
    default_image_size,
    native_size,
)

PREFIX = "folder:"
SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")  # what tf.io.decode_image reads
SPLIT_FOLDERS = ("train", "val", "test")
CARVE_SEED = 0
MAX_UNREADABLE = 0.02  # more unreadable files than this fraction: the folder is refused, not trained on
CACHE_IN_MEMORY_BYTES = 2 << 30  # decoded images up to this size are kept in memory after the first epoch


class FolderError(ValueError):
    """The folder is not a data set benchbench can train on; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class FolderDataset(ArrayDataset):
    root: str = ""
    classes: tuple[str, ...] = ()
    files: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # (train then val, test), paths under root
    labels: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    split_origin: str = ""  # "split folders", or what was carved and how
    val_fixed: bool = False  # val/ exists: its images validate, whatever val_size says
    unreadable: tuple[str, ...] = ()
    decoded_bytes: int = 0
    fingerprint: str = ""

    def check_val_size(self, val_size):
        if self.val_fixed and val_size != self.default_val_size:
            raise FolderError(f"{self.name}: its val/ folder is the validation split ({self.default_val_size} "
                              "images); drop val_size, or move val/ away to carve one")
        super().check_val_size(val_size)

    def arrays(self):
        train, test = (np.array([os.path.join(self.root, f) for f in files]) for files in self.files)
        return train, np.array(self.labels[0]), test, np.array(self.labels[1])

    def examples(self, x, y):
        import tensorflow as tf

        def decode(path, label):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            return tf.ensure_shape(image, (None, None, 3)), label

        ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int64")))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    @property
    def cache_in_memory(self) -> bool:
        return self.decoded_bytes <= CACHE_IN_MEMORY_BYTES

    def describe(self) -> dict:
        return {"source": self.source, "root": self.root, "classes": list(self.classes), "splits": self.split_origin,
                "fingerprint": self.fingerprint, "unreadable_skipped": list(self.unreadable),
                "cached_in_memory": self.cache_in_memory}

    def class_counts(self) -> list[dict]:
        """`benchbench datasets folder:PATH`: images per class and split."""
        sizes = self.split_sizes()
        train_labels = np.array(self.labels[0])
        parts = {"train": train_labels[:sizes["train"]], "val": train_labels[sizes["train"]:],
                 "test": np.array(self.labels[1])}
        return [{"class": name, **{split: int((labels == i).sum()) for split, labels in parts.items()}}
                for i, name in enumerate(self.classes)]


def is_folder(name: str) -> bool:
    return name.startswith(PREFIX)


def folder_dataset(name: str) -> DatasetSpec:
    """The spec of `folder:PATH` (PATH relative to the working directory, or absolute)."""
    root = Path(name[len(PREFIX):]).expanduser()
    if not name[len(PREFIX):]:
        raise FolderError("folder: needs a path, e.g. --dataset folder:data/pets")
    if not root.is_dir():
        raise FolderError(f"{name}: no such directory{' (it is a file)' if root.exists() else ''}; give a folder "
                          "with one sub-folder of images per class")
    return _scan(str(root.resolve()), name)


@functools.cache
def _scan(root: str, name: str) -> FolderDataset:
    layout = _layout(Path(root), name)
    classes = layout["classes"]
    files = layout["files"]
    checked = _decode_all(Path(root), [f for found in files.values() for f, _ in found], name)
    bad = set(checked["unreadable"])
    files = {split: [(f, label) for f, label in found if f not in bad] for split, found in files.items()}
    train, val, test, origin = _splits(files, len(classes), name)
    sizes = [checked["sizes"][f] for f, _ in train + val + test]
    # augment "pad_crop" by default: position jitter never changes a label, where a flip would for digits, text
    # or left/right anatomy; natural photos do better with a recipe's augment = "random_resized_crop_flip".
    return FolderDataset(
        name=name, num_classes=len(classes), native_size=native_size(sizes),
        default_image_size=default_image_size(sizes), augment="pad_crop", default_val_size=len(val),
        source=f"image folder {root}", num_train_total=len(train) + len(val), num_test=len(test),
        download=False, root=root,
        classes=tuple(classes), files=(tuple(f for f, _ in train + val), tuple(f for f, _ in test)),
        labels=(tuple(label for _, label in train + val), tuple(label for _, label in test)), split_origin=origin,
        val_fixed="val" in files, unreadable=tuple(sorted(bad)), fingerprint=checked["fingerprint"],
        decoded_bytes=sum(h * w * 3 for h, w in sizes))


# --- layout: classes and their files ---------------------------------------------------------------------

def _layout(root: Path, name: str) -> dict:
    """{"classes": [...], "files": {split: [(path under root, label), ...]}}: the split folders' when `train/`
    exists (val/ and test/ optional), else the whole folder's as "all"."""
    if (root / "train").is_dir():
        classes = _classes(root / "train", f"{name}/train")
        files = {split: _files(root, split, classes, f"{name}/{split}")
                 for split in SPLIT_FOLDERS if (root / split).is_dir()}
        return {"classes": classes, "files": files}
    classes = _classes(root, name)
    return {"classes": classes, "files": {"all": _files(root, "", classes, name)}}


def _classes(folder: Path, name: str) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise FolderError(f"{name}: needs one sub-folder of images per class, at least two classes ({found} found)")
    return classes


def _files(root: Path, split: str, classes: list[str], name: str) -> list[tuple[str, int]]:
    folder = root / split
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name not in classes)
    if extra:
        raise FolderError(f"{name}: class folder {extra[0]!r} is not among train/'s classes; every split needs the "
                          "same class names")
    found, other = [], []
    for label, cls in enumerate(classes):
        images = []
        for dirpath, dirnames, filenames in os.walk(folder / cls):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for file in sorted(filenames):
                if file.startswith("."):
                    continue  # .DS_Store and the like
                path = os.path.relpath(os.path.join(dirpath, file), root)
                (images if file.lower().endswith(SUFFIXES) else other).append(path)
        if not images and (folder / cls).is_dir() and not other:
            raise FolderError(f"{name}: class folder {cls!r} has no images; remove it or add images")
        found += [(path, label) for path in images]
    if other:
        raise FolderError(f"{name}: {len(other)} files are not images TensorFlow decodes ({_first(other)}); images "
                          f"must end in {', '.join(SUFFIXES)}: move the others out of the class folders")
    return found


def _first(paths: list[str], n: int = 3) -> str:
    return ", ".join(paths[:n]) + (", ..." if len(paths) > n else "")


# --- decoding every image once -------------------------------------------------------------------------------

def _decode_all(root: Path, files: list[str], name: str) -> dict:
    """{"sizes": {file: (h, w)}, "unreadable": [file, ...], "fingerprint"}: each file decoded by TensorFlow
    once per content (the cache keys it by size and modification time), so a corrupt file never reaches
    training and a folder is read in full once, not per run."""
    stats = {f: os.stat(root / f) for f in files}
    keys = {f: f"{st.st_size}:{st.st_mtime_ns}" for f, st in stats.items()}
    cache = io.cache_dir() / "folders" / f"{hashlib.sha256(str(root).encode()).hexdigest()[:16]}.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    results = {f: known[f][1] for f in files if f in known and known[f][0] == keys[f]}
    todo = [f for f in files if f not in results]
    if todo:
        results.update(_decode(root, todo))
        try:
            io.write_json(cache, {f: [keys[f], results[f]] for f in files}, indent=None)
        except OSError:
            pass  # a read-only cache costs the next run a decode pass, nothing else
    unreadable = sorted(f for f in files if results[f] is None)
    if len(unreadable) > MAX_UNREADABLE * len(files):
        raise FolderError(f"{name}: {len(unreadable)} of {len(files)} images cannot be decoded ({_first(unreadable)})"
                          f"; more than {MAX_UNREADABLE:.0%} of them: fix or remove them")
    if unreadable:
        print(f"benchbench: warning: {name}: skipping {len(unreadable)} of {len(files)} images that cannot be "
              f"decoded ({_first(unreadable)})", file=sys.stderr, flush=True)
    fingerprint = hashlib.sha256(json.dumps(sorted(keys.items())).encode()).hexdigest()[:12]
    return {"sizes": {f: results[f] for f in files if results[f]}, "unreadable": unreadable,
            "fingerprint": fingerprint}


def _decode(root: Path, files: list[str]) -> dict[str, tuple[int, int] | None]:
    """(height, width) of every file, None where TensorFlow cannot decode it: a parallel tf.data pass that drops
    failing elements, whose indices are then the unreadable ones."""
    import tensorflow as tf

    def shape(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)[:2]

    paths = [str(root / f) for f in files]
    ds = tf.data.Dataset.from_tensor_slices(paths).enumerate().map(shape, num_parallel_calls=tf.data.AUTOTUNE)
    decoded = {int(i): (int(hw[0]), int(hw[1])) for i, hw in ds.ignore_errors().as_numpy_iterator()}
    return {f: decoded.get(i) for i, f in enumerate(files)}


# --- splits and sizes ------------------------------------------------------------------------------------

def _splits(files: dict, num_classes: int, name: str) -> tuple[list, list, list, str]:
    """(train, val, test, how they were made): split folders as they are, the missing ones carved."""
    rest = files.get("train", files.get("all"))
    made = []
    test = files.get("test")
    if test is None:
        rest, test = _carve(rest, TEST_FRACTION, num_classes, name, "test")
        made.append(f"test {TEST_FRACTION:.0%}")
    val = files.get("val")
    if val is None:
        total = len(rest) + (len(test) if "test" not in files else 0)  # carve 10 % of all, as for test
        rest, val = _carve(rest, max(num_classes, round(VAL_FRACTION * total)), num_classes, name, "val")
        made.append(f"val {VAL_FRACTION:.0%}")
    origin = ("split folders" if not made else f"carved: {' and '.join(made)} of the images, stratified by class, "
              f"seed {CARVE_SEED}" + (" (the rest from split folders)" if "train" in files else ""))
    return rest, val, test, origin


def _carve(items: list, size: float | int, num_classes: int, name: str, split: str) -> tuple[list, list]:
    from sklearn.model_selection import train_test_split

    labels = [label for _, label in items]
    try:
        kept, carved = train_test_split(items, test_size=size, stratify=labels, random_state=CARVE_SEED)
    except ValueError:
        raise FolderError(f"{name}: too few images to carve a stratified {split} split ({len(items)} images, "
                          f"{num_classes} classes; at least 5 per class are needed); add images, or give "
                          "train/, val/ and test/ sub-folders") from None
    return sorted(kept), sorted(carved)
