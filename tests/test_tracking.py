"""W&B tracking, checked offline with no account: what W&B itself reads back from the run's files."""

import json
import os

import pytest

from benchbench.tracking import make_tracker, wandb_logged_in, wandb_run_id
from support.cli import run_cli
from support.env import scrubbed_env
from support.wandb import offline_run, run_record, summary_view

SECRET = "bb-test-secret-0123456789abcdef0123456789abcdef"


def test_logged_in_detection(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not wandb_logged_in()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    os.chmod(tmp_path / "netrc", 0o600)
    assert wandb_logged_in()
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_logged_in()


def test_wandb_run_ids_are_unique_per_run_directory(tmp_path):
    """The same config in two studies (or a study run again into another results folder) never shares a W&B run;
    a run resumed in its own directory keeps its id. W&B allows 128 characters: the id stays readable below."""
    name = "vit_tiny_digits_s0_0123456789ab"
    ids = {wandb_run_id(name, tmp_path / study / "runs" / name) for study in ("a", "b", "c")}
    assert len(ids) == 3 and all(i.startswith(name + "-") and len(i) < 64 for i in ids)
    assert wandb_run_id(name, tmp_path / "a" / "runs" / name) == wandb_run_id(name, tmp_path / "a/x/../runs" / name)


def test_unknown_tracking_is_a_value_error():
    with pytest.raises(ValueError, match="tracking must be 'wandb' or 'none'"):
        make_tracker("mlflow")


# A one-block ViT: a fresh run process trains it in ~10 s.
ONE_BLOCK = ["--set", "model.depth=1", "--set", "model.patch_size=8"]


@pytest.mark.slow
def test_run_logs_config_epochs_and_summary_to_offline_wandb(tmp_path):
    result = run_cli("run", "--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "2", "--batch-size", "32",
                     *ONE_BLOCK, "--out", tmp_path / "runs",
                     env=scrubbed_env(home=tmp_path))  # no credentials: offline
    assert result.returncode == 0, result.stderr[-3000:]
    assert "upload it with: wandb sync" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["run_id"]  # W&B does not displace the result line

    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    view = summary_view(offline_run(run_dir))
    assert view["state"] == "finished" and view["run_id"] == wandb_run_id(record["run_id"], run_dir)
    assert view["project"] == "benchbench" and run_record(offline_run(run_dir))["job_type"] == "train"
    assert sorted(view["tags"]) == ["synthetic", "vit"]
    assert view["config"]["model"] == "vit_tiny"
    assert view["config"]["model_args"] == {"depth": 1, "patch_size": 8} and view["config"]["family"] == "vit"
    assert view["step"] == 2
    summary = view["summary"]
    assert summary["test_top1"] == pytest.approx(record["metrics"]["test_top1"])
    assert summary["best_val_top1"] == pytest.approx(record["metrics"]["best_val_top1"])
    assert summary["params"] == record["params"] and summary["gflops"] == pytest.approx(record["gflops"])
    assert "learning_rate" in summary and "val_top1" in summary
    assert all(summary[f"test_{k}"] == pytest.approx(record["metrics"][f"test_{k}"]) for k in ("nll", "ece", "brier"))
    # Worth browsing: the confusion matrix of the test set, the model's layers; cheap next to the run (0.5 % of a
    # 6 s digits run measured alone; the bound here leaves room for a loaded machine).
    assert summary["test/confusion_matrix_table"]["_type"] == "table-file"
    assert summary["test/confusion_matrix_table"]["nrows"] > 0
    assert "Total params" in (offline_run(run_dir) / "files" / "model_summary.txt").read_text()
    assert summary["tracking_outcome_seconds"] < 0.05 * record["wall_seconds"]


@pytest.mark.slow
def test_api_key_is_never_printed_or_written(tmp_path):
    result = run_cli("run", "--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "32",
                     *ONE_BLOCK, "--out", tmp_path / "runs",
                     env=scrubbed_env(home=tmp_path, WANDB_API_KEY=SECRET, WANDB_MODE="offline"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET not in result.stdout + result.stderr
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def every_file_holding(folder, secret: str) -> list:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.slow
def test_database_password_is_never_printed_or_written(tmp_path, postgres_url):
    """W&B saves the command line of every run (`wandb sync` uploads it): the storage URL's password, given
    with --storage or through BENCHBENCH_STORAGE, must reach no file and no output."""
    from sqlalchemy.engine import make_url

    from support.studies import write_study

    password = make_url(postgres_url).password
    assert password and len(password) >= 8
    env = scrubbed_env(home=tmp_path, WANDB_MODE="offline")
    tiny = ["--epochs", "1", "--batch-size", "32", "--image-size", "32"]
    study = write_study(tmp_path, "secret", datasets=["synthetic"], models=["vit_tiny"], seeds=[0], epochs=1,
                        batch_size=32, image_size=32, overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 8}})
    commands = [  # the two ways in, across the two commands (both save the same command line through W&B)
        (["study", study, "--out", tmp_path / "a", "--report-dir", tmp_path / "reports", "--storage", postgres_url],
         env),
        (["tune", "--model", "vit_tiny", "--dataset", "synthetic", "--trials", "1", *tiny, "--set", "model.depth=1",
          "--set", "model.patch_size=8", "--out", tmp_path / "b"], {**env, "BENCHBENCH_STORAGE": postgres_url}),
    ]
    for args, command_env in commands:
        result = run_cli(*args, env=command_env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert password not in result.stdout + result.stderr
    assert list((tmp_path / "a").rglob("offline-run-*")) and list((tmp_path / "b").rglob("offline-run-*"))
    assert every_file_holding(tmp_path, password) == []


@pytest.mark.parametrize("text, expected", [
    ("postgresql://bench:pw@db:5432/x", "postgresql://bench:***@db:5432/x"),
    ("--storage=postgresql+psycopg2://u:p@ss:w@rd@db/x", "--storage=postgresql+psycopg2://u:***@db/x"),
    ("error at postgresql://u:pw@h/x, retrying", "error at postgresql://u:***@h/x, retrying"),
    ("sqlite:///results/demo/optuna.db", "sqlite:///results/demo/optuna.db"),
    ("http://host:8080/path@x", "http://host:8080/path@x"),  # a port, not a password
])
def test_redact_masks_url_passwords_only(text, expected):
    from benchbench.redact import redact

    assert redact(text) == expected


def test_sync_says_what_it_cannot_do_offline_in_one_line(tmp_path, capsys, monkeypatch):
    """`benchbench sync` up to the network: what it finds, not logged in, W&B unreachable (this machine has no
    route to it: a closed local port stands in), nothing left to upload, and no key in any output."""
    import socket

    from support.cli import main
    from support.env import use_env

    results = tmp_path / "results" / "demo"
    for run in ("runs/a/wandb/offline-run-20261206_000000-a-1", "wandb/offline-run-20261206_000001-demo-report-2"):
        (results / run).mkdir(parents=True)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    use_env(monkeypatch, scrubbed_env(home=tmp_path))
    code, _, err = main(["sync", results], capsys)
    assert code == 1 and err.count("\n") == 1 and "not logged in to W&B: `wandb login`" in err and "2 runs" in err
    use_env(monkeypatch, scrubbed_env(home=tmp_path, WANDB_API_KEY=SECRET, WANDB_BASE_URL=f"http://127.0.0.1:{port}"))
    code, out, err = main(["sync", results], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert f"cannot reach W&B at http://127.0.0.1:{port}" in err and "nothing uploaded; the 2 offline runs" in err
    assert SECRET not in out + err
    for run in results.rglob("offline-run-*"):
        (run / f"run-{run.name[-1]}.wandb.synced").write_text("")
    code, out, err = main(["sync", results], capsys)
    assert code == 0 and "nothing to upload" in out and "2 offline runs, all uploaded already" in out, err
    code, _, err = main(["sync", tmp_path / "nowhere"], capsys)
    assert code == 2 and "not a folder" in err


def test_sync_hands_the_runs_to_wandb_sync_and_shows_progress_on_a_terminal(tmp_path, capsys, monkeypatch):
    """Up to the upload itself: W&B's own `wandb sync` (a stand-in here, which marks each run uploaded as W&B
    does) gets every run not uploaded yet, its lines come through, and a terminal's status line counts the
    uploaded runs. A listening local port stands in for W&B's host."""
    import io
    import socket
    import stat

    from benchbench import tracking
    from support.env import use_env

    results = tmp_path / "results" / "demo"
    runs = [results / f"runs/r{i}/wandb/offline-run-20261206_00000{i}-r{i}-1" for i in range(3)]
    for run in runs:
        run.mkdir(parents=True)
    (runs[0] / "run-r0.wandb.synced").write_text("")  # uploaded already: skipped
    fake = tmp_path / "wandb"
    fake.write_text("#!/bin/sh\nshift 5\nfor run in \"$@\"; do sleep 0.6; echo \"Syncing: $run ... done.\"; "
                    "touch \"$run/run.wandb.synced\"; done\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(tracking, "wandb_cli", lambda: str(fake))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with socket.socket() as host:
        host.bind(("127.0.0.1", 0))
        host.listen()
        use_env(monkeypatch, scrubbed_env(home=tmp_path, WANDB_API_KEY=SECRET,
                                          WANDB_BASE_URL=f"http://127.0.0.1:{host.getsockname()[1]}"))
        terminal = Terminal()
        monkeypatch.setattr("sys.stdout", terminal)
        tracking.sync(results, parallel=8)
    shown = terminal.getvalue()
    assert "uploading 2 offline runs (1 uploaded already), 8 at a time" in shown
    assert all(f"Syncing: {run} ... done." in shown for run in runs[1:]) and str(runs[0]) not in shown
    assert "\r\x1b[Ksync: 0/2 runs uploaded" in shown and shown.rstrip().endswith("uploaded 2 runs")
    assert all(tracking._synced(run) for run in runs) and SECRET not in shown
