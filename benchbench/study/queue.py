"""A study's cells as enqueued Optuna trials in a shared RDB storage: enqueue, claim, finish, read back.

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
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from benchbench.run.config import RunConfig
from benchbench.run.reuse import sibling_key
from benchbench.storage import display_url, exclusive, open_storage, storage_errors
from benchbench.study.file import Study

KIND = "benchbench-study"  # an Optuna study user attribute: tells comparative studies from searches
PROGRESS_SECONDS = 5.0  # a long enqueue says how far it is this often


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a worker needs besides the cells' configs, stored with the study (an Optuna user attribute) when
    the study starts, so that a worker on another machine joins it by name, without the study file."""

    cells: tuple[str, ...]  # the run config hashes of the study file's cells, in file order
    tracking: str
    costs: str  # "fresh_process" | "in_run" (study/file.py)
    results: str  # the study's results folder (runs/ and costs/ below it), absolute, as its creator saw it
    heartbeat: float | None = 10
    max_retries: int = 2
    protocol: str = "recipe"
    job_type: str = "train"  # W&B's job type of the cells' runs ("confirm" for a search's confirmation)


def worker_identity() -> dict:
    """Who runs a cell: host and pid, and the SLURM job and array task when a SLURM job runs this process."""
    identity = {"host": socket.gethostname(), "pid": os.getpid()}
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job:
        identity["slurm_job"] = job
        if "SLURM_ARRAY_TASK_ID" in os.environ:
            identity["slurm_task"] = os.environ["SLURM_ARRAY_TASK_ID"]
    return identity


@dataclasses.dataclass
class Cell:
    config: RunConfig
    status: str  # done | running | queued | failed | new (not yet enqueued)
    record: dict | None = None
    error: str | None = None
    epoch: int | None = None  # a running cell's last finished epoch

    @property
    def label(self) -> str:
        return f"{self.config.model} {self.config.dataset} seed {self.config.seed}"


def _open(storage, url: str, name: str):
    """The storage's Optuna study of this name, created if absent; ValueError if it is not a benchbench study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_errors(url):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        kind = study.user_attrs.get("kind")
        if kind is None:
            study.set_user_attr("kind", KIND)
    if kind not in (None, KIND):
        raise ValueError(f"the storage already holds an Optuna study named {name!r} that is not a benchbench "
                         f"study ({kind}); rename the study or use another storage")
    return study


def pinned(url: str, name: str, key: str, update: Callable[[dict], dict]) -> dict:
    """A dict every process of study NAME agrees on: the study's user attribute KEY, after `update(current)` under
    the study's lock (what it adds is written once; a process that finds everything there measures nothing)."""
    storage = open_storage(url)
    study = _open(storage, url, name)
    with exclusive(storage, f"benchbench-study:{name}"):
        with storage_errors(url):  # read under the lock: another process may have just pinned it
            current = dict(study.user_attrs.get(key) or {})
        value = update(current)
        if value != current:
            with storage_errors(url):
                study.set_user_attr(key, value)
    return value


class Queue:
    """A study's cells in an Optuna storage: enqueue, claim, finish, and read back their states. Made from the
    study file (`Queue(study, url)`), or joined by name from what the storage holds (`Queue.join(url, name)`)."""

    def __init__(self, study: Study, url: str, *, heartbeat_seconds: float | None = 10, max_retries: int = 2,
                 results: Path | None = None, job_type: str = "train"):
        keys = {cell.hash(): cell for cell in study.cells}
        settings = Settings(tuple(keys), study.tracking, study.costs, str(Path(results or ".").resolve()),
                            heartbeat_seconds, max_retries, study.protocol, job_type)
        self._attach(url, study.name, keys, settings, study)

    @classmethod
    def join(cls, url: str, name: str) -> Queue:
        """The queue of study NAME as its storage holds it: cells, configs and settings, no study file needed.
        ValueError when the storage has no such benchbench study (or one started before workers could join)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with storage_errors(url):
            storage = open_storage(url)
            try:
                attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
            except KeyError:
                raise ValueError(f"storage {display_url(url)} has no study named {name!r}; create it with "
                                 f"`benchbench study FILE --storage URL`") from None
        if attrs.get("kind") != KIND or "settings" not in attrs:
            raise ValueError(f"{name!r} in {display_url(url)} is not a benchbench study workers can join; "
                             "start it once with `benchbench study FILE --storage URL`")
        settings = Settings(**{**attrs["settings"], "cells": tuple(attrs["settings"]["cells"])})
        queue = cls.__new__(cls)
        queue._attach(url, name, dict.fromkeys(settings.cells), settings)
        configs = {t.user_attrs["cell"]: t.user_attrs["config"] for t in queue._trials()}
        queue.keys = {key: RunConfig.from_resolved(configs[key]) for key in settings.cells if key in configs}
        return queue

    def _attach(self, url: str, name: str, keys: dict, settings: Settings, study: Study | None = None) -> None:
        self.study, self.name, self.keys, self.settings = study, name, keys, settings
        self.url = url
        self.storage = open_storage(url, heartbeat=settings.heartbeat, max_retries=settings.max_retries)
        self.optuna = _open(self.storage, url, name)
        self.study_id = self.storage.get_study_id_from_name(name)

    def _trials(self, states=None) -> list:
        trials = self.optuna.get_trials(deepcopy=False, states=states)
        return [t for t in trials if t.user_attrs.get("cell") in self.keys]

    def start(self, progress: Callable[[str], None] | None = None) -> int:
        """Fails the trials of dead workers and enqueues what is missing; returns how many cells were queued.
        `progress` hears how far a long enqueue is (each cell is a few storage transactions)."""
        with self._lock():
            self._reap_stale()
            added = self._enqueue_missing(progress)
            if self.study is not None:  # what workers that join by name need (Queue.join), once the cells are in
                self.optuna.set_user_attr("settings", dataclasses.asdict(self.settings))
            return added

    def reap(self) -> None:
        with self._lock():
            self._reap_stale()

    def _lock(self):
        # Reaping (fail a stale trial, then queue its retry) and enqueueing (read what is live, then queue the
        # rest) are each several transactions: interleaved, they could queue one cell twice.
        return exclusive(self.storage, f"benchbench-study:{self.name}")

    def _enqueue_missing(self, progress: Callable[[str], None] | None = None) -> int:
        """Enqueues every cell that is neither finished, running nor queued: new cells and failed ones.
        Called under the study's lock: two workers starting together would otherwise both enqueue a cell."""
        from optuna.trial import TrialState

        live_states = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
        live = {t.user_attrs["cell"] for t in self._trials(live_states)}
        missing = [config for key, config in self.keys.items() if key not in live]
        last_report = time.monotonic()
        for done, config in enumerate(missing):
            if progress and time.monotonic() - last_report > PROGRESS_SECONDS:
                progress(f"queueing cells: {done}/{len(missing)} in the storage")
                last_report = time.monotonic()
            self._enqueue(config)
        return len(missing)

    def _enqueue(self, config: RunConfig) -> None:
        """A WAITING trial for the cell, carrying its key, run id and resolved config (what workers run)."""
        self.optuna.enqueue_trial({}, user_attrs={"cell": config.hash(), "run_id": config.run_name(),
                                                  "config": config.resolved()})

    def requeue(self, trial_id: int, reason: str) -> None:
        """Gives a claimed cell back at once (its worker was stopped: Ctrl-C, `kill`, `scancel`, preemption):
        this trial fails with `reason` and a fresh one is queued for the cell, which the next worker to claim
        it resumes from the run's last checkpoint. A worker killed outright gets the same through its
        heartbeat going stale, a grace period later."""
        from optuna.trial import TrialState

        self.fail(trial_id, reason)
        with self._lock():
            cell = self.storage.get_trial(trial_id).user_attrs["cell"]
            live = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
            if not any(t.user_attrs["cell"] == cell for t in self._trials(live)):
                self._enqueue(self.keys[cell])

    def record_epoch(self, trial_id: int, epoch: int) -> None:
        """The claimed cell's last finished epoch, for `benchbench status`; a database blip is not worth a cell."""
        try:
            self.storage.set_trial_user_attr(trial_id, "epoch", epoch)
        except Exception:
            pass

    def _reap_stale(self) -> None:
        """Fails the trials of workers whose heartbeat stopped; the retry callback re-queues their cells (at most
        one worker re-queues each: failing a trial that is already failed raises, so only one gets to)."""
        import warnings

        import optuna

        with warnings.catch_warnings():  # "experimental" since Optuna 2.9, and what heartbeats exist for
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.optuna)

    def claim(self, after: str | None = None):
        """Atomically takes a WAITING trial; None when there is none. First choice: a cell of the configuration
        this worker ran last (`after`, its `sibling_key`), whose kept model serves it without a new trace
        (run/reuse.py); then a cell of a configuration no running cell has (another worker's model would serve
        those); then any. Within each, the lowest number (file order).

        Should a cell ever be queued twice (enqueueing is locked, so this is a second line of defence), the
        duplicate with the higher number is claimed and then dropped (FAIL, `duplicate_of`). A busy database
        ends the scan rather than skipping ahead, so trials are always tried in that order."""
        from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
        from optuna.trial import TrialState

        running = {sibling_key(t.user_attrs["config"]) for t in self._trials((TrialState.RUNNING,))}

        def order(trial) -> tuple[int, int]:
            key = sibling_key(trial.user_attrs["config"])
            return 0 if key == after else 1 if key not in running else 2, trial.number

        for trial in sorted(self._trials((TrialState.WAITING,)), key=order):
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
            self.storage.set_trial_user_attr(trial_id, "worker", worker_identity())
            return trial_id, trial
        return None

    def mark_measuring(self, trial_id: int, config: RunConfig) -> None:
        """Marks the claimed cell as the one measuring its configuration's costs (workers.py's _measured_elsewhere)."""
        from benchbench.run import costs

        self.storage.set_trial_user_attr(trial_id, "measures_costs", costs.key(config))

    def running(self) -> list[tuple[int, object]]:
        """(trial id, trial) of every running cell."""
        from optuna.trial import TrialState

        return [(self.storage.get_trial_id_from_study_id_trial_number(self.study_id, t.number), t)
                for t in self._trials((TrialState.RUNNING,))]

    def running_on_this_host(self) -> int:
        """How many of this study's cells are running on this machine (this worker's own included)."""
        from optuna.trial import TrialState

        host = socket.gethostname()
        return sum(worker_host(t.user_attrs.get("worker")) == host for t in self._trials((TrialState.RUNNING,)))

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
        """Every cell of the study, in file order, with its state across all workers."""
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
                running = next(t for t in trials if t.state == TrialState.RUNNING)
                cells.append(Cell(config, "running", epoch=running.user_attrs.get("epoch", 0)))
            elif TrialState.WAITING in states:
                cells.append(Cell(config, "queued"))
            elif trials:
                errors = [t.user_attrs.get("error") or "worker lost (no heartbeat)" for t in trials
                          if "duplicate_of" not in t.user_attrs]
                cells.append(Cell(config, "failed", error=errors[-1] if errors else None))
            else:
                cells.append(Cell(config, "new"))
        return cells


def worker_host(worker) -> str | None:
    """The host of a trial's `worker` attribute (a worker_identity dict; "host:pid" before SLURM support)."""
    if isinstance(worker, dict):
        return worker.get("host")
    return str(worker).rsplit(":", 1)[0] if worker else None
