"""`benchbench study FILE --dry-run`: what the study would run and where its results would go, from the
checked study file alone: nothing is trained, queued or written (the storage is not even opened)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchbench.study.file import Study

PROTOCOLS = {
    "recipe": "every model trains with the same recipe (epochs, batch, optimizer, augmentation)",
    "tuned": "each model's hyperparameters are searched on a seed no reported cell uses, then its cells run with "
             "the best configuration found",
    "flops": "every model gets the same training TFLOPs: epochs derived per model",
    "seconds": "every model gets the same training seconds on this machine: epochs derived per model from its step "
               "time, measured when the study starts",
}

COSTS = {"fresh_process": "measured in a fresh process per model configuration", "in_run": "measured in each run"}


def plan_lines(study: Study, *, out: Path, url: str, report_dir: str, workers: str,
               data_present: Callable[[str], bool]) -> list[str]:
    from tabulate import tabulate

    datasets = sorted({c.dataset for c in study.cells})
    models = list(dict.fromkeys(c.model for c in study.cells))
    seeds = sorted({c.seed for c in study.cells})
    count = lambda n, what: f"{n} {what}{'' if n == 1 else 's'}"
    lines = [f"study {study.name} ({study.path}): {count(len(study.cells), 'cell')} = "
             f"{count(len(datasets), 'data set')} x {count(len(models), 'model')} x {count(len(seeds), 'seed')} "
             f"({', '.join(map(str, seeds))})",
             f"protocol {study.protocol}: {PROTOCOLS.get(study.protocol, study.protocol)}"]
    if study.budget_tflops or study.budget_seconds:
        lines.append(f"budget: {study.budget_tflops or study.budget_seconds} "
                     f"{'TFLOPs' if study.budget_tflops else 'seconds'} of training per run")
    if study.tune:
        lines.append(f"search: {study.tune.trials} trials per model and data set, seed {study.tune.seed}, pruner "
                     f"{study.tune.pruner}")
    for model, deviation in study.deviations.items():
        lines.append(f"deviation: {model} {deviation['fields']} ({deviation['reason']})")
    rows = {}
    for c in study.cells:
        key = (c.dataset, c.model)
        epochs = "derived" if study.protocol == "seconds" else c.epochs
        rows.setdefault(key, {"dataset": c.dataset, "model": c.model, "seeds": 0, "epochs": epochs,
                              "batch": c.batch_size, "image px": c.image_size or "data set's",
                              "precision": c.precision,
                              "model options": ", ".join(f"{k}={v}" for k, v in c.model_args)})
        rows[key]["seeds"] += 1
    lines += tabulate(list(rows.values()), headers="keys", disable_numparse=True).splitlines()
    ready = [f"{d} ready" if data_present(d) else f"{d} not prepared (benchbench data download {d})" for d in datasets]
    lines += [f"data:    {'; '.join(ready)}",
              f"storage: {url} (the queue, shared by the workers)",
              f"workers: {workers}; tracking: {study.tracking}; costs (FLOPs, inference speed): {COSTS[study.costs]}",
              f"results: {out}/ (runs.csv, records.jsonl, runs/<run id>/run.json)",
              "report:  " + (f"{report_dir}/{study.name}/leaderboard.md and figures" if report_dir != "none" else
                             "none (--report-dir none)"),
              "nothing was run or written (--dry-run)"]
    return lines
