"""`benchbench worker` and `benchbench status` against a real PostgreSQL storage: what they refuse, the
database running out of connections, and a status of hundreds of cells in seconds."""

from __future__ import annotations

import time

import psycopg

from benchbench.study.queue import Queue
from support.cli import main
from support.env import scrubbed_env, use_env
from support.studies import write_study


def test_a_worker_needs_a_started_study_and_its_storage(postgres_url, tmp_path, capsys, monkeypatch):
    use_env(monkeypatch, scrubbed_env(tmp_path))
    status, _, err = main(["worker", "never-started", "--storage", postgres_url], capsys)
    assert status == 2 and err.count("\n") == 1 and "has no study named 'never-started'" in err, err
    from benchbench.run.config import RunConfig
    from benchbench.study.file import Study

    Queue(Study("started", None, (RunConfig("vit_tiny", "synthetic"),), tracking="none"), postgres_url,
          results=tmp_path).start()
    (tmp_path / "a-file").write_text("")
    status, _, err = main(["worker", "started", "--storage", postgres_url, "--runs-dir", tmp_path / "a-file" / "runs"],
                          capsys)
    assert status == 1 and err.count("\n") == 1 and "cannot create the runs folder" in err, err
    assert Queue.join(postgres_url, "started").cells()[0].status == "queued"  # nothing claimed
    status, _, err = main(["worker", "never-started"], capsys)
    assert status == 2 and "worker needs the study's storage: --storage URL" in err, err
    status, _, err = main(["status", "never-started"], capsys)
    assert status == 2 and "a study name needs --storage URL" in err, err
    study = write_study(tmp_path, "unstarted", datasets=["digits"], models=["vit_tiny"], seeds=[0], tracking="none")
    status, _, err = main(["status", study, "--out", tmp_path / "out"], capsys)
    assert status == 2 and "study unstarted has not started: no storage at" in err, err
    assert not (tmp_path / "out").exists()  # status creates nothing


def test_a_database_out_of_connections_is_one_line(postgres_url, tmp_path, capsys, monkeypatch):
    with psycopg.connect(postgres_url.replace("postgresql://", "postgres://"), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS capped")
        admin.execute("CREATE ROLE capped LOGIN PASSWORD 'capped-pw' CONNECTION LIMIT 0")
    capped = postgres_url.replace(postgres_url.split("//")[1].split("@")[0], "capped:capped-pw")
    use_env(monkeypatch, scrubbed_env(tmp_path))
    status, _, err = main(["status", "anything", "--storage", capped], capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert "too many connections" in err and "out of connections" in err and "capped-pw" not in err


def test_status_of_hundreds_of_cells_takes_seconds(postgres_url, tmp_path, capsys, monkeypatch):
    from benchbench.run.config import RunConfig
    from benchbench.study.file import Study

    cells = tuple(RunConfig("vit_tiny", "synthetic", seed=seed) for seed in range(200))
    queue = Queue(Study("many-cells", None, cells, tracking="none"), postgres_url, results=tmp_path)
    queue.start()
    for _ in range(3):  # a few claimed, as by running workers
        trial_id, _ = queue.claim()
        queue.storage.record_heartbeat(trial_id)
        queue.record_epoch(trial_id, 4)
    use_env(monkeypatch, scrubbed_env(tmp_path))
    started = time.monotonic()
    status, out, err = main(["status", "many-cells", "--storage", postgres_url], capsys)
    seconds = time.monotonic() - started
    assert status == 0, err
    assert "200 cells, 3 running, 197 queued" in out and out.count("vit_tiny synthetic seed") == 3
    assert "4/10" in out and "s ago" in out
    assert seconds < 5, f"status took {seconds:.1f} s"
    print(f"status of 200 cells: {seconds:.2f} s")


def test_progress_counts_cells_and_estimates_the_time_left():
    from types import SimpleNamespace

    from benchbench.study.workers import progress

    def cell(status, seconds=None):
        return SimpleNamespace(status=status, record={"wall_seconds": seconds} if seconds else None)

    cells = [cell("done", 60), cell("done", 100), cell("done", 80), cell("running"), cell("queued"), cell("queued")]
    assert progress(cells, running=1) == "3/6 cells done, about 4 min left"  # 3 left x median 80 s
    assert progress(cells, running=3) == "3/6 cells done, about 80 s left"  # shared by three workers
    assert progress(cells[:3], running=0) == "3/3 cells done"
    assert progress([cell("queued")], running=0) == "0/1 cells done"


def test_the_status_line_shows_progress_and_each_running_epoch_on_a_terminal_only(monkeypatch, capsys):
    import io
    from types import SimpleNamespace

    from benchbench import console
    from benchbench.run.config import RunConfig
    from benchbench.study.workers import status_line

    config = RunConfig(model="vit_tiny", dataset="digits", seed=3, epochs=12)
    cells = [SimpleNamespace(status="done", record={"wall_seconds": 60}, config=config),
             SimpleNamespace(status="running", record=None, config=config, epoch=5)]
    assert status_line("demo", cells) == "demo: 1/2 cells done, about 60 s left  |  vit_tiny/digits/3 epoch 5/12"

    console.status("demo: 1/2 cells done")  # captured output is no terminal: nothing drawn
    console.echo("a line")
    assert capsys.readouterr().out == "a line\n"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    console.status("demo: 1/2 cells done")
    console.echo("done     vit_tiny")  # above the status line, which is drawn again under it
    console.clear_status()
    assert terminal.getvalue() == ("\r\x1b[Kdemo: 1/2 cells done" "\r\x1b[Kdone     vit_tiny\ndemo: 1/2 cells done"
                                   "\r\x1b[K")


def test_quiet_prints_one_line_per_cell(tmp_path, capsys, monkeypatch):
    study = write_study(tmp_path, "quiet", datasets=["synthetic"], models=["vit_tiny"], seeds=[0], epochs=2,
                        batch_size=32, image_size=32, overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 8}},
                        tracking="none")
    use_env(monkeypatch, scrubbed_env(tmp_path))
    code, out, err = main(["study", study, "--out", tmp_path / "out", "--report-dir", "none", "--quiet"], capsys)
    assert code == 0, err
    assert "epoch 1/2" not in out and "running  " not in out
    assert "done     vit_tiny synthetic seed 0" in out and "[1/1 cells done]" in out
