"""Runs a study's cells as enqueued Optuna trials in a shared RDB storage.

Each cell (model, dataset, seed, resolved recipe) is keyed by its run config hash and enqueued once as a WAITING
trial carrying its config. Workers (processes here or on other machines on the same storage URL) claim WAITING
trials atomically through the storage, beat a heartbeat while they train, and mark the trial COMPLETE with the
run's record. A worker that dies stops beating: after the grace period any worker fails its trial, and Optuna's
RetryHeartbeatStaleTrialCallback re-queues it (up to the retry limit); the retry resumes from the run's last
epoch checkpoint when it lands on the same machine. Starting a study again re-queues cells that failed, and
never touches finished ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from benchbench.run import RunConfig, execute
from benchbench.storage import StorageError, display_url, exclusive, heartbeat, open_storage
from benchbench.study import Study

KIND = "benchbench-study"  # an Optuna study user attribute: tells comparative studies from searches
COLUMNS = ["study", "model", "family", "dataset", "seed", "status", "test_top1", "test_top5", "best_val_top1",
           "params", "gflops", "train_images_per_second", "inference_latency_ms", "peak_memory_mb", "wall_seconds",
           "epochs", "image_size", "config_hash", "run_id", "error"]


@dataclasses.dataclass
class Cell:
    config: RunConfig
    status: str  # done | running | queued | failed | new (not yet enqueued)
    record: dict | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.config.model} {self.config.dataset} seed {self.config.seed}"


class Queue:
    """A study's cells in an Optuna storage: enqueue, claim, finish, and read back their states."""

    def __init__(self, study: Study, url: str, *, heartbeat_seconds: float | None = 10, max_retries: int = 2):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = study
        self.storage = open_storage(url, heartbeat=heartbeat_seconds, max_retries=max_retries)
        try:
            self.optuna = optuna.create_study(study_name=study.name, storage=self.storage, direction="maximize",
                                              load_if_exists=True)
            kind = self.optuna.user_attrs.get("kind")
            if kind is None:
                self.optuna.set_user_attr("kind", KIND)
        except optuna.exceptions.StorageInternalError as error:
            raise StorageError(f"storage {display_url(url)}: {error.__cause__ or error}") from None
        if kind not in (None, KIND):
            raise ValueError(f"the storage already holds an Optuna study named {study.name!r} that is not a "
                             f"benchbench study ({kind}); rename the study or use another storage")
        self.study_id = self.storage.get_study_id_from_name(study.name)
        self.keys = {cell.hash(): cell for cell in study.cells}

    def _trials(self, states=None) -> list:
        return [t for t in self.optuna.get_trials(deepcopy=False, states=states) if t.user_attrs.get("cell") in self.keys]

    def start(self) -> int:
        """Fails the trials of dead workers and enqueues what is missing; returns how many cells were queued."""
        with self._lock():
            self._reap_stale()
            return self._enqueue_missing()

    def reap(self) -> None:
        with self._lock():
            self._reap_stale()

    def _lock(self):
        # Reaping (fail a stale trial, then queue its retry) and enqueueing (read what is live, then queue the
        # rest) are each several transactions: interleaved, they could queue one cell twice.
        return exclusive(self.storage, f"benchbench-study:{self.study.name}")

    def _enqueue_missing(self) -> int:
        """Enqueues every cell that is neither finished, running nor queued: new cells and failed ones.
        Called under the study's lock: two workers starting together would otherwise both enqueue a cell."""
        from optuna.trial import TrialState

        live = {t.user_attrs["cell"] for t in self._trials((TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE))}
        missing = [config for key, config in self.keys.items() if key not in live]
        for config in missing:
            self.optuna.enqueue_trial({}, user_attrs={"cell": config.hash(), "run_id": config.run_name(),
                                                      "config": config.resolved()})
        return len(missing)

    def _reap_stale(self) -> None:
        """Fails the trials of workers whose heartbeat stopped; the retry callback re-queues their cells (at most
        one worker re-queues each: failing a trial that is already failed raises, so only one gets to)."""
        import warnings

        import optuna

        with warnings.catch_warnings():  # "experimental" since Optuna 2.9, and what heartbeats exist for
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.optuna)

    def claim(self):
        """Atomically takes the lowest-numbered WAITING trial; None when there is none.

        Should a cell ever be queued twice (enqueueing is locked, so this is a second line of defence), the
        duplicate with the higher number is claimed and then dropped (FAIL, `duplicate_of`). A busy database
        ends the scan rather than skipping ahead, so trials are always tried lowest number first."""
        from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
        from optuna.trial import TrialState

        for trial in sorted(self._trials((TrialState.WAITING,)), key=lambda t: t.number):
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    continue  # another worker took it first
                if self.storage.get_heartbeat_interval():
                    # At once: Optuna only reaps RUNNING trials that have a heartbeat, so a worker killed
                    # before its first beat would leave the cell running forever (seen in the kill test).
                    self.storage.record_heartbeat(trial_id)
            except UpdateFinishedTrialError:
                continue  # finished meanwhile
            except StorageInternalError:
                return None  # the database was busy: look again on the next pass
            rivals = [t for t in self._trials((TrialState.RUNNING, TrialState.COMPLETE))
                      if t.user_attrs["cell"] == trial.user_attrs["cell"] and t.number != trial.number]
            if any(t.state == TrialState.COMPLETE or t.number < trial.number for t in rivals):
                self.storage.set_trial_user_attr(trial_id, "duplicate_of", min(t.number for t in rivals))
                self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
                continue
            self.storage.set_trial_user_attr(trial_id, "worker", f"{socket.gethostname()}:{os.getpid()}")
            return trial_id, trial
        return None

    def complete(self, trial_id: int, record: dict) -> bool:
        """Stores the record and completes the trial; False if another worker gave up on it meanwhile."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_user_attr(trial_id, "record", record)
            return self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [record["metrics"]["test_top1"]])
        except UpdateFinishedTrialError:
            return False

    def fail(self, trial_id: int, error: str) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_user_attr(trial_id, "error", error)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass

    def cells(self) -> list[Cell]:
        """Every cell of the study file, in file order, with its state across all workers."""
        from optuna.trial import TrialState

        by_key: dict[str, list] = {}
        for trial in self._trials():
            by_key.setdefault(trial.user_attrs["cell"], []).append(trial)
        cells = []
        for key, config in self.keys.items():
            trials = by_key.get(key, [])
            states = {t.state for t in trials}
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            if done:
                cells.append(Cell(config, "done", record=done[0].user_attrs["record"]))
            elif TrialState.RUNNING in states:
                cells.append(Cell(config, "running"))
            elif TrialState.WAITING in states:
                cells.append(Cell(config, "queued"))
            elif trials:
                errors = [t.user_attrs.get("error") or "worker lost (no heartbeat)" for t in trials
                          if "duplicate_of" not in t.user_attrs]
                cells.append(Cell(config, "failed", error=errors[-1] if errors else None))
            else:
                cells.append(Cell(config, "new"))
        return cells


def work(queue: Queue, *, runs_dir: Path, data_dir: str | None, tracking: str, poll_seconds: float = 2.0,
         echo: Callable[[str], None] = print) -> int:
    """Claims and runs cells until none is queued or running; returns how many this worker finished."""
    finished = 0
    total = len(queue.keys)
    while (claimed := _next_cell(queue, poll_seconds)) is not None:
        trial_id, trial = claimed
        config = RunConfig.from_resolved(trial.user_attrs["config"])
        label = f"{config.model} {config.dataset} seed {config.seed}"
        state = runs_dir / config.run_name() / "state.json"
        resumed = f", resuming after epoch {json.loads(state.read_text())['epoch']}" if state.exists() else ""
        echo(f"running  {label}  (trial {trial.number}, run {config.run_name()}{resumed})")
        record = _run_cell(queue, trial_id, config, label, runs_dir=runs_dir, data_dir=data_dir, tracking=tracking,
                           echo=echo)
        if record is None:
            continue
        if queue.complete(trial_id, record):
            finished += 1
            done = sum(cell.status == "done" for cell in queue.cells())
            echo(f"done     {label}  test top-1 {100 * record['metrics']['test_top1']:.1f}%  "
                 f"{record['wall_seconds']:.0f} s  [{done}/{total} cells done]")
        else:
            echo(f"dropped  {label}: its heartbeat was missed and another worker re-queued it")
    return finished


def _next_cell(queue: Queue, poll_seconds: float):
    """The next claimed (trial id, trial), or None once no cell is queued or running. While other workers train
    the last cells it waits, in case one of them dies and its cell is re-queued."""
    from optuna.exceptions import StorageInternalError

    errors = 0
    while True:
        try:
            queue.reap()
            claimed = queue.claim()
            if claimed or not any(cell.status == "running" for cell in queue.cells()):
                return claimed
            errors = 0
        except StorageInternalError as error:  # a database blip must not end a long study: wait, then retry
            errors += 1
            if errors > 10:
                raise StorageError(f"the study's storage keeps failing: {error.__cause__ or error}") from None
        time.sleep(poll_seconds * max(1, errors))


def _run_cell(queue: Queue, trial_id: int, config: RunConfig, label: str, *, runs_dir: Path, data_dir: str | None,
              tracking: str, echo: Callable[[str], None]) -> dict | None:
    def on_epoch(logs: dict) -> None:
        echo(f"         {label}  epoch {logs['epoch']}/{config.epochs}  loss {logs['loss']:.3f}  "
             f"val top-1 {100 * logs['val_top1']:.1f}%")

    with heartbeat(queue.storage, trial_id):
        try:
            return execute(config, out_dir=str(runs_dir), data_dir=data_dir, resume=True, verbose=0,
                           tracking=tracking, group=queue.study.name, on_epoch=on_epoch, sync_hint=False)
        except KeyboardInterrupt:
            queue.fail(trial_id, "interrupted")  # the next start of the study re-queues it
            raise
        except Exception as error:  # one broken cell must not stop the study; it is reported and re-tried on restart
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            queue.fail(trial_id, message)
            echo(f"failed   {label}: {message}")
            return None


def row(study: str, cell: Cell) -> dict:
    """One runs.csv row: the cell's identity, state and, when done, its measured results."""
    from benchbench.models import model_info

    config = cell.config
    values = {"study": study, "model": config.model, "family": model_info(config.model).family,
              "dataset": config.dataset, "seed": config.seed, "status": cell.status, "epochs": config.epochs,
              "config_hash": config.hash(), "run_id": config.run_name(), "error": cell.error}
    record = cell.record
    if record:
        metrics = record["metrics"]
        values.update({key: metrics[key] for key in ("test_top1", "test_top5", "best_val_top1")})
        values.update({key: record.get(key) for key in ("params", "gflops", "train_images_per_second",
                                                        "inference_latency_ms", "peak_memory_mb", "wall_seconds")})
        values["image_size"] = record["resolved"]["image_size"]
    return {column: values.get(column) for column in COLUMNS}


def write_results(study: Study, cells: list[Cell], directory: Path) -> Path:
    """Writes runs.csv (one row per cell), records.jsonl (the full records, with histories) and study.json (what
    the report's header says about the protocol), each atomically."""
    import pandas as pd

    directory.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([row(study.name, cell) for cell in cells], columns=COLUMNS)
    path = directory / "runs.csv"
    tmp = directory / ".runs.csv.tmp"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    tmp = directory / ".records.jsonl.tmp"
    with open(tmp, "w") as f:
        for cell in cells:
            if cell.record:
                f.write(json.dumps({"study": study.name, **cell.record}) + "\n")
    os.replace(tmp, directory / "records.jsonl")
    tmp = directory / ".study.json.tmp"
    tmp.write_text(json.dumps({"name": study.name, "description": study.description, "file": str(study.path),
                               "tuned": study.tune is not None, "cells": len(cells)}, indent=1))
    os.replace(tmp, directory / "study.json")
    return path


def worker_env(workers: int) -> dict:
    """Environment for one of `workers` local worker processes: the CPU cores split between them."""
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}


def spawn_workers(argv: list[str], workers: int, storage_url: str) -> list:
    """Starts `workers` processes of `benchbench ARGV`; the storage URL travels in the environment, where `ps`
    does not show it (it may hold a password)."""
    import subprocess

    from benchbench.storage import STORAGE_ENV

    env = {**worker_env(workers), STORAGE_ENV: storage_url}
    return [subprocess.Popen([sys.executable, "-m", "benchbench", *argv], env=env) for _ in range(workers)]
