"""A study's results files: runs.csv (one row per cell), records.jsonl (full records) and study.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchbench import io
from benchbench.study.file import Study
from benchbench.study.queue import Cell

COLUMNS = ["study", "model", "family", "dataset", "seed", "status", "test_top1", "test_top5", "test_nll", "test_ece",
           "test_brier", "best_val_top1",
           "params", "gflops", "train_images_per_second", "host_workers", "inference_latency_ms",
           "inference_images_per_second", "peak_memory_mb", "wall_seconds",
           "epochs", "image_size", "config_hash", "costs_key", "run_id", "error"]


def row(study: str, cell: Cell) -> dict:
    """One runs.csv row: the cell's identity, state and, when done, its measured results."""
    from benchbench.models import model_info
    from benchbench.run import costs

    config = cell.config
    values = {"study": study, "model": config.model, "family": model_info(config.model).family,
              "dataset": config.dataset, "seed": config.seed, "status": cell.status, "epochs": config.epochs,
              "costs_key": costs.key(config), "error": cell.error}
    if not cell.record:
        values.update(config_hash=config.hash(), run_id=config.run_name())
    record = cell.record
    if record:
        # The run's directory (a single run's -rerunK too), and its hash as trained (starting weights since moved
        # or changed would give another).
        values.update(run_id=record["run_id"], config_hash=record["config_hash"])
        metrics = record["metrics"]
        values.update({key: metrics.get(key) for key in ("test_top1", "test_top5", "test_nll", "test_ece", "test_brier",
                                                         "best_val_top1")})
        values.update({key: record.get(key) for key in ("params", "gflops", "train_images_per_second", "host_workers",
                                                        "inference_latency_ms", "inference_images_per_second",
                                                        "peak_memory_mb", "wall_seconds")})
        values["image_size"] = record["resolved"]["image_size"]
    return {column: values.get(column) for column in COLUMNS}


def write_results(study: Study, cells: list[Cell], directory: Path) -> Path:
    """Writes runs.csv (one row per cell), records.jsonl (the full records, with histories) and study.json (what
    the report's header says about the protocol), each atomically."""
    import pandas as pd

    frame = pd.DataFrame([row(study.name, cell) for cell in cells], columns=COLUMNS)
    path = io.write_csv(directory / "runs.csv", frame)
    io.write_text(directory / "records.jsonl",
                  "".join(json.dumps({"study": study.name, **cell.record}) + "\n" for cell in cells if cell.record))
    if study.path is not None:
        _remember(study.path, directory)
    io.write_json(directory / "study.json",
                  {"name": study.name, "description": study.description,
                   "file": str(study.path) if study.path else None, "tuned": study.tune is not None,
                   "tune": _tuning(study), "protocol": study.protocol, "deviations": study.deviations,
                   "target_val_top1": study.target_val_top1, "budget_tflops": study.budget_tflops,
                   "budget_seconds": study.budget_seconds, "budget": study.budget, "cells": len(cells),
                   "tracking": study.tracking})
    return path


def written_to(study_file: str | Path) -> Path | None:
    """Where a study file's results were last written on this machine (`benchbench report FILE.toml` reads them
    there, whatever --out the study ran with), or None."""
    try:
        return Path(json.loads(_pointer(study_file).read_text())["results"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember(study_file: Path, directory: Path) -> None:
    try:
        io.write_json(_pointer(study_file), {"file": str(Path(study_file).resolve()),
                                             "results": str(Path(directory).resolve())})
    except OSError:
        pass  # a read-only cache: `report FILE.toml` then looks in results/<name>, or takes the folder itself


def _pointer(study_file: str | Path) -> Path:
    digest = hashlib.sha256(str(Path(study_file).resolve()).encode()).hexdigest()[:16]
    return io.cache_dir() / "studies" / f"{digest}.json"


def _tuning(study: Study) -> dict | None:
    """What the leaderboard header says about the searches: budget, trial epochs, pruner and search seed."""
    if study.tune is None:
        return None
    return {"trials": study.tune.trials, "epochs": study.tune.epochs, "pruner": study.tune.pruner,
            "seed": study.tune.seed}
