"""Storage: URL handling, and the atomic claim every study worker relies on, under real process concurrency."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.trial import TrialState

from benchbench.storage import StorageError, display_url, open_storage, sqlite_url
from support.studies import write_study

TRIALS = 60


def _claim_all(url: str, go, results) -> None:
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name("claims")
    waiting = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
    go.wait()
    mine = []
    for trial in waiting:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                mine.append(trial.number)
        except (StorageInternalError, UpdateFinishedTrialError):
            pass
    results.put(mine)


def run_together(target, args: tuple, processes: int = 4) -> list:
    """Runs target(*args, go, results) in fresh processes released at the same moment; returns their results."""
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    workers = [context.Process(target=target, args=(*args, go, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    go.set()
    returned = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    return returned


def claims_by_concurrent_processes(url: str) -> list[list[int]]:
    study = optuna.create_study(study_name="claims", storage=open_storage(url))
    for _ in range(TRIALS):
        study.enqueue_trial({})
    return run_together(_claim_all, (url,))


def assert_each_trial_claimed_once(claims: list[list[int]]) -> None:
    flat = [number for mine in claims for number in mine]
    assert len(flat) == len(set(flat)), f"{len(flat) - len(set(flat))} trials were claimed by two workers"
    assert len(flat) == TRIALS


def _start_study(study_path: str, url: str, go, results) -> None:
    from benchbench.study.file import load_study
    from benchbench.study.queue import Queue

    study = load_study(study_path)
    go.wait()
    results.put(Queue(study, url).start())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_starting_together_queue_each_cell_once(backend, tmp_path, request):
    url = sqlite_url(tmp_path / "s.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    name = f"together_{backend}_{tmp_path.name}"
    study_path = write_study(tmp_path, name, datasets=["synthetic"], models=["vit_tiny", "shiftvit_keras"],
                             seeds=[0, 1, 2], overrides={"shiftvit_keras": {"model.depths": [1]}})
    queued = run_together(_start_study, (str(study_path), url))
    assert sum(queued) == 6 and len(optuna.load_study(study_name=name, storage=url).trials) == 6


@pytest.mark.slow
def test_sqlite_claims_are_atomic_across_processes(tmp_path):
    assert_each_trial_claimed_once(claims_by_concurrent_processes(sqlite_url(tmp_path / "s.db")))


@pytest.mark.slow
def test_postgres_claims_are_atomic_across_processes(postgres_url):
    assert_each_trial_claimed_once(claims_by_concurrent_processes(postgres_url))


def test_display_url_masks_the_password():
    assert display_url("postgresql://ann:s3cret@db.example:5432/bench") == "postgresql://ann:***@db.example:5432/bench"
    assert display_url("sqlite:///results/demo/optuna.db") == "sqlite:///results/demo/optuna.db"


def test_a_server_that_never_answers_times_out_with_one_line(monkeypatch):
    """A port that accepts connections (the kernel's backlog) but never speaks PostgreSQL."""
    import socket

    from benchbench import storage

    monkeypatch.setattr(storage, "CONNECT_TIMEOUT", 2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql://bench:s3cret-pw@127.0.0.1:{silent.getsockname()[1]}/bench"
        started = time.monotonic()
        with pytest.raises(StorageError, match="timeout expired") as error:
            storage.open_storage(url)
    assert time.monotonic() - started < 10 and "s3cret-pw" not in str(error.value)


def test_the_dashboard_the_hints_name_is_installed_and_serves_a_storage(tmp_path, monkeypatch):
    """`make install` installs optuna-dashboard (the [dashboard] extra); it serves a study's storage, and where it
    is missing the hint says how to install it."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from benchbench.storage import dashboard_hint

    url = sqlite_url(tmp_path / "optuna.db")
    optuna.create_study(study_name="demo", storage=url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen([str(dashboard), url, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert '"study_name": "demo"' in body
    finally:
        server.terminate()
        server.wait(timeout=30)
    monkeypatch.setenv("PATH", str(dashboard.parent))
    assert dashboard_hint(url) == f"optuna-dashboard {url}"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert dashboard_hint(url).endswith("(after pip install -e '.[dashboard]')")
