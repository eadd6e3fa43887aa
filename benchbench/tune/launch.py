"""`benchbench tune`: build the search from the command line, run it with local workers (or join it as one),
print its outcome, and confirm the best configurations on fresh seeds."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from benchbench.registry import short
from benchbench.run.config import RunConfig, apply_sets, check_model, dataset_slug, validate, with_overrides
from benchbench.storage import STORAGE_ENV, dashboard_hint, display_url, sqlite_url
from benchbench.study.file import NAME
from benchbench.tune.search import Search, counts, format_params, open_search, search_worker
from benchbench.tune.space import describe, parse_space_option, search_space


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """The `benchbench tune` command line (see its --help)."""

    model: str
    dataset: str
    trials: int
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    seed: int = 0
    storage: str | None = None
    study_name: str | None = None
    timeout: float | None = None
    workers: int = 1
    pruner: str = "median"
    confirm: int = 0
    confirm_seeds: int = 3
    space: tuple[str, ...] = ()
    set: tuple[str, ...] = ()
    out: str = "results"
    data_dir: str | None = None
    tracking: str = "wandb"
    heartbeat: float = 10
    worker: bool = False
    argv: tuple[str, ...] = ()


def build_search(opts: SearchOptions) -> Search:
    """The search the options describe; what the command fixes (--set, --batch-size, ...) leaves the family's
    space unless --space names it again. Usage mistakes raise ValueError before anything is written."""
    given = {k: getattr(opts, k) for k in ("epochs", "batch_size", "image_size") if getattr(opts, k) is not None}
    base = apply_sets(RunConfig(model=opts.model, dataset=opts.dataset, seed=opts.seed, **given), list(opts.set))
    validate(base)
    check_model(base)
    explicit = dict(parse_space_option(item) for item in opts.space)
    fixed = {k for k in given if k != "epochs"} | {item.partition("=")[0] for item in opts.set}
    space = search_space(opts.model, explicit, fixed)
    for key in explicit:  # every value the user's dimensions can suggest has the right type and range
        for value in space[key].bounds():
            try:
                validate(with_overrides(base, {key: value}))
            except ValueError as error:
                raise ValueError(f"--space {key}: {value!r} is not a valid value: {error}") from None
    name = opts.study_name or f"tune-{opts.model}-{dataset_slug(opts.dataset)}"
    if not NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"--study-name must be letters, digits, '.', '_' or '-', got {short(name)}")
    return Search(name=name, base=base, space=space, trials=opts.trials, pruner=opts.pruner)


def run_search(opts: SearchOptions, echo: Callable[[str], None] = print) -> None:
    """Runs the search to its trial count (or joins it as a worker), then the confirmation if asked."""
    from benchbench.data import get_dataset, resolve_data_dir

    search = build_search(opts)
    data_dir = resolve_data_dir(opts.data_dir)
    get_dataset(opts.dataset).require_present(data_dir)
    out = Path(opts.out) / search.name
    url = opts.storage or os.environ.get(STORAGE_ENV) or sqlite_url(out / "optuna.db")
    storage, study = open_search(search, url, heartbeat_seconds=opts.heartbeat)
    deadline = time.time() + opts.timeout if opts.timeout else None
    options = dict(runs_dir=out / "runs", data_dir=data_dir, tracking=opts.tracking, deadline=deadline)
    if opts.worker:
        search_worker(search, storage, study, **options)
        return
    before = counts(study)
    echo(f"search {search.name}: {opts.model} on {opts.dataset}, {opts.trials} trials of {search.base.epochs} epochs, "
         f"{opts.pruner} pruner, TPE seed {opts.seed}; {before['complete'] + before['pruned']} finished before; "
         f"storage {display_url(url)}")
    echo("space: " + "; ".join(f"{k} {describe(d)}" for k, d in search.space.items()))
    if opts.workers == 1:
        search_worker(search, storage, study, **options)
    else:
        from benchbench.study.workers import run_workers, without_storage

        run_workers([*without_storage(list(opts.argv)), "--worker"], opts.workers, url)
    _print_outcome(search, study, out, url, echo)
    if opts.confirm:
        _confirm(search, study, opts, url=url, out=out, data_dir=data_dir, echo=echo)
    if opts.tracking == "wandb":
        echo(f"W&B:     report run {_log_report(search, study, out)} (job type report, group {search.name!r}): "
             "the trials and confirmation tables and a results artifact")


def _log_report(search: Search, study, out: Path) -> str:
    """The search as a W&B run beside its trials: its trials (Optuna's trials_dataframe, also written to
    trials.csv) and confirmation tables, and both files as an artifact."""
    import pandas as pd

    from benchbench import io
    from benchbench.tracking import log_report

    trials = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    if "duration" in trials:  # a timedelta: seconds, for W&B and the CSV
        trials["duration"] = trials["duration"].dt.total_seconds()
    io.write_csv(out / "trials.csv", trials)
    tables, files = {"trials": trials}, {"trials.csv": out / "trials.csv"}
    if (out / "confirm.csv").exists():
        tables["confirmation"] = pd.read_csv(out / "confirm.csv")
        files["confirm.csv"] = out / "confirm.csv"
    return log_report(out, search.name, tables=tables, images=[], files=files,
                      description=f"trials and confirmation of the search {search.name}")


def _print_outcome(search: Search, study, out: Path, url: str, echo: Callable[[str], None]) -> None:
    n = counts(study)
    best = study.best_trial if n["complete"] else None
    echo(f"search {search.name}: {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed" +
         (f"; best val top-1 {100 * best.value:.1f}% (trial {best.number}: {format_params(best.params)})"
          if best else ""))
    echo(f"trials:  {out / 'runs'}/trial<N>/<run id>/run.json; browse with: {dashboard_hint(url)}")


def _confirm(search: Search, study, opts: SearchOptions, *, url: str, out: Path, data_dir: str | None,
             echo: Callable[[str], None]) -> None:
    from tabulate import tabulate

    from benchbench.tune.confirm import confirm

    rows, runs_csv = confirm(search, study, k=opts.confirm, seeds=opts.confirm_seeds, url=url, out=out,
                             data_dir=data_dir, tracking=opts.tracking, heartbeat_seconds=opts.heartbeat, echo=echo)
    table = [[r["rank"], r["trial"], f"{100 * r['search_best_val_top1']:.1f}",
              _mean_ci(r["confirmed_test_top1_mean"], r["confirmed_test_top1_ci95"], r["seeds"]),
              f"{100 * r['optimism_gap']:+.1f}" if r["optimism_gap"] is not None else "-",
              format_params(json.loads(r["params"]))]
             for r in rows]
    echo(tabulate(table, headers=["rank", "trial", "search best val top-1 %", "confirmed test top-1 %",
                                  "gap (pts)", "params"], disable_numparse=True))
    echo(f"confirmation: {out / 'confirm.csv'}; its runs: {runs_csv}")


def _mean_ci(mean, half, n) -> str:
    if mean is None:
        return "-"
    if half is None:
        return f"{100 * mean:.1f} (n={n}, no interval)"
    return f"{100 * mean:.1f} ± {100 * half:.1f} (n={n})"
