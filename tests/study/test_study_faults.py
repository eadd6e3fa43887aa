"""Studies under faults: bad places to write, a huge study's enqueue, Ctrl-C and SIGTERM to the parent of
local workers, and a disk that fills up mid-study. Each ends in bounded time with one clear line, keeps what
finished, and resumes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from benchbench.run.config import RunConfig
from benchbench.storage import sqlite_url
from benchbench.study import queue as queue_module
from benchbench.study.file import Study
from benchbench.study.queue import Queue
from support.cli import main, start_cli
from support.disk import read_only, resize, small_disk
from support.studies import write_study

ONE_BLOCK = {"model.depth": 1, "model.patch_size": 8}


def small_study(directory: Path, name: str = "faults", epochs: int = 2, seeds=(0, 1)) -> Path:
    return write_study(directory, name, datasets=["synthetic"], models=["vit_tiny"], seeds=list(seeds),
                       epochs=epochs, batch_size=32, image_size=32, overrides={"vit_tiny": ONE_BLOCK},
                       tracking="none")


def test_bad_places_are_refused_before_anything_is_written(tmp_path, capsys):
    study = small_study(tmp_path)
    (tmp_path / "a-file").write_text("")
    for flags, code, message in (
            (["--out", tmp_path / "a-file"], 2, "--out"),
            (["--out", tmp_path / "out", "--report-dir", tmp_path / "a-file"], 2, "--report-dir"),
            (["--out", tmp_path / ("x" * 300)], 1, "File name too long"),
            (["--out", tmp_path / "out", "--storage", "sqlite:///" + str(tmp_path / "a-file" / "db.sqlite")], 1,
             "cannot create the folder")):
        status, _, err = main(["study", study, *flags], capsys)
        assert status == code and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_read_only_out_is_one_line(tmp_path, capsys):
    study = small_study(tmp_path)
    with small_disk(tmp_path / "disk", size_mb=1) as disk:
        read_only(disk)
        status, _, err = main(["study", study, "--out", disk], capsys)
    assert status == 1 and "Read-only file system" in err and err.count("\n") == 1, err


def test_weights_too_big_for_the_disk_are_refused_before_h5py_writes(tmp_path):
    """h5py crashes the whole process when the disk fills under it: the free space is checked first."""
    import benchbench
    from benchbench import io

    model = benchbench.create_model("vit_tiny", num_classes=10, image_size=32, depth=1, patch_size=8)
    with small_disk(tmp_path / "disk", size_mb=1) as disk:
        with pytest.raises(io.DiskFullError, match=r"writing .*w\.weights\.h5 \(1\.0 MiB free\)"):
            io.save_weights(model, disk / "w.weights.h5")
        assert list(disk.iterdir()) == []


def test_a_large_enqueue_says_how_far_it_is(tmp_path, monkeypatch):
    monkeypatch.setattr(queue_module, "PROGRESS_SECONDS", 0.0)
    cells = tuple(RunConfig("vit_tiny", "synthetic", seed=seed) for seed in range(120))
    queue = Queue(Study("big", None, cells, tracking="none"), sqlite_url(tmp_path / "big.db"))
    lines = []
    assert queue.start(progress=lines.append) == 120
    assert len(lines) > 100 and lines[-1] == "queueing cells: 119/120 in the storage"


def test_a_signal_that_comes_back_as_another_error_still_gives_the_cell_back(tmp_path, monkeypatch):
    """TensorFlow's nest flattening can swallow the KeyboardInterrupt a signal raised inside one of its callbacks
    and fail with a ValueError instead (seen in CI: the worker marked its cell failed and trained the next one).
    The worker must stop all the same, giving its cell back as interrupted."""
    from optuna.trial import TrialState

    from benchbench import console
    from benchbench.study import workers

    cell = RunConfig("vit_tiny", "synthetic")
    queue = Queue(Study("swallowed", None, (cell,), tracking="none"), sqlite_url(tmp_path / "q.db"))
    queue.start()
    trial_id, _ = queue.claim()

    def swallowed(*args, **kwargs):
        monkeypatch.setattr(console, "_stopping", signal.SIGINT)  # what the signal handler notes as it raises
        raise ValueError("Could not pack sequence. Structure had 24 atoms, but flat_sequence had 23 items.")

    monkeypatch.setattr(workers, "execute", swallowed)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        workers._run_cell(queue, trial_id, cell, "vit_tiny synthetic seed 0", runs_dir=tmp_path / "runs",
                          data_dir=None, tracking="none", echo=lines.append, say=lines.append, show=None, probe=False)
    trials = queue.optuna.get_trials()
    assert [(t.state, t.user_attrs.get("error")) for t in trials] == [(TrialState.FAIL, "interrupted"),
                                                                      (TrialState.WAITING, None)]
    assert not any(line.startswith("failed") for line in lines), lines


def session_processes(session: int) -> list[int]:
    """Processes still alive in a session (the study and its workers were started in their own)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_parent_stops_every_worker_and_writes_what_finished(sig, code, tmp_path):
    # Cells far longer than the test (a one-block 30-epoch cell now trains in seconds and could finish before
    # the workers stop): the signal must find both still training.
    study = small_study(tmp_path, epochs=1000, seeds=(0, 1, 2))
    out = tmp_path / "out"
    process = start_cli("study", study, "--out", out, "--workers", "2", "--report-dir", "none")
    lines = []
    while sum("running  " in line for line in lines) < 2:  # both workers are training a cell
        line = process.stdout.readline()
        assert line, "".join(lines)[-3000:]
        lines.append(line)
    started = time.monotonic()
    os.kill(process.pid, sig)  # the parent alone, as `kill` or a scheduler would
    output = "".join(lines) + process.communicate(timeout=120)[0]
    assert process.returncode == code, output[-3000:]
    assert time.monotonic() - started < 60
    assert session_processes(process.pid) == []  # no orphaned worker
    assert "Traceback" not in output and ("interrupted" in output or "terminated" in output)
    frame = pd.read_csv(out / "faults" / "runs.csv")  # what finished (nothing, here) is written
    assert len(frame) == 3 and "done" not in set(frame["status"])


@pytest.mark.slow
def test_a_full_disk_stops_the_study_with_one_line_and_it_resumes_when_space_is_back(tmp_path, capsys):
    study = small_study(tmp_path, epochs=1)
    with small_disk(tmp_path / "disk", size_mb=2) as disk:  # a one-block ViT's checkpoint needs ~6 MB
        status, _, err = main(["study", study, "--out", disk, "--report-dir", "none"], capsys)
        assert status == 1 and err.count("\n") == 1, err
        assert f"no space left on the device writing {disk}" in err and "MiB free" in err
        assert not list(disk.rglob(".tmp.*"))  # no temporary file left to keep the disk full
        resize(disk, size_mb=64)
        status, out, err = main(["study", study, "--out", disk, "--report-dir", "none"], capsys)
        assert status == 0, err
        assert set(pd.read_csv(disk / "faults" / "runs.csv")["status"]) == {"done"}

