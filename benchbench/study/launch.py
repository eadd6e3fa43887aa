"""`benchbench study FILE`: load the study, queue its cells, run them with local workers (or submit them as a
SLURM job array: study/slurm.py), write the results and the report, and say what happened. Workers join the
study by name (`benchbench worker`); in a tune-then-compare study, local worker processes run `run_study` with
`worker=True` to share the searches first."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchbench import console, io
from benchbench.storage import STORAGE_ENV, dashboard_hint, display_url, sqlite_url
from benchbench.study import efficiency
from benchbench.study.file import Study, load_study
from benchbench.study.queue import Cell, Queue, pinned
from benchbench.study.results import write_results
from benchbench.study.workers import run_workers, status_line, without_storage, work, worker_argv

STATUS_ORDER = ("done", "running", "queued", "failed", "new")


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """The `benchbench study` command line (see its --help)."""

    file: str
    out: str = "results"
    storage: str | None = None
    data_dir: str | None = None
    tracking: str | None = None  # None: the study file's [tracking] backend
    workers: int = 1
    heartbeat: float = 10
    max_retries: int = 2
    report_dir: str = "reports"  # "none": no report
    worker: bool = False  # one of `--workers N` local processes sharing a [tune] study's searches
    argv: tuple[str, ...] = ()  # the command line, which those processes run again
    slurm: object | None = None  # study/slurm.py's SlurmOptions: submit the workers as a SLURM job array
    wait: bool = False  # with slurm: follow the study until it ends, then write the results and report
    quiet: bool = False  # no line per cell start and per epoch
    dry_run: bool = False  # only say what would run and where results would go (study/plan.py)


def run_study(opts: StudyOptions, echo: Callable[[str], None] = print) -> None:
    """Runs the study to the end (or joins it as a worker). Raises RuntimeError when cells did not finish."""
    from benchbench.data import get_dataset, resolve_data_dir

    study = load_study(opts.file, check_models=not opts.worker)
    _refuse(study, opts)
    data_dir = resolve_data_dir(opts.data_dir)
    out = Path(opts.out) / study.name
    url = opts.storage or os.environ.get(STORAGE_ENV) or sqlite_url(out / "optuna.db")
    if opts.dry_run:
        _plan(study, opts, out, url, data_dir, echo)
        return
    for dataset in sorted({cell.dataset for cell in study.cells}):
        get_dataset(dataset).require_present(data_dir)  # before anything is queued or written
    if opts.slurm:
        from benchbench.study.slurm import check_cluster

        check_cluster(url, opts.slurm)  # before anything is queued or submitted
    study = dataclasses.replace(study, tracking=opts.tracking or study.tracking)
    if not opts.slurm and not opts.worker and any(cell.precision == "auto" for cell in study.cells):
        _auto_precision(echo)
    if study.protocol == "seconds":
        study = _seconds_matched(study, url, out / "costs", echo)
    run_options = dict(runs_dir=out / "runs", data_dir=data_dir, tracking=study.tracking, quiet=opts.quiet)

    if opts.worker:
        queue = _queue(_tuned(study, opts, url, out, data_dir, echo), opts, url, out)
        queue.start()
        work(queue, **run_options)
        return
    if study.tune and opts.workers > 1:  # the workers share the searches, then the tuned cells
        run_workers([*without_storage(list(opts.argv)), "--worker"], opts.workers, url)
    queue = _queue(_tuned(study, opts, url, out, data_dir, echo), opts, url, out)
    if len(study.cells) >= 200:  # a few storage transactions per cell: say what the wait is for
        echo(f"study {study.name}: {len(study.cells)} cells; queueing them in {display_url(url)}")
    added = queue.start(progress=echo)
    cells = queue.cells()
    echo(f"study {study.name}: {len(cells)} cells, {counts(cells)}; {added} newly queued; "
         f"storage {display_url(url)}")
    print_cells(cells, ("queued", "running", "new", "failed"), echo)
    # Where the time goes, for the cells this command sees finish: from now, over the workers it starts.
    timed = (time.monotonic(), {cell.config.hash() for cell in cells if cell.status != "done"},
             opts.slurm.workers if opts.slurm else opts.workers)
    if opts.slurm:
        if any(cell.status in ("queued", "running") for cell in cells) and not _on_slurm(queue, opts, url, out,
                                                                                         data_dir, echo):
            return
        _finish(queue, opts, url, out, echo, timed=timed)
        return
    try:
        if any(cell.status in ("queued", "running") for cell in cells):
            live = console.live()  # on a terminal: a status line under the output
            if opts.workers == 1:
                work(queue, **run_options, status=console.status if live else None)
            else:
                run_workers(worker_argv(study.name, out / "runs", data_dir, opts.quiet), opts.workers, url,
                            poll=(lambda: status_line(study.name, queue.cells())) if live else None)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers gave their cells back to the queue
        echo(f"study {study.name}: interrupted; writing what finished (start the study again to go on)")
        _finish(queue, opts, url, out, echo, interrupted=True)
        raise
    _finish(queue, opts, url, out, echo, timed=timed)


def _plan(study: Study, opts: StudyOptions, out: Path, url: str, data_dir: str | None,
          echo: Callable[[str], None]) -> None:
    from benchbench.data import DataMissingError, get_dataset
    from benchbench.study.plan import plan_lines

    def present(dataset: str) -> bool:
        try:
            return get_dataset(dataset, data_dir).is_present(data_dir)
        except DataMissingError:
            return False

    workers = f"{opts.slurm.workers} SLURM array tasks" if opts.slurm else f"{opts.workers} local process" + \
        ("es" if opts.workers > 1 else "")
    for line in plan_lines(study, out=out, url=display_url(url), report_dir=opts.report_dir, workers=workers,
                           data_present=present):
        echo(line)


def _refuse(study: Study, opts: StudyOptions) -> None:
    """What this command line cannot do with this study file (ValueError), before anything is written."""
    if study.protocol == "seconds" and opts.slurm:
        raise ValueError(f"{opts.file}: protocol 'seconds' times each model's training steps on the machine that "
                         "runs the study: run it on one machine, with one worker (--workers 1)")
    if study.protocol == "seconds" and opts.workers > 1:
        raise ValueError(f"{opts.file}: protocol 'seconds' gives every model the same seconds of a whole machine, "
                         "timed alone: run it with one worker per machine (--workers 1)")
    if study.tune and opts.slurm:
        raise ValueError(f"{opts.file}: a [tune] study's searches run with local workers (`benchbench study FILE "
                         "--workers N`); the cluster launcher runs plain comparison studies")
    for flag, folder in (("--out", opts.out), ("--report-dir", opts.report_dir)):
        if folder != "none" and Path(folder).exists() and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder} is a file; name a folder")


def _auto_precision(echo: Callable[[str], None]) -> None:
    """What precision "auto" means on this machine, measured before any worker starts (run/precision.py):
    workers probing side by side would time each other. On a cluster the workers measure their own node."""
    from benchbench.run import precision

    if not precision.cache_file().exists():
        echo(f"precision auto: timing bf16 against fp32 on this machine (once; cached in {io.cache_dir()})")
    chosen = precision.choice()
    echo(f"precision auto: {chosen['precision']} here (bf16 trains at {chosen['bf16_speedup']:.2f}x fp32 at worst; "
         f"bf16 needs {chosen['margin']:.2f}x)")


def _seconds_matched(study: Study, url: str, costs_folder: Path, echo: Callable[[str], None]) -> Study:
    """The study with its epochs derived from budget_seconds (study/budget.py). The step times come from the
    storage, where the first process of this study pinned them; configurations none has timed yet are timed now
    (the cost probe, whose files the runs then reuse) and pinned."""
    from benchbench.run import costs
    from benchbench.study.budget import timed

    def time_missing(known: dict) -> dict:
        missing = {costs.key(cell): cell for cell in study.cells if costs.key(cell) not in known}
        for key, cell in missing.items():
            echo(f"study {study.name}: timing {cell.model}'s training steps in a fresh process (protocol 'seconds')")
            known = {**known, key: costs.cached(cell, costs_folder)["train_step_seconds"]}
        return known

    cells, derived = timed(study.cells, study.budget_seconds, pinned(url, study.name, "train_step_seconds",
                                                                     time_missing))
    return dataclasses.replace(study, cells=cells, budget=derived)


def _queue(study: Study, opts: StudyOptions, url: str, out: Path) -> Queue:
    return Queue(study, url, heartbeat_seconds=opts.heartbeat, max_retries=opts.max_retries, results=out)


def _on_slurm(queue: Queue, opts: StudyOptions, url: str, out: Path, data_dir: str | None,
              echo: Callable[[str], None]) -> bool:
    """Submits the workers as a SLURM job array (unless no cell is queued: workers are on them already) and says
    how to follow it; with --wait follows it and returns True (the caller then writes the results), else returns
    False at once."""
    from benchbench.study import slurm

    shown = display_url(url)
    job = None
    if any(cell.status == "queued" for cell in queue.cells()):
        job = slurm.submit(queue.name, url, opts.slurm, results=out, data_dir=data_dir)
        echo(f"study {queue.name}: submitted SLURM job array {job} ({opts.slurm.workers} workers); "
             f"logs in {out / 'slurm'}/{job}_<task>/")
    else:
        echo(f"study {queue.name}: nothing to submit, every cell left is running on a worker already")
    echo(f"follow:  benchbench status {queue.name} --storage '{shown}'" + (f"   (or: squeue -j {job})" if job else ""))
    if not opts.wait:
        echo(f"results: once every cell is done, `benchbench study {opts.file} --storage '{shown}'` writes the "
             "results and the report (it runs nothing that is done)")
        return False

    def progress() -> tuple[str, bool]:
        cells = queue.cells()
        return (f"study {queue.name}: {counts(cells)}",
                not any(cell.status in ("queued", "running") for cell in cells))

    slurm.follow(job, progress, echo)
    return True


def _tuned(study: Study, opts: StudyOptions, url: str, out: Path, data_dir: str | None,
           echo: Callable[[str], None]) -> Study:
    """Tune-then-compare: with a [tune] table, the searches' best configurations become the cells."""
    if not study.tune:
        return study
    from benchbench.tune.search import tune_study

    return tune_study(study, url, out=out, data_dir=data_dir, heartbeat_seconds=opts.heartbeat, echo=echo)


def _finish(queue: Queue, opts: StudyOptions, url: str, out: Path, echo: Callable[[str], None],
            interrupted: bool = False, timed: tuple | None = None) -> None:
    """Writes the results (and the report), prints where everything is and where the time went (`timed`: when
    the cells started, which were not done then, and how many workers ran them), and fails if cells did not
    finish (unless `interrupted`: then the interruption is what the command reports)."""
    study, cells = queue.study, queue.cells()
    spent = _time_spent(cells, timed)
    path = write_results(study, cells, out)
    echo(f"study {study.name}: {counts(cells)}")
    print_cells(cells, STATUS_ORDER, echo)
    if spent:
        efficiency.write(out, spent)
        echo(efficiency.summary_line(spent))
    echo(f"results: {path} (one row per cell), {out / 'records.jsonl'} (full records with histories)")
    echo(f"runs:    {out / 'runs'}/<run id>/run.json")
    if study.tracking == "wandb":
        echo(f"W&B:     group {study.name!r}; run files under {out / 'runs'}/<run id>/wandb/ "
             f"(offline runs, the report's included, upload with: benchbench sync {out})")
    echo(f"storage: {display_url(url)} (browse it with: {dashboard_hint(url)})")
    if opts.report_dir != "none":
        from benchbench.report import write_report

        report = write_report(out, opts.report_dir)
        echo(f"report:  {report}")
        if study.tracking == "wandb":
            from benchbench.report import log_to_wandb

            echo(f"W&B:     report run {log_to_wandb(report.parent, out, study.name)} (job type report, group "
                 f"{study.name!r}): the leaderboard tables, figures and a results artifact")
    failed = [cell for cell in cells if cell.status != "done"]
    if failed and not interrupted:
        raise RuntimeError(f"{len(failed)} of {len(cells)} cells did not finish ({failed[0].label}: "
                           f"{failed[0].error or failed[0].status}); start the study again to retry them")


def _time_spent(cells: list[Cell], timed: tuple | None) -> dict | None:
    """study/efficiency.py's account of the cells that finished since `timed` started (None if none did)."""
    if timed is None:
        return None
    started, pending, workers = timed
    records = [cell.record for cell in cells if cell.status == "done" and cell.config.hash() in pending]
    return efficiency.account(records, time.monotonic() - started, workers) if records else None


def counts(cells: list[Cell]) -> str:
    """"3 done, 1 failed": how many cells are in each state."""
    by_status = Counter(cell.status for cell in cells)
    return ", ".join(f"{by_status[s]} {s}" for s in STATUS_ORDER if by_status[s])


def print_cells(cells: list[Cell], order: tuple[str, ...], echo: Callable[[str], None]) -> None:
    """One line per cell, grouped by state in the given order: its result, or its error."""
    for cell in sorted(cells, key=lambda c: order.index(c.status) if c.status in order else len(order)):
        detail = ""
        if cell.record:
            detail = f"test top-1 {100 * cell.record['metrics']['test_top1']:.1f}%  {cell.record['wall_seconds']:.0f} s"
        elif cell.error:
            detail = cell.error
        echo(f"  {cell.status:<8} {cell.label:<40} {cell.config.hash()}  {detail}".rstrip())
