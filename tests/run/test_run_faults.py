"""A run under faults: damaged state (corrupt, truncated, missing, edited, pickled), a diverging loss, and two
processes on one run directory. Each is detected, named, and never trusted or half-written."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil

import numpy as np
import pytest

from benchbench import io
from benchbench.run.checkpoint import Checkpointer
from benchbench.run.config import RunConfig
from benchbench.run.train import RunFailed, execute

# Two epochs of a one-block ViT: the smallest run that commits an epoch and has one left to resume.
CONFIG = RunConfig("vit_tiny", "synthetic", epochs=2, batch_size=32, image_size=32,
                   model_args=(("depth", 1), ("patch_size", 8)))
QUIET = dict(tracking="none", verbose=0)


class Crash(Exception):
    """Stands for a process killed after its first committed epoch."""


def crash_after_first_epoch(logs: dict) -> None:
    raise Crash()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run directory holding epoch 1 of CONFIG's 2: state.json, epoch0001.npz, best.npz."""
    out = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(Crash):
        execute(CONFIG, out_dir=str(out), on_epoch=crash_after_first_epoch, **QUIET)
    run_dir = out / CONFIG.run_name()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1
    return run_dir


class Unpickled:
    """Would leave a mark if anything ever unpickled it."""

    def __reduce__(self):
        return (print, ("UNPICKLED",))


def edit_state(run_dir, **changes):
    state = json.loads((run_dir / "state.json").read_text())
    (run_dir / "state.json").write_text(json.dumps({**state, **changes}))


DAMAGE = {
    "corrupt state.json": (lambda d: (d / "state.json").write_text('{"epoch": 1, "hist'), "state.json is unreadable"),
    "edited epoch": (lambda d: edit_state(d, epoch=99), "state.json says epoch 99"),
    "foreign state": (lambda d: edit_state(d, config_hash="0123456789ab"), "belongs to another configuration"),
    "truncated checkpoint": (lambda d: (d / "epoch0001.npz").write_bytes((d / "epoch0001.npz").read_bytes()[:5000]),
                             "epoch0001.npz is unreadable"),
    "missing checkpoint": (lambda d: (d / "epoch0001.npz").unlink(), "epoch0001.npz is missing"),
    "pickled checkpoint": (lambda d: np.savez(d / "epoch0001.npz", np.array([Unpickled()], dtype=object)),
                           "epoch0001.npz is unreadable"),
}


@pytest.fixture(scope="module")
def fresh():
    """A fresh model and optimizer of CONFIG, as a resumed run builds them (a damaged restore assigns nothing,
    so one pair serves every case)."""
    from benchbench.data import get_dataset
    from benchbench.run.recipe import build_training

    return build_training(CONFIG, get_dataset("synthetic"), 32, steps_per_epoch=8)


def restore(run_dir, fresh):
    model, optimizer = fresh
    checkpoint = Checkpointer(run_dir, model, optimizer, started=0.0, config_hash=CONFIG.hash(), epochs=CONFIG.epochs)
    return checkpoint.restore(), checkpoint


def test_an_intact_checkpoint_restores(interrupted, fresh):
    damage, checkpoint = restore(interrupted, fresh)
    assert damage is None and checkpoint.state["epoch"] == 1 and checkpoint.best is not None


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_state_is_detected_and_named_before_anything_is_assigned(damage, interrupted, fresh, tmp_path):
    run_dir = tmp_path / interrupted.name
    shutil.copytree(interrupted, run_dir)
    harm, message = DAMAGE[damage]
    harm(run_dir)
    before = [np.array(v) for v in fresh[0].weights]
    found, checkpoint = restore(run_dir, fresh)
    assert found is not None and message in found, found
    assert checkpoint.state["epoch"] == 0  # nothing trusted
    assert all(np.array_equal(a, np.array(v)) for a, v in zip(before, fresh[0].weights, strict=True))


def test_a_damaged_run_is_set_aside_and_starts_again(interrupted, tmp_path, capsys):
    run_dir = tmp_path / interrupted.name
    shutil.copytree(interrupted, run_dir)
    np.savez(run_dir / "epoch0001.npz", np.array([Unpickled()], dtype=object))
    record = execute(CONFIG, out_dir=str(tmp_path), resume=True, **QUIET)
    out, err = capsys.readouterr()
    assert "epoch0001.npz is unreadable" in err and "starting this run again from epoch 0" in err, err
    assert "UNPICKLED" not in out + err  # never unpickled
    assert [h["epoch"] for h in record["metrics"]["history"]] == [1, 2]  # both epochs trained afresh
    (aside,) = run_dir.glob("damaged-*")
    assert (aside / "state.json").exists() and (aside / "epoch0001.npz").exists()
    assert sorted(p.name for p in run_dir.iterdir() if p != aside) == ["best.weights.h5", "predictions.npz",
                                                                       "run.json", "state.json"]


def test_a_resumed_run_removes_what_a_killed_writer_left(interrupted, tmp_path):
    """kill -9 between a temporary's creation and its rename leaves it behind (a random-kill study test caught
    .tmp.best.weights.h5.*): the next process to hold the run directory removes such leftovers."""
    run_dir = tmp_path / interrupted.name
    shutil.copytree(interrupted, run_dir)
    (run_dir / ".tmp.best.weights.h5.abc123.weights.h5").write_bytes(b"half")
    (run_dir / ".tmp.predictions.npz.def456").mkdir()
    execute(CONFIG, out_dir=str(tmp_path), resume=True, **QUIET)
    assert not list(run_dir.glob(".tmp.*"))
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.weights.h5", "predictions.npz", "run.json",
                                                         "state.json"]


def test_a_diverging_run_stops_and_fails_with_nan_loss(tmp_path):
    config = dataclasses.replace(CONFIG, learning_rate=1e30)
    with pytest.raises(RunFailed, match=r"^nan_loss: the training loss became NaN or infinite at step \d+ of epoch 1;"):
        execute(config, out_dir=str(tmp_path), **QUIET)
    run_dir = tmp_path / config.run_name()
    assert not (run_dir / "run.json").exists() and not (run_dir / "state.json").exists()  # nothing NaN committed


def test_a_run_directory_in_use_is_refused_at_once(tmp_path):
    run_dir = tmp_path / CONFIG.run_name()
    with io.held(tmp_path / f".{run_dir.name}.lock", "held by this test"):
        with pytest.raises(RuntimeError, match=f"run directory {run_dir} is in use by another process"):
            execute(CONFIG, out_dir=str(tmp_path), **QUIET)
    assert not run_dir.exists() and list(tmp_path.iterdir()) == []  # and the lock file went with its holder


def test_load_arrays_never_unpickles(tmp_path):
    path = tmp_path / "objects.npz"
    with open(path, "wb") as f:
        np.savez(f, np.array([Unpickled()], dtype=object))
    assert b"UNPICKLED" in pickle.dumps(Unpickled())  # (the payload is there to be run)
    with pytest.raises(ValueError, match="allow_pickle"):
        io.load_arrays(path)
