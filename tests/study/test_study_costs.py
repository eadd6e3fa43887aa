"""Clean cost columns: each model configuration's costs measured once, in a fresh process, whatever the worker
that asks for them ran or holds before; the leaderboard shows them and says so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchbench import cli
from benchbench.measure import peak_memory
from benchbench.run import costs
from benchbench.run.config import RunConfig
from support.cli import run_cli
from support.studies import write_study

ONE_BLOCK = {"model.depth": 1, "model.patch_size": 8}


@pytest.mark.slow
def test_seeds_share_one_fresh_process_probe_that_the_leaderboard_shows(tmp_path):
    # This process holds 1.5 GB more than a fresh one would: an in-worker peak would count it, the probe must not.
    ballast = np.ones((1536, 2**20 // 8))
    study = write_study(tmp_path, "costly", datasets=["synthetic"], models=["vit_tiny"], seeds=[0, 1], epochs=1,
                        batch_size=32, image_size=32, tracking="none", costs="fresh_process",
                        overrides={"vit_tiny": ONE_BLOCK})
    assert cli.main(["study", str(study), "--out", str(tmp_path / "results"),
                     "--report-dir", str(tmp_path / "reports")]) == 0
    results = tmp_path / "results" / "costly"
    (probe_file,) = (results / "costs").glob("*.json")  # the two seeds share one configuration, one probe
    probe = json.loads(probe_file.read_text())
    frame = pd.read_csv(results / "runs.csv")
    assert set(frame["costs_key"]) == {probe["key"]} and (frame["host_workers"] == 1).all()
    # The runs took the probe's FLOPs and inference speed instead of measuring them again, and say so.
    assert (frame["gflops"] == probe["gflops"]).all()
    assert (frame["inference_latency_ms"] == probe["inference_latency_ms"]).all()
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    assert {record["costs_source"] for record in records} == {"fresh process"}
    assert all(record["timing_seconds"]["cost_probe"] >= 0 for record in records)
    assert probe["framework_memory_mb"] < probe["peak_memory_mb"] < peak_memory()["peak_memory_mb"] - 1000
    assert probe["inference_latency_ms"] > 0 and probe["inference_images_per_second"] > 0
    assert probe["host_workers"] == 1  # this worker's own cell: nothing else shared the machine
    board = pd.read_csv(tmp_path / "reports" / "costly" / "leaderboard.csv")
    assert board.loc[0, "costs_source"] == "fresh process"
    assert board.loc[0, "peak_memory_mb"] == pytest.approx(probe["peak_memory_mb"])
    assert board.loc[0, "inference_latency_ms"] == pytest.approx(probe["inference_latency_ms"])
    markdown = (tmp_path / "reports" / "costly" / "leaderboard.md").read_text()
    assert "measured once per model configuration in a fresh process" in markdown
    (row,) = [line for line in markdown.splitlines() if line.startswith("|") and "`vit_tiny`" in line]
    assert "†" not in row  # † marks a cost measured inside the worker
    del ballast


@pytest.mark.slow
def test_local_workers_measure_each_configuration_in_its_first_cell_run_by_a_fresh_process(tmp_path):
    """With --workers 2, no probe process: a configuration's first cell runs in a fresh worker process (a worker
    that ran another cell starts again, keeping its claim) and its record becomes the costs file."""
    small = {"vit_tiny": ONE_BLOCK, "shiftvit_t_light": {"model.embed_dim": 24, "model.depths": [1, 1]},
             "resnet20": {"model.depth": 8}}
    study = write_study(tmp_path, "fresh", datasets=["synthetic"], models=list(small), seeds=[0], epochs=1,
                        batch_size=32, image_size=32, tracking="none", costs="fresh_process", overrides=small)
    result = run_cli("study", str(study), "--workers", "2", "--out", str(tmp_path / "results"),
                     "--report-dir", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    results = tmp_path / "results" / "fresh"
    measured = {path.stem: json.loads(path.read_text()) for path in (results / "costs").glob("*.json")}
    assert len(measured) == 3 and all(c["measured_in"].startswith("the configuration's first cell")
                                      for c in measured.values())
    # The two workers start in fresh processes with the first two models; the first to finish starts again for
    # the third.
    assert result.stdout.count("its first cell runs in a fresh worker process") == 1, result.stdout
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["timing_seconds"]["cost_probe"] < 0.5 for r in records)
    assert {r["costs_source"] for r in records} == {"fresh process"}
    for record in records:  # every cell's FLOPs are its configuration's measured ones
        cost = measured[costs.key(RunConfig.from_resolved(record["config"]))]
        assert record["gflops"] == pytest.approx(cost["gflops"]) and cost["peak_memory_mb"] > 0
    board = pd.read_csv(tmp_path / "reports" / "fresh" / "leaderboard.csv")
    assert set(board["costs_source"]) == {"fresh process"}


def test_a_cell_whose_configuration_another_worker_measures_runs_here_without_a_probe(tmp_path, monkeypatch):
    """Neither a restart nor a probe: the measuring cell's costs file serves the report."""
    from benchbench.storage import sqlite_url
    from benchbench.study import workers
    from benchbench.study.file import Study
    from benchbench.study.queue import Queue

    cells = tuple(RunConfig("vit_tiny", "synthetic", seed=seed) for seed in (0, 1))
    queue = Queue(Study("measuring", None, cells, tracking="none", costs="fresh_process"),
                  sqlite_url(tmp_path / "q.db"), results=tmp_path)
    queue.start()
    measuring, _ = queue.claim()  # another worker's first cell, measuring its configuration
    queue.mark_measuring(measuring, cells[0])
    ran = []
    monkeypatch.setattr(workers, "_run_cell", lambda *args, **kwargs: ran.append(kwargs))
    claims = iter([queue.claim(), None])
    monkeypatch.setattr(workers, "_next_cell", lambda *args, **kwargs: next(claims))

    def restart(trial_id):
        raise AssertionError("restarted")

    workers.work(queue, runs_dir=tmp_path / "runs", data_dir=None, tracking="none", echo=print, restart=restart,
                 claimed=None)
    assert [(kwargs["measure_costs"], kwargs["probe"]) for kwargs in ran] == [(False, False)]


def test_the_costs_key_ignores_what_cannot_change_the_costs():
    base = RunConfig("vit_tiny", "digits", batch_size=32, image_size=32, model_args=(("depth", 1),))
    same = RunConfig("vit_tiny", "digits", batch_size=32, image_size=32, model_args=(("depth", 1),), seed=3,
                     epochs=7, learning_rate=0.1)
    assert costs.key(base) == costs.key(same)
    for other in (RunConfig("vit_tiny", "digits", batch_size=64, image_size=32, model_args=(("depth", 1),)),
                  RunConfig("vit_tiny", "digits", batch_size=32, image_size=32, model_args=(("depth", 2),)),
                  RunConfig("vit_tiny", "digits", batch_size=32, image_size=32, model_args=(("depth", 1),),
                            precision="bf16")):
        assert costs.key(other) != costs.key(base)


def test_a_cached_probe_is_read_not_measured_again(tmp_path, monkeypatch):
    config = RunConfig("vit_tiny", "digits", batch_size=32, image_size=32)
    path = tmp_path / f"{costs.key(config)}.json"
    path.write_text(json.dumps({"key": costs.key(config), "params": 1, "train_step_seconds": 0.1}))
    monkeypatch.setattr(costs, "probe", lambda config: pytest.fail("probed again"))
    assert costs.cached(config, tmp_path)["params"] == 1
    # A file from before the probe timed training steps is measured again, and replaced.
    path.write_text(json.dumps({"key": costs.key(config), "params": 1}))
    monkeypatch.setattr(costs, "probe", lambda config: {"key": costs.key(config), "params": 2,
                                                        "train_step_seconds": 0.2})
    assert costs.cached(config, tmp_path)["params"] == 2
    assert json.loads(path.read_text())["train_step_seconds"] == 0.2
    (tmp_path / "broken.json").write_text("{")
    assert list(costs.read_all(tmp_path)) == [costs.key(config)]  # an unreadable file is skipped


def test_a_failed_probe_is_one_warning_line_not_a_failed_cell(tmp_path, monkeypatch):
    from benchbench.study import workers

    config = RunConfig("vit_tiny", "digits", image_size=4)  # too small to build: the child process fails
    with pytest.raises(RuntimeError, match=r"^the cost probe failed: .*image_size must be an integer >= 8"):
        costs.probe(config)
    monkeypatch.setattr(costs, "probe", lambda config: (_ for _ in ()).throw(RuntimeError("the cost probe failed")))
    lines = []
    workers._probe_costs(config, tmp_path, lines.append)  # returns: the cell runs, with the in-run costs
    assert lines == ["warning  vit_tiny: no fresh-process costs (the cost probe failed)"]
    assert list(tmp_path.iterdir()) == []  # nothing half-written
