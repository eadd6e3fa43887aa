"""Starting weights from a file (`--set model.weights=PATH`): loaded whole, or all but a head of another class
count, refused when the model does not fit, and keyed into the run's configuration hash by content."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchbench import cli
from benchbench.models import create_model
from benchbench.run.config import RunConfig, apply_sets
from support.cli import main

TINY = {"image_size": 32, "depth": 1, "patch_size": 8}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 5-class tiny ViT and its weights as both file kinds Keras writes."""
    folder = tmp_path_factory.mktemp("weights")
    model = create_model("vit_tiny", num_classes=5, **TINY)
    model.save_weights(folder / "five.weights.h5")
    model.save(folder / "five.keras")
    return model, folder


@pytest.mark.parametrize("file", ["five.weights.h5", "five.keras"])
def test_a_head_of_another_class_count_is_left_fresh_and_the_rest_loaded(saved, file):
    source, folder = saved
    model = create_model("vit_tiny", num_classes=10, weights=str(folder / file), **TINY)
    fresh = create_model("vit_tiny", num_classes=10, **TINY)
    for loaded, original in zip(model.weights, source.weights):
        if loaded.path.startswith("head/"):
            assert loaded.shape[-1] == 10
        else:
            assert np.array_equal(loaded.numpy(), original.numpy()), loaded.path
    kernels = [(a, b) for a, b in zip(fresh.weights, source.weights) if len(a.shape) == 2 and a.shape == b.shape]
    assert not any(np.array_equal(a.numpy(), b.numpy()) for a, b in kernels)  # a fresh build differs: loading did it
    same = create_model("vit_tiny", num_classes=5, weights=str(folder / file), **TINY)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(same.weights, source.weights))


@pytest.mark.parametrize("options, file, message", [
    ({"depth": 2}, "five.weights.h5", "does not fit vit_tiny with these options"),
    ({}, "missing.weights.h5", "no such file"),
    ({}, "five.h5", "must be a .keras or .weights.h5 file"),
])
def test_weights_that_do_not_fit_are_one_value_error(saved, options, file, message):
    with pytest.raises(ValueError, match=message):
        create_model("vit_tiny", num_classes=10, weights=str(saved[1] / file), **{**TINY, **options})


def test_a_run_from_weights_records_them_and_hashes_their_content(saved, tmp_path, capsys):
    folder = tmp_path / "w"
    folder.mkdir()
    weights = folder / "five.weights.h5"
    weights.write_bytes((saved[1] / "five.weights.h5").read_bytes())
    sets = ["model.depth=1", "model.patch_size=8", f"model.weights={weights}"]
    assert cli.main(["run", "--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "32",
                     *[arg for s in sets for arg in ("--set", s)], "--tracking", "none", "--out", str(tmp_path)]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["resolved"]["weights"]["head"] == "re-initialised: the file's head has 5 classes, this data set 10"
    assert record["resolved"]["weights"]["path"] == str(weights) and len(record["resolved"]["weights"]["sha256"]) == 12
    config = apply_sets(RunConfig("vit_tiny", "synthetic", epochs=1, batch_size=32), sets)
    before = config.hash()
    assert before == record["config_hash"] != apply_sets(config, [f"model.weights={saved[1] / 'five.keras'}"]).hash()
    create_model("vit_tiny", num_classes=5, **TINY).save_weights(weights)  # new weights at the same path
    assert config.hash() != before
    code, _, err = main(["run", "--model", "vit_tiny", "--dataset", "synthetic", "--set",
                         f"model.weights={folder / 'none.keras'}"], capsys)
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
