"""Studies on a real one-node SLURM cluster (tests/support/slurm.py) with a PostgreSQL storage: a job array of
workers joined by name, `scancel` mid-cell, `benchbench status`, and the refusals that must come before anything
is queued or submitted."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from benchbench.storage import sqlite_url
from benchbench.study.queue import Queue
from support.cli import main, start_cli
from support.env import scrubbed_env, use_env
from support.slurm import SlurmCluster, missing
from support.studies import write_study

pytestmark = pytest.mark.skipif(bool(missing()), reason=f"SLURM is not installed ({', '.join(missing())} missing): "
                                "`make test-deps` (as root) installs Debian's slurmctld, slurmd, slurm-client, munge")

EPOCHS = 6
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def cluster():
    with SlurmCluster() as running:
        yield running


def study_file(directory: Path, name: str) -> Path:
    # Cells of ~1 s epochs: long enough to be cancelled mid-cell after a checkpoint, short enough for the suite.
    return write_study(directory, name, datasets=["digits"], models=["vit_tiny"], seeds=list(SEEDS), epochs=EPOCHS,
                       batch_size=64, image_size=16, overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 4}},
                       tracking="none")


def cluster_env(cluster: SlurmCluster, tmp_path: Path, url: str | None = None) -> dict[str, str]:
    return scrubbed_env(tmp_path, SLURM_CONF=cluster.env["SLURM_CONF"], PATH=cluster.env["PATH"],
                        **({"BENCHBENCH_STORAGE": url} if url else {}))


def wait_for(condition, what: str, timeout: float = 240, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
    return found


@pytest.mark.slow
def test_a_job_array_runs_each_cell_once_equal_to_a_local_run_and_a_scancelled_cell_resumes_elsewhere(
        cluster, postgres_url, tmp_path, capsys, monkeypatch):
    name = "cluster-array"
    study = study_file(tmp_path, name)
    env = cluster_env(cluster, tmp_path, postgres_url)
    out = tmp_path / "out"
    started = time.monotonic()
    launcher = start_cli("study", study, "--launcher", "slurm", "--workers", "2", "--out", out, "--report-dir",
                         "none", "--heartbeat", "2", "--wait", env=env)
    queue = wait_for(lambda: _joined(postgres_url, name), "the study in the storage")
    running = wait_for(lambda: len(cells := [(i, t) for i, t in queue.running() if "worker" in t.user_attrs]) == 2
                       and cells, "both tasks training")
    job = running[0][1].user_attrs["worker"]["slurm_job"]
    use_env(monkeypatch, env)
    code, shown, err = main(["status", name], capsys)  # in this process: quick, while both cells train
    assert code == 0, err
    rows = re.findall(rf"vit_tiny digits seed \d +{socket.gethostname()} +\d+ +({job}_[01]) +\d+ s ago +\d/{EPOCHS}",
                      shown)
    assert rows and len(rows) == len(set(rows)), shown  # a cell may have finished since: at least one row

    # A cell past its second checkpoint, far enough from its end to still be training when the signal lands.
    victim = wait_for(lambda: next((t for _, t in queue.running() if 2 <= (t.user_attrs.get("epoch") or 0) <= 3),
                                   None), "a cell at epoch 2-3", poll=0.1)
    worker = victim.user_attrs["worker"]
    cluster.run("scancel", f"{worker['slurm_job']}_{worker['slurm_task']}")
    output = launcher.communicate(timeout=300)[0]  # --wait: until the study ends, then the results
    print(f"cluster study: {time.monotonic() - started:.1f} s")
    assert launcher.returncode == 0, output[-3000:]
    assert "submitted SLURM job array" in output and "benchbench status" in output and "2 done" in output
    assert postgres_url.split(":")[2].split("@")[0] not in output  # the password

    trials = queue.optuna.get_trials()
    for cell in queue.keys:  # every cell completed exactly once
        assert sum(t.state == TrialState.COMPLETE and t.user_attrs["cell"] == cell for t in trials) == 1
    mine = [t for t in trials if t.user_attrs["cell"] == victim.user_attrs["cell"]]
    assert [(t.state, t.user_attrs.get("error")) for t in mine] == [(TrialState.FAIL, "interrupted"),
                                                                     (TrialState.COMPLETE, None)]
    assert mine[1].user_attrs["worker"]["slurm_task"] != worker["slurm_task"]  # finished by the other task ...
    other_log = next((out / name / "slurm").glob(f"*_{mine[1].user_attrs['worker']['slurm_task']}/*_log.out"))
    assert "resuming after epoch" in other_log.read_text()  # ... from the cancelled task's checkpoint
    record = json.loads(next((out / name / "runs").glob("*/run.json")).read_text())
    assert record["environment"]["slurm_job"].startswith(worker["slurm_job"] + "_")

    # The results equal a study run here alone.
    local = tmp_path / "local"
    code, _, err = main(["study", study, "--storage", sqlite_url(tmp_path / "local.db"), "--out", local,
                         "--report-dir", "none"], capsys)
    assert code == 0, err
    print(f"with the local run: {time.monotonic() - started:.1f} s")
    columns = ["model", "seed", "status", "test_top1", "test_nll", "best_val_top1"]
    on_cluster, here = (pd.read_csv(folder / name / "runs.csv")[columns].sort_values("seed").reset_index(drop=True)
                        for folder in (out, local))
    pd.testing.assert_frame_equal(on_cluster, here)


def _joined(url: str, name: str) -> Queue | None:
    try:
        return Queue.join(url, name)
    except ValueError:  # not started yet
        return None


def test_bad_input_is_one_line_and_submits_nothing(cluster, postgres_url, tmp_path, capsys, monkeypatch):
    study = study_file(tmp_path, "cluster-refusals")
    use_env(monkeypatch, cluster_env(cluster, tmp_path))
    jobs = cluster.run("squeue", "-h", "-o", "%i")
    cases = [
        (["--storage", postgres_url, "--partition", "gpu-nope"], 2, "SLURM has no partition 'gpu-nope' (partitions: "
         f"{cluster.partition})"),
        (["--storage", sqlite_url(tmp_path / "s.db")], 2, "--launcher slurm needs a PostgreSQL storage"),
        (["--storage", "postgresql://bench:pw@127.0.0.1:9/nowhere"], 1, "cannot open storage"),
        (["--storage", postgres_url, "--slurm", "mem"], 2, "--slurm 'mem' must be KEY=VALUE"),
    ]
    for flags, code, message in cases:
        status, _, err = main(["study", study, "--launcher", "slurm", "--workers", "2", "--out", tmp_path / "out",
                               *flags], capsys)
        assert (status, err.count("\n")) == (code, 1) and message in err and ":pw@" not in err, err
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    status, _, err = main(["study", study, "--launcher", "slurm", "--storage", postgres_url], capsys)
    assert status == 1 and err.count("\n") == 1 and "SLURM is not installed here (no sbatch on PATH)" in err, err
    assert cluster.run("squeue", "-h", "-o", "%i") == jobs  # nothing submitted
    with pytest.raises(ValueError, match="no study named 'cluster-refusals'"):  # and nothing queued
        Queue.join(postgres_url, "cluster-refusals")
    assert not (tmp_path / "out").exists()
