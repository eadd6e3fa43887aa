"""`benchbench status STUDY`: how far a study is, read from its storage alone (any machine, no study file needed):
cells per state, and per running cell its worker, SLURM job and task, heartbeat age and epoch. Read-only: a
study that was never started is reported, not created."""

from __future__ import annotations

import os
from pathlib import Path

from benchbench.storage import STORAGE_ENV, display_url, heartbeat_ages, sqlite_url
from benchbench.study.queue import Queue, worker_host


def locate(target: str, storage: str | None, out: str) -> tuple[str, str]:
    """(study name, storage URL) from a study file or a study name, as `benchbench study` would find them."""
    url = storage or os.environ.get(STORAGE_ENV)
    if target.endswith(".toml") or Path(target).is_file():
        from benchbench.study.file import load_study

        name = load_study(target, check_models=False).name
        if url is None:
            database = Path(out) / name / "optuna.db"
            if not database.exists():
                raise ValueError(f"study {name} has not started: no storage at {database} (pass --storage URL if "
                                 "it runs on a shared database)")
            url = sqlite_url(database)
        return name, url
    if url is None:
        raise ValueError(f"status {target}: a study name needs --storage URL (or ${STORAGE_ENV}); or pass the study "
                         "file")
    return target, url


def status_lines(name: str, url: str, fmt: str = "simple") -> list[str]:
    """The report `benchbench status` prints."""
    from tabulate import tabulate

    from benchbench.study.launch import counts

    queue = Queue.join(url, name)
    cells = queue.cells()
    lines = [f"study {name}: {len(cells)} cells, {counts(cells)}; storage {display_url(url)}"]
    running = queue.running()
    if running:
        ages = heartbeat_ages(queue.storage, [trial_id for trial_id, _ in running])
        rows = [_running_row(t, queue.keys[t.user_attrs["cell"]], ages.get(i)) for i, t in running]
        lines += ["", tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True)]
    failed = [cell for cell in cells if cell.status == "failed"]
    if failed:
        lines += ["", tabulate([{"failed cell": c.label, "error": c.error or ""} for c in failed], headers="keys",
                               tablefmt=fmt, disable_numparse=True)]
    return lines


def _running_row(trial, config, age: float | None) -> dict:
    worker = trial.user_attrs.get("worker") or {}
    slurm = ""
    if isinstance(worker, dict) and worker.get("slurm_job"):
        slurm = worker["slurm_job"] + (f"_{worker['slurm_task']}" if "slurm_task" in worker else "")
    epoch = trial.user_attrs.get("epoch")
    return {"running cell": f"{config.model} {config.dataset} seed {config.seed}",
            "host": worker_host(worker) or "?",
            "pid": str(worker.get("pid", "")) if isinstance(worker, dict) else str(worker).rsplit(":", 1)[-1],
            "slurm job_task": slurm or "-",
            "heartbeat": "-" if age is None else f"{age:.0f} s ago",
            "epoch": f"{epoch or 0}/{config.epochs}"}
