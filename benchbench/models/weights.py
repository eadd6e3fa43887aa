"""Starting weights from a file (`--set model.weights=PATH`): a `.keras` or `.weights.h5` file of an earlier
benchbench run or of the user's, loaded into a freshly built model to fine-tune it.

The file must come from the same model with the same options. Only its classifier head may differ, in its
number of classes (a model trained on another data set): that head is then left freshly initialised and the
run's record says so. Anything else that does not fit is one ValueError line naming the file. Keras matches the
file to the model (load_weights); what it could not load is read from the warning it gives with skip_mismatch."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from pathlib import Path

import keras

SUFFIXES = (".keras", ".weights.h5")


def check_file(path: str) -> None:
    """Usage-level: the file exists and is of a kind Keras loads weights from."""
    if not str(path).endswith(SUFFIXES):
        raise ValueError(f"model.weights must be a .keras or .weights.h5 file, got {path!r}")
    if not Path(path).is_file():
        raise ValueError(f"model.weights: no such file {path}")


def digest(path: str) -> str:
    """The file's SHA-256 (first 12 hex digits): part of the run's configuration hash, so new weights at the same
    path make a new run. Read once per file version (size and modification time)."""
    check_file(path)
    stat = os.stat(path)
    return _digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:12]


def load_into(model: keras.Model, path: str, name: str) -> str:
    """Loads the file into `model`; returns what happened to the head ("loaded", or "re-initialised: ...")."""
    check_file(path)
    try:
        _load(model, path)
        status = "loaded"
    except ValueError as error:
        status = _all_but_the_head(model, path, name, str(error))
    _status[(os.path.abspath(path), model.name, _classes(model))] = status
    return status


def head_status(model: keras.Model, path: str) -> str:
    """What `load_into` did with the file's head when it built this run's model (in this process)."""
    return _status.get((os.path.abspath(path), model.name, _classes(model)), "loaded")


_status: dict[tuple, str] = {}


def _all_but_the_head(model: keras.Model, path: str, name: str, strict_error: str) -> str:
    """Loads every variable that fits, when the only one that does not is the head; else a ValueError."""
    head = _head(model)
    skipped = _load(model, path, skip_mismatch=True)
    found = re.search(r"A total of (\d+) objects could not be loaded\. Example error message for object "
                      r"<\w+ name=([^,>]+)", skipped)
    if not found or found.group(1) != "1" or found.group(2) != head.name:
        reason = " ".join(strict_error.split())[:240]
        raise ValueError(f"model.weights {path} does not fit {name} with these options (saved from another model or "
                         f"with other options?): {reason}")
    shape = re.search(r"value\.shape=\(\d+, (\d+)\)", skipped)
    theirs = f"{shape.group(1)} classes" if shape else "another number of classes"
    return f"re-initialised: the file's head has {theirs}, this data set {_classes(model)}"


def _classes(model: keras.Model) -> int:
    return int(_head(model).weights[0].shape[-1])


def _load(model: keras.Model, path: str, skip_mismatch: bool = False) -> str:
    """model.load_weights, its warnings caught (Keras warns about every container it matches by position);
    returns the text of the one that lists what could not be loaded ("" when none)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path, skip_mismatch=skip_mismatch)
    return next((" ".join(str(w.message).split()) for w in caught if "could not be loaded" in str(w.message)), "")


def _head(model: keras.Model):
    """The classifier: the last layer that has weights (every family ends in one Dense of num_classes units)."""
    return [layer for layer in model.layers if layer.weights][-1]
