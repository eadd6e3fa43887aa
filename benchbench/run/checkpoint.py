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

import numpy as np

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


class DamagedRun(Exception):
    """A run directory whose state cannot be trusted; the message names the file and what is wrong."""


def committed_epoch(run_dir: Path) -> int | None:
    """The epochs a run directory has committed, for messages; None if none (or its state is unreadable)."""
    try:
        epoch = json.loads((run_dir / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch if isinstance(epoch, int) else None


class Checkpointer:
    """Keeps a run directory's state and checkpoints in step with training (see the module docstring)."""

    def __init__(self, run_dir: Path, model, optimizer, *, started: float, config_hash: str, epochs: int):
        self.run_dir, self.model, self.optimizer = run_dir, model, optimizer
        self.config_hash, self.epochs = config_hash, epochs
        self.state_path, self.best_path = run_dir / "state.json", run_dir / "best.npz"
        self.state = {"config_hash": config_hash, "epoch": 0, "history": [], "best_val_top1": -1.0,
                      "best_epoch": None, "checkpoint": None,
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

    def restore(self) -> str | None:
        """Loads the last committed epoch, if any, into the model and optimizer (call in the strategy scope).

        Returns None when there was nothing to restore or it was restored; else what is damaged (a corrupt,
        truncated, missing or edited file). Everything is checked before anything is assigned, so after a
        damaged restore the model and optimizer are still the fresh ones: the caller starts the run again."""
        if not self.state_path.exists():
            return None
        try:
            state = self._read_state()
            self.optimizer.build(self.model.trainable_variables)
            targets = list(self.model.weights) + list(self.optimizer.variables)
            arrays = self._read_arrays(self.run_dir / state["checkpoint"], targets)  # weights, moments, step
            best = self._read_arrays(self.best_path, self.model.weights) if state["best_epoch"] else None
            rng = rng_variables(self.model)
            if [np.shape(value) for value in state.get("rng", [])] != [tuple(v.shape) for v in rng]:
                raise DamagedRun(f"{self.state_path.name}: its RNG states do not fit the model's {len(rng)}")
        except DamagedRun as damage:
            return str(damage)
        for variable, value in zip(targets, arrays, strict=True):
            variable.assign(value)
        for variable, value in zip(rng, state["rng"], strict=True):
            variable.assign(value)
        self.state, self.best = state, best
        self.elapsed_before = state["wall_seconds"]
        return None

    def _read_state(self) -> dict:
        """state.json, checked against the run it claims to be: same config, epochs within the run's, a history
        per epoch, the checkpoint of that epoch."""
        name = self.state_path.name
        try:
            state = json.loads(self.state_path.read_text())
            epoch, history, _ = state["epoch"], state["history"], state["best_epoch"]
            float(state["wall_seconds"]), float(state["best_val_top1"])
            if not (isinstance(history, list) and isinstance(state.get("rng", []), list)):
                raise TypeError("history and rng must be lists")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DamagedRun(f"{name} is unreadable ({type(error).__name__}: {str(error)[:80]})") from None
        if state.get("config_hash") != self.config_hash:
            raise DamagedRun(f"{name} belongs to another configuration (hash {state.get('config_hash')!r})")
        if not (isinstance(epoch, int) and 1 <= epoch <= self.epochs and len(history) == epoch):
            raise DamagedRun(f"{name} says epoch {epoch!r} with {len(history)} epochs of history, for a run of "
                             f"{self.epochs} epochs")
        if state["checkpoint"] != f"epoch{epoch:04d}.npz":
            raise DamagedRun(f"{name} names checkpoint {state['checkpoint']!r} for epoch {epoch}")
        return state

    def _read_arrays(self, path: Path, targets: list) -> list:
        try:
            arrays = io.load_arrays(path)
        except FileNotFoundError:
            raise DamagedRun(f"{path.name} is missing") from None
        except Exception as error:  # truncated or corrupt zip, objects that would need unpickling, ...
            raise DamagedRun(f"{path.name} is unreadable ({type(error).__name__})") from None
        shapes = [tuple(a.shape) for a in arrays]
        if shapes != [tuple(v.shape) for v in targets]:
            raise DamagedRun(f"{path.name} holds {len(arrays)} arrays that do not fit the model's {len(targets)}")
        return arrays

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
        """After the record is written: only run.json, state.json, best.weights.h5 and predictions.npz remain."""
        self.best_path.unlink(missing_ok=True)
        if self.state["checkpoint"]:
            (self.run_dir / self.state["checkpoint"]).unlink(missing_ok=True)
