"""Tune-then-confirm: the top-K configurations of a search re-run on fresh seeds (never the search's), with
test evaluation, as an ordinary study (crash-safe, many workers, runs.csv). Each one's best validation score
during the search is set against its confirmed test top-1 mean and t-interval: the optimism of selecting on
validation (benchbench.stats says what the interval counts and assumes).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from benchbench import io, predictions, stats
from benchbench.run.config import RunConfig
from benchbench.study.file import Study
from benchbench.study.queue import Queue
from benchbench.study.results import write_results
from benchbench.study.workers import work
from benchbench.tune.search import Search, best_trials


def confirmation_rows(trials: list, confirm_cells: list, runs_dir: Path | None = None) -> list[dict]:
    """Per selected configuration: its best validation top-1 in the search, the confirmed test top-1 mean and
    95% half-width over the fresh seeds (counting the test set's sampling error when the runs in `runs_dir`
    saved their predictions; see benchbench.stats), and the gap between the two."""
    rows = []
    for rank, trial in enumerate(trials, start=1):
        base = RunConfig.from_resolved(trial.user_attrs["config"])
        records = [c.record for c in confirm_cells
                   if c.record and dataclasses.replace(c.config, seed=base.seed) == base]
        scores = stats.Scores.of([r["metrics"]["test_top1"] for r in records], _correct(records, runs_dir))
        estimate = stats.accuracy(scores)
        mean, half = (scores.mean if scores.n else None), (estimate.half_width if estimate else None)
        rows.append({"rank": rank, "trial": trial.number, "search_best_val_top1": trial.value,
                     "confirmed_test_top1_mean": mean, "confirmed_test_top1_ci95": half, "seeds": scores.n,
                     "optimism_gap": trial.value - mean if mean is not None else None,
                     "params": json.dumps(trial.params, sort_keys=True)})
    return rows


def _correct(records: list[dict], runs_dir: Path | None):
    """Seeds x test images correctness from the runs' predictions files; None if any is missing."""
    return predictions.correct_by_seed([_load(runs_dir, record) for record in records])


def _load(runs_dir: Path | None, record: dict) -> dict | None:
    try:
        return predictions.load(runs_dir / record["run_id"] / record["predictions"])
    except (TypeError, KeyError, OSError, ValueError):  # no runs_dir, no predictions file, unreadable
        return None


def write_rows(rows: list[dict], path: Path) -> None:
    import pandas as pd

    io.write_csv(path, pd.DataFrame(rows))


def confirm(search: Search, study, *, k: int, seeds: int, url: str, out: Path, data_dir: str | None, tracking: str,
            heartbeat_seconds: float, echo: Callable[[str], None] = print) -> tuple[list[dict], Path]:
    """Re-runs the top-k configurations on `seeds` fresh seeds (never the search's) with test evaluation, as the
    ordinary study `<search>-confirm`; returns the confirmation rows and that study's runs.csv."""
    trials = best_trials(study, k)
    if not trials:
        raise RuntimeError(f"search {search.name} has no complete trial to confirm (all pruned or failed)")
    fresh = [search.base.seed + 1 + i for i in range(seeds)]
    cells = tuple(dataclasses.replace(RunConfig.from_resolved(t.user_attrs["config"]), seed=s)
                  for t in trials for s in fresh)
    confirmation = Study(name=f"{search.name}-confirm", path=None, cells=cells, tracking=tracking,
                         description=f"top {k} of search {search.name} on seeds {fresh}")
    queue = Queue(confirmation, url, heartbeat_seconds=heartbeat_seconds, results=out.parent / confirmation.name,
                  job_type="confirm")
    queue.start()
    echo(f"confirming the top {len(trials)} configurations on seeds {fresh}: {len(queue.keys)} runs")
    work(queue, runs_dir=out.parent / confirmation.name / "runs", data_dir=data_dir, tracking=tracking, echo=echo)
    final = queue.cells()
    runs_csv = write_results(confirmation, final, out.parent / confirmation.name)
    rows = confirmation_rows(trials, final, out.parent / confirmation.name / "runs")
    write_rows(rows, out / "confirm.csv")
    return rows, runs_csv
