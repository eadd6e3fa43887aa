"""A run directory's resumable state: what a killed run resumes from, bit for bit.

`state.json` is the commit point (written last, atomically): the epochs done, their history, the best
validation score, the wall time so far, the dropout RNG states, and the name of the epoch checkpoint it goes
with (`epochNNNN.npz`: model weights, optimizer moments and step). `best.npz` holds the best epoch's weights.
Checkpoints are written when the time since the last one is 1/CHECKPOINT_BUDGET times its cost, so they
take at most ~1 % of training; a kill loses at most that much training, which the resumed run replays.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchbench import io

# Where a run's wall time goes: data loading and model building; the fit calls; per-epoch checkpoints, state
# and tracking (the final test evaluation and cost measurements are added to the record as "final").
TIMING = ("setup", "fit", "bookkeeping")
CHECKPOINT_BUDGET = 0.01  # the share of training time checkpoints may take


def rng_variables(model) -> list:
    # Keras' save/load_weights skip SeedGenerator states (dropout, stochastic depth), so the run checkpoints
    # them itself: without them a resumed run would draw different masks than an uninterrupted one.
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _numpy(variable):
    import keras

    return keras.ops.convert_to_numpy(variable)


class Checkpointer:
    """Keeps a run directory's state and checkpoints in step with training (see the module docstring)."""

    def __init__(self, run_dir: Path, model, optimizer, *, started: float):
        self.run_dir, self.model, self.optimizer = run_dir, model, optimizer
        self.state_path, self.best_path = run_dir / "state.json", run_dir / "best.npz"
        self.state = {"epoch": 0, "history": [], "best_val_top1": -1.0, "best_epoch": None, "checkpoint": None,
                      "wall_seconds": 0.0, "timing": dict.fromkeys(TIMING, 0.0)}
        self.best: list | None = None  # the best epoch's weights (incl. BN statistics) as of now
        self.best_unsaved = False
        self.save_seconds: float | None = None  # what the last checkpoint cost
        self.last_save = time.time()
        self.started = started  # this invocation's start: wall time adds up across resumes
        self.elapsed_before = 0.0  # earlier invocations of a resumed run, up to their last checkpoint

    @property
    def timing(self) -> dict:
        return self.state.setdefault("timing", dict.fromkeys(TIMING, 0.0))

    def restore(self) -> None:
        """Loads the last committed epoch, if any, into the model and optimizer (call in the strategy scope)."""
        if not self.state_path.exists():
            return
        self.state = json.loads(self.state_path.read_text())
        self.elapsed_before = self.state["wall_seconds"]
        self.optimizer.build(self.model.trainable_variables)
        arrays = io.load_arrays(self.run_dir / self.state["checkpoint"])  # weights, optimizer moments and step
        self.model.set_weights(arrays[:len(self.model.weights)])
        for variable, value in zip(self.optimizer.variables, arrays[len(self.model.weights):], strict=True):
            variable.assign(value)
        for variable, value in zip(rng_variables(self.model), self.state["rng"], strict=True):
            variable.assign(value)
        if self.best_path.exists():
            self.best = io.load_arrays(self.best_path)

    def wall_seconds(self) -> float:
        """Wall time of the run over all its invocations, up to now."""
        return self.elapsed_before + time.time() - self.started

    def end_of_epoch(self, epoch: int, logs: dict) -> None:
        """Records the epoch; keeps the best weights; checkpoints when the budget allows (and after the first
        epoch, which also pays for tracing)."""
        start = time.time()
        self.state["history"].append(logs)
        if logs["val_top1"] > self.state["best_val_top1"]:
            self.state["best_val_top1"], self.state["best_epoch"] = logs["val_top1"], epoch + 1
            self.best, self.best_unsaved = self.model.get_weights(), True
        self.state["epoch"] = epoch + 1
        if self.save_seconds is None or (start - self.last_save) * CHECKPOINT_BUDGET >= self.save_seconds:
            self._save(epoch, start)

    def _save(self, epoch: int, start: float) -> None:
        if self.best_unsaved:
            io.save_arrays(self.best_path, self.best)
            self.best_unsaved = False
        checkpoint = f"epoch{epoch + 1:04d}.npz"
        io.save_arrays(self.run_dir / checkpoint,
                       self.model.get_weights() + [_numpy(v) for v in self.optimizer.variables])
        previous, self.state["checkpoint"] = self.state["checkpoint"], checkpoint
        self.state["rng"] = [_numpy(v).tolist() for v in rng_variables(self.model)]
        self.state["wall_seconds"] = self.wall_seconds()
        io.write_json(self.state_path, self.state)
        if previous and previous != checkpoint:
            (self.run_dir / previous).unlink(missing_ok=True)
        self.last_save = time.time()
        self.save_seconds = self.last_save - start

    def clean_up(self) -> None:
        """After the record is written: only run.json, state.json and best.weights.h5 remain."""
        self.best_path.unlink(missing_ok=True)
        if self.state["checkpoint"]:
            (self.run_dir / self.state["checkpoint"]).unlink(missing_ok=True)
