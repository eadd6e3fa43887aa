"""Workers that finish one study at the same moment each write its results and report: every one exits 0 and
what they publish is complete (unique temporary names, whole-file and whole-folder renames)."""

from __future__ import annotations

import json
import multiprocessing

import pandas as pd
import pytest

from support.cli import start_cli
from support.env import scrubbed_env
from support.studies import write_study

WORKERS = 3


def assert_complete(results, reports, name: str, cells: int) -> None:
    frame = pd.read_csv(results / name / "runs.csv")
    assert len(frame) == cells and set(frame["status"]) == {"done"}
    records = [json.loads(line) for line in (results / name / "records.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in records) == sorted(frame["run_id"])
    assert json.loads((results / name / "study.json").read_text())["cells"] == cells
    report = reports / name
    assert (report / "leaderboard.md").read_text().startswith(f"# Leaderboard: {name}")
    assert len(pd.read_csv(report / "leaderboard.csv")) == 1 and len(pd.read_csv(report / "runs.csv")) == cells
    assert sorted(p.name for p in report.glob("*.png")) == [f"{stem}_synthetic.png" for stem in
                                                            ("accuracy_vs_params", "accuracy_vs_throughput",
                                                             "learning_curves", "reliability", "seeds")]
    leftovers = [p for folder in (results, reports) for p in folder.rglob(".tmp*")]
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_finishing_together_all_exit_0_with_complete_results(backend, tmp_path, request):
    """One cell per worker, all alike: they finish within a poll of each other, then all write runs.csv,
    records.jsonl and the report into the same folders at once (which used to crash all but one)."""
    name = f"together_{backend}"
    study = write_study(tmp_path, name, datasets=["synthetic"], models=["vit_tiny"], seeds=list(range(WORKERS)),
                        epochs=1, batch_size=32, image_size=32, tracking="none",
                        overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 8}})
    extra = {"TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if backend == "postgres":
        extra["BENCHBENCH_STORAGE"] = request.getfixturevalue("postgres_url")
    env = scrubbed_env(**extra)
    results, reports = tmp_path / "results", tmp_path / "reports"
    workers = [start_cli("study", study, "--out", results, "--report-dir", reports, "--heartbeat", "1", env=env)
               for _ in range(WORKERS)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    claims = [line for output in outputs for line in output.splitlines() if line.startswith("running  ")]
    assert len(claims) == WORKERS  # each cell ran once
    assert_complete(results, reports, name, WORKERS)


def _publish(folder: str, go, results) -> None:
    from pathlib import Path

    from benchbench import io

    go.wait()
    for round in range(20):
        with io.atomic_dir(Path(folder) / "report") as tmp:
            for i in range(5):
                (tmp / f"part{i}.txt").write_text(f"{round}\n" * 1000)
        io.write_text(Path(folder) / "runs.csv", f"{round}\n" * 1000)
    results.put("ok")


def test_concurrent_atomic_writes_publish_whole_files_and_folders(tmp_path):
    """Four processes released together replace one folder and one file 20 times each: every write succeeds,
    and what remains is one writer's complete output, with no temporary left behind."""
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    processes = [context.Process(target=_publish, args=(str(tmp_path), go, results)) for _ in range(4)]
    for process in processes:
        process.start()
    go.set()
    assert [results.get(timeout=120) for _ in processes] == ["ok"] * 4
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    parts = [(tmp_path / "report" / f"part{i}.txt").read_text() for i in range(5)]
    assert len(set(parts)) == 1 and parts[0].count("\n") == 1000  # one writer's round, whole
    assert (tmp_path / "runs.csv").read_text().count("\n") == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs.csv"]
