"""Hyperparameter search with Optuna: a seeded TPE sampler over the family's space, per-epoch pruning on
validation top-1, a shared RDB storage for many workers, and tune-then-confirm on fresh seeds.

The objective is the best validation top-1 of a run; the test split is never evaluated while tuning. The
confirmation re-runs the top-K configurations on new seeds as an ordinary study (crash-safe, many workers,
runs.csv), and reports each one's best validation score during the search against its confirmed test top-1
mean and 95% t-interval: the optimism of selecting on validation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import keras

from benchbench.run import RunConfig, execute, validate, with_overrides
from benchbench.space import Dimension
from benchbench.storage import StorageError, display_url, exclusive, heartbeat, open_storage

KIND = "benchbench-search"
PRUNERS = ("median", "hyperband", "none")


@dataclasses.dataclass(frozen=True)
class Search:
    name: str
    base: RunConfig  # model, dataset, search seed, epochs per trial, and the fixed part of the recipe
    space: dict[str, Dimension]
    trials: int
    pruner: str = "median"

    def identity(self) -> dict[str, Any]:
        """What a stored search must match to be continued under the same name."""
        space = {k: dataclasses.asdict(v) for k, v in sorted(self.space.items())}
        return {"kind": KIND, "model": self.base.model, "dataset": self.base.dataset,
                "recipe": json.loads(json.dumps(self.base.resolved())), "space": json.loads(json.dumps(space))}


def make_pruner(kind: str, epochs: int):
    import optuna

    if kind == "median":  # prune below the median of earlier trials at the same epoch, after 2 full trials
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {kind!r}")


def open_search(search: Search, url: str, *, heartbeat_seconds: float = 10, max_retries: int = 2):
    """Creates or continues the search's Optuna study; a stored study of another kind, model, data set or space
    under the same name is a usage error (nothing is changed)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat=heartbeat_seconds, max_retries=max_retries)
    try:
        study = optuna.create_study(study_name=search.name, storage=storage, direction="maximize",
                                    pruner=make_pruner(search.pruner, search.base.epochs), load_if_exists=True)
        stored = study.user_attrs
        if not stored:
            for key, value in search.identity().items():
                study.set_user_attr(key, value)
            stored = search.identity()
    except optuna.exceptions.StorageInternalError as error:
        raise StorageError(f"storage {display_url(url)}: {error.__cause__ or error}") from None
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
    returns how many this worker finished."""
    finished = 0
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
        if _run_trial(search, storage, study, trial, runs_dir=runs_dir, data_dir=data_dir, tracking=tracking,
                      echo=echo):
            finished += 1


def _run_trial(search: Search, storage, study, trial, *, runs_dir, data_dir, tracking, echo) -> bool:
    from optuna.trial import TrialState

    params = {key: dimension.suggest(trial, key) for key, dimension in search.space.items()}
    shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    try:
        config = with_overrides(search.base, params)
        validate(config)
    except ValueError as error:  # a combination the space allows but the data set does not (batch > split)
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=TrialState.FAIL)
        echo(f"trial {trial.number:<3} failed: {error}")
        return True
    trial.set_user_attr("config", config.resolved())
    # Its own folder per trial: two trials may suggest one configuration. A retried trial (its worker died)
    # carries the user attributes over, so it resumes the dead worker's run from its last checkpoint.
    folder = trial.user_attrs.get("run_dir", f"trial{trial.number:04d}/{config.run_name()}").split("/")[0]
    trial.set_user_attr("run_id", config.run_name())
    trial.set_user_attr("run_dir", f"{folder}/{config.run_name()}")
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    pruning = PruningCallback(trial)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(search.name), trial.number)
    echo(f"trial {trial.number:<3} running  {shown}")
    with heartbeat(storage, trial_id):
        try:
            record = execute(config, out_dir=str(runs_dir / folder), data_dir=data_dir,
                             resume=True, verbose=0,
                             tracking=tracking, group=search.name, callbacks=[pruning], evaluate_test=False,
                             sync_hint=False)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as error:
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            trial.set_user_attr("error", message)
            study.tell(trial, state=TrialState.FAIL)
            echo(f"trial {trial.number:<3} failed: {message}")
            return True
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
    return True


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def confirm_configs(study, k: int) -> list:
    """The top-k complete trials by best validation top-1 (ties: lower trial number first)."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return sorted(complete, key=lambda t: (-t.value, t.number))[:k]


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float | None]:
    """Mean and the half-width of the two-sided t-interval; None with fewer than two values."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)


def confirmation_rows(trials: list, confirm_cells: list) -> list[dict]:
    """Per selected configuration: its best validation top-1 in the search, the confirmed test top-1 mean and
    95% half-width over the fresh seeds, and the gap between the two."""
    rows = []
    for rank, trial in enumerate(trials, start=1):
        base = RunConfig.from_resolved(trial.user_attrs["config"])
        tests = [c.record["metrics"]["test_top1"] for c in confirm_cells
                 if c.record and dataclasses.replace(c.config, seed=base.seed) == base]
        mean, half = confidence_interval(tests) if tests else (None, None)
        rows.append({"rank": rank, "trial": trial.number, "search_best_val_top1": trial.value,
                     "confirmed_test_top1_mean": mean, "confirmed_test_top1_ci95": half, "seeds": len(tests),
                     "optimism_gap": trial.value - mean if mean is not None else None,
                     "params": json.dumps(trial.params, sort_keys=True)})
    return rows


def write_rows(rows: list[dict], path: Path) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    os.replace(tmp, path)


def confirm(search: Search, study, *, k: int, seeds: int, url: str, out: Path, data_dir: str | None, tracking: str,
            heartbeat_seconds: float, echo: Callable[[str], None] = print) -> tuple[list[dict], Path]:
    """Re-runs the top-k configurations on `seeds` fresh seeds (never the search's) with test evaluation, as the
    ordinary study `<search>-confirm`; returns the confirmation rows and that study's runs.csv."""
    from benchbench.runner import Queue, work, write_results
    from benchbench.study import Study

    trials = confirm_configs(study, k)
    if not trials:
        raise RuntimeError(f"search {search.name} has no complete trial to confirm (all pruned or failed)")
    fresh = [search.base.seed + 1 + i for i in range(seeds)]
    cells = tuple(dataclasses.replace(RunConfig.from_resolved(t.user_attrs["config"]), seed=s)
                  for t in trials for s in fresh)
    confirmation = Study(name=f"{search.name}-confirm", path=Path(search.name), cells=cells, tracking=tracking,
                         description=f"top {k} of search {search.name} on seeds {fresh}")
    queue = Queue(confirmation, url, heartbeat_seconds=heartbeat_seconds)
    queue.start()
    echo(f"confirming the top {len(trials)} configurations on seeds {fresh}: {len(queue.keys)} runs")
    work(queue, runs_dir=out.parent / confirmation.name / "runs", data_dir=data_dir, tracking=tracking, echo=echo)
    final = queue.cells()
    runs_csv = write_results(confirmation, final, out.parent / confirmation.name)
    rows = confirmation_rows(trials, final)
    write_rows(rows, out / "confirm.csv")
    return rows, runs_csv


def tune_study(study, url: str, *, out: Path, data_dir: str | None, heartbeat_seconds: float,
               echo: Callable[[str], None] = print):
    """Tune-then-compare: runs (or joins, as one more worker, or just reads once finished) the search of every
    (model, dataset) of a study with a [tune] table, on the study's first seed, and returns the study with each
    cell's configuration replaced by its search's best. Trials keep their runs apart from the cells' runs."""
    from benchbench.space import space_for

    spec = study.tune
    best: dict[tuple[str, str], dict] = {}
    for cell in study.cells:
        key = (cell.model, cell.dataset)
        if key in best:
            continue
        base = dataclasses.replace(cell, epochs=spec.epochs or cell.epochs)
        search = Search(name=f"{study.name}-tune-{cell.model}-{cell.dataset}", base=base,
                        space=space_for(cell.model, spec.space.get(cell.model, {})), trials=spec.trials,
                        pruner=spec.pruner)
        storage, optuna_study = open_search(search, url, heartbeat_seconds=heartbeat_seconds)
        search_worker(search, storage, optuna_study, runs_dir=out / "tune-runs", data_dir=data_dir,
                      tracking=study.tracking, deadline=None, echo=echo)
        complete = confirm_configs(optuna_study, 1)
        if not complete:
            raise RuntimeError(f"search {search.name} found no complete trial; widen its space or add trials")
        best[key] = complete[0].params
        echo(f"tuned    {cell.model} {cell.dataset}: best val top-1 {100 * complete[0].value:.1f}% with "
             + ", ".join(f"{k}={_short(v)}" for k, v in complete[0].params.items()))
    cells = tuple(with_overrides(cell, best[(cell.model, cell.dataset)]) for cell in study.cells)
    return dataclasses.replace(study, cells=cells)
