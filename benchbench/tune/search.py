"""Hyperparameter search with Optuna: a seeded TPE sampler over the family's space, per-epoch pruning on
validation top-1, a shared RDB storage for many workers; and tune-then-compare for studies with a [tune]
table. The objective is the best validation top-1 of a run; the test split is never evaluated while tuning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from benchbench import console
from benchbench.run.config import RunConfig, dataset_slug, validate, with_overrides
from benchbench.run.train import execute
from benchbench.storage import exclusive, heartbeat, open_storage, storage_errors
from benchbench.tune.dimensions import Dimension
from benchbench.tune.pruners import make_pruner, warmup_epochs
from benchbench.tune.space import space_for

KIND = "benchbench-search"


@dataclasses.dataclass(frozen=True)
class Search:
    name: str
    base: RunConfig  # model, dataset, search seed, epochs per trial, and the fixed part of the recipe
    space: dict[str, Dimension]
    trials: int
    pruner: str = "median"

    def make_pruner(self):
        base = self.base
        return make_pruner(self.pruner, base.epochs, warmup_epochs(base.warmup_fraction, base.epochs))

    def identity(self) -> dict[str, Any]:
        """What a stored search must match to be continued under the same name."""
        space = {k: dataclasses.asdict(v) for k, v in sorted(self.space.items())}
        return {"kind": KIND, "model": self.base.model, "dataset": self.base.dataset,
                "recipe": json.loads(json.dumps(self.base.resolved())), "space": json.loads(json.dumps(space))}


def open_search(search: Search, url: str, *, heartbeat_seconds: float = 10, max_retries: int = 2):
    """Creates or continues the search's Optuna study; a stored study of another kind, model, data set or space
    under the same name is a usage error (nothing is changed)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat=heartbeat_seconds, max_retries=max_retries)
    with storage_errors(url):
        study = optuna.create_study(study_name=search.name, storage=storage, direction="maximize",
                                    pruner=search.make_pruner(), load_if_exists=True)
        stored = study.user_attrs
        if not stored:
            for key, value in search.identity().items():
                study.set_user_attr(key, value)
            stored = search.identity()
    differences = [k for k, v in search.identity().items() if stored.get(k) != v]
    if differences:
        named = {"recipe": "another recipe (seed, epochs, --set)", "space": "another search space"}
        what = ", ".join(named.get(k, f"{k} {stored.get(k)!r}") for k in differences)
        raise ValueError(f"the storage already holds a study named {search.name!r} with {what}; continue it with the "
                         "same options, or choose another --study-name")
    return storage, study


class PruningCallback(keras.callbacks.Callback):
    """Reports validation top-1 to the Optuna trial after every epoch and, when the pruner says so, stops
    training. optuna-integration's KerasPruningCallback raises TrialPruned out of `fit` instead, which would
    leave the run without its record and its W&B run unfinished; stopping lets both end cleanly (the W&B run
    is finished with stopped_early = true)."""

    def __init__(self, trial, monitor: str = "val_top1"):
        super().__init__()
        self.trial, self.monitor, self.pruned = trial, monitor, False

    def on_epoch_end(self, epoch, logs=None):
        self.trial.report(float(logs[self.monitor]), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True


def trial_sampler(seed: int, number: int):
    """TPE seeded by (search seed, trial number). One seeded sampler per worker would make concurrent workers,
    which see the same history, suggest the same configuration; seeding per trial keeps them apart and keeps
    a one-worker search reproducible: the same command twice suggests the same sequence."""
    import optuna

    return optuna.samplers.TPESampler(seed=(seed * 1_000_003 + number) % 2**32)


def counts(study) -> dict[str, int]:
    from collections import Counter

    return Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))


def search_worker(search: Search, storage, study, *, runs_dir: Path, data_dir: str | None, tracking: str,
                  deadline: float | None, echo: Callable[[str], None] = print, poll_seconds: float = 2.0) -> int:
    """Asks for and runs trials until `search.trials` have finished across all workers (or the deadline);
    returns how many this worker finished.

    Failed trials do not count toward the trials wanted, so a search whose every trial fails would ask for new
    ones forever: a worker stops once max(3, trials) of its trials in a row failed, naming the last error."""
    finished, failures = 0, []
    while True:
        with exclusive(storage, f"benchbench-search:{search.name}"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize": we beat ourselves
                import optuna

                optuna.storages.fail_stale_trials(study)
                n = counts(study)
                done = n["complete"] + n["pruned"]
                if deadline and time.time() > deadline:
                    return finished
                trial = None
                if n["waiting"] or done + n["running"] < search.trials:
                    study.sampler = trial_sampler(search.base.seed, sum(n.values()))
                    trial = study.ask()  # a re-queued trial of a dead worker first, else a new TPE suggestion
        if trial is None:
            if not n["running"]:
                return finished
            time.sleep(poll_seconds)  # the last trials are running elsewhere; one may die and be re-queued
            continue
        error = _run_trial(search, storage, study, trial, runs_dir=runs_dir, data_dir=data_dir, tracking=tracking,
                           echo=echo)
        failures = [*failures, (trial.number, error)] if error else []
        finished += not error
        if len(failures) >= max(3, search.trials):
            number, last = failures[-1]
            raise RuntimeError(f"search {search.name}: {len(failures)} trials in a row failed (the last, trial "
                               f"{number}: {last}); fix the options and start it again")


def _run_trial(search: Search, storage, study, trial, *, runs_dir, data_dir, tracking, echo) -> str | None:
    """Runs one trial and tells the study how it ended; returns its error, None when it finished."""
    from optuna.trial import TrialState

    params = {key: dimension.suggest(trial, key) for key, dimension in search.space.items()}
    shown = format_params(params)
    try:
        config = with_overrides(search.base, params)
        validate(config)
    except ValueError as error:  # a combination the space allows but the data set does not (batch > split)
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=TrialState.FAIL)
        echo(f"trial {trial.number:<3} failed: {error}")
        return str(error)
    trial.set_user_attr("config", config.resolved())
    # Its own folder per trial: two trials may suggest one configuration. A retried trial (its worker died)
    # carries the user attributes over, so it resumes the dead worker's run from its last checkpoint.
    folder = trial.user_attrs.get("run_dir", f"trial{trial.number:04d}/{config.run_name()}").split("/")[0]
    trial.set_user_attr("run_id", config.run_name())
    trial.set_user_attr("run_dir", f"{folder}/{config.run_name()}")
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    pruning = PruningCallback(trial)
    study_id = storage.get_study_id_from_name(search.name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    echo(f"trial {trial.number:<3} running  {shown}")
    with heartbeat(storage, trial_id):
        try:
            record = execute(config, out_dir=str(runs_dir / folder), data_dir=data_dir, resume=True, verbose=0,
                             tracking=tracking, group=search.name, job_type="tune-trial", callbacks=[pruning],
                             evaluate_test=False, sync_hint=False)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as error:
            if (stop := console.stop_requested()) is not None:  # the signal came back as another error
                study.tell(trial, state=TrialState.FAIL)
                raise stop from None
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            trial.set_user_attr("error", message)
            study.tell(trial, state=TrialState.FAIL)
            echo(f"trial {trial.number:<3} failed: {message}")
            return message
    best = record["metrics"]["best_val_top1"]
    trial.set_user_attr("best_val_top1", best)
    trial.set_user_attr("epochs_run", len(record["metrics"]["history"]))
    if pruning.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        echo(f"trial {trial.number:<3} pruned   after epoch {len(record['metrics']['history'])}: "
             f"val top-1 {100 * record['metrics']['history'][-1]['val_top1']:.1f}%")
    else:
        study.tell(trial, best)
        echo(f"trial {trial.number:<3} complete best val top-1 {100 * best:.1f}%")
    return None


def format_params(params: dict[str, Any]) -> str:
    """"learning_rate=0.00123, batch_size=32": a trial's parameters, floats to three significant digits."""
    return ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in params.items())


def best_trials(study, k: int) -> list:
    """The top-k complete trials by best validation top-1 (ties: lower trial number first)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (-t.value, t.number))[:k]


def tune_study(study, url: str, *, out: Path, data_dir: str | None, heartbeat_seconds: float,
               echo: Callable[[str], None] = print):
    """Tune-then-compare: runs (or joins, as one more worker, or just reads once finished) the search of every
    (model, dataset) of a study with a [tune] table, on its search seed, and returns the study with each
    cell's configuration replaced by its search's best. Trials keep their runs apart from the cells' runs."""
    spec = study.tune
    best: dict[tuple[str, str], dict] = {}
    for cell in study.cells:
        key = (cell.model, cell.dataset)
        if key in best:
            continue
        base = dataclasses.replace(cell, seed=spec.seed, epochs=spec.epochs or cell.epochs)
        search = Search(name=f"{study.name}-tune-{cell.model}-{dataset_slug(cell.dataset)}", base=base,
                        space=space_for(cell.model, spec.space.get(cell.model, {})), trials=spec.trials,
                        pruner=spec.pruner)
        storage, optuna_study = open_search(search, url, heartbeat_seconds=heartbeat_seconds)
        search_worker(search, storage, optuna_study, runs_dir=out / "tune-runs", data_dir=data_dir,
                      tracking=study.tracking, deadline=None, echo=echo)
        complete = best_trials(optuna_study, 1)
        if not complete:
            raise RuntimeError(f"search {search.name} found no complete trial; widen its space or add trials")
        best[key] = complete[0].params
        echo(f"tuned    {cell.model} {cell.dataset}: best val top-1 {100 * complete[0].value:.1f}% with "
             + format_params(complete[0].params))
    cells = tuple(with_overrides(cell, best[(cell.model, cell.dataset)]) for cell in study.cells)
    return dataclasses.replace(study, cells=cells)
