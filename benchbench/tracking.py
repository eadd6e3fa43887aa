"""Experiment tracking. W&B mirrors what a run records; it is never the source of truth (run.json is)."""

from __future__ import annotations

import hashlib
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from benchbench import console


class NoTracker:
    def log_epoch(self, logs: dict) -> None:
        pass

    def log_outcome(self, run_dir: Path, model) -> None:
        pass

    def finish(self, summary: dict, exit_code: int = 0) -> None:
        pass


def wandb_run_id(run_name: str, run_dir: Path) -> str:
    """A run's W&B id: its name (readable in URLs) and a digest of its directory, which is unique per study cell
    (results/<study>/runs/<run>): the same config in two studies, or a study run again into another results
    folder, gets its own W&B run; a resumed run, in the same directory, continues its own."""
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:8]
    return f"{run_name}-{digest}"


def wandb_logged_in() -> bool:
    """True when W&B has credentials: WANDB_API_KEY, or a netrc entry for the W&B host (`wandb login`)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")


def _init(**kwargs):
    """wandb.init for benchbench: its project, the mode above, quiet, and the command line redacted (W&B saves
    it, and it may hold a database URL with its password)."""
    import wandb

    from benchbench.redact import redacted_argv

    with redacted_argv():
        return wandb.init(project=os.environ.get("WANDB_PROJECT", "benchbench"), resume="allow", mode=_mode(),
                          settings=wandb.Settings(silent=True), **kwargs)


class WandbTracker:
    """One W&B run per benchmark run: config, per-epoch metrics and learning rate, W&B's system metrics, and
    the final summary. W&B's conventions: group = the study or search, job_type = what the run does ("train",
    "tune-trial", "confirm", "bench"; never the model, which is a config key to group by), name =
    model/dataset/seed. Online when logged in, offline (files under the run directory) otherwise; an explicit
    WANDB_MODE wins. Resuming a run continues the W&B run of the same id."""

    def __init__(self, *, run_id: str, name: str, run_dir: Path, config: dict, group: str | None, job_type: str,
                 tags: list[str], sync_hint: bool = True):
        self.run = _init(id=run_id, name=name, dir=str(run_dir), config=config, group=group, job_type=job_type,
                         tags=tags)
        self.mode = _mode()
        self.step: int | None = None  # the last epoch logged: the outcome goes with it
        self.sync_hint = sync_hint

    def log_epoch(self, logs: dict) -> None:
        self.run.log(logs, step=logs["epoch"])
        self.step = logs["epoch"]

    def log_outcome(self, run_dir: Path, model) -> None:
        """What is worth browsing beside the curves: the test confusion matrix (from the run's predictions file,
        up to 100 classes) and the model's layer summary as a file. Its cost goes to the summary
        (`tracking_outcome_seconds`), to be weighed against the run's wall time."""
        import time

        import numpy as np
        import wandb

        from benchbench import io, predictions

        started = time.perf_counter()
        saved = Path(run_dir) / predictions.FILE
        if saved.exists():
            arrays = predictions.load(saved)
            classes = int(max(arrays["label"].max(), arrays["top5"][:, 0].max())) + 1
            if classes <= predictions.LOGITS_UP_TO:
                matrix = wandb.plot.confusion_matrix(y_true=arrays["label"].tolist(),
                                                     preds=arrays["top5"][:, 0].tolist(),
                                                     class_names=[str(c) for c in np.arange(classes)])
                self.run.log({"test/confusion_matrix": matrix}, step=self.step)
        lines: list[str] = []
        model.summary(print_fn=lambda line, **_: lines.append(line))
        text = "\n".join(lines) + "\n"
        io.write_text(Path(run_dir) / "model_summary.txt", text)
        io.write_text(Path(self.run.dir) / "model_summary.txt", text)  # W&B uploads its files folder at the end
        self.run.summary["tracking_outcome_seconds"] = time.perf_counter() - started

    def finish(self, summary: dict, exit_code: int = 0) -> None:
        self.run.summary.update(summary)
        run_dir = self.run.dir  # .../wandb/<offline-run-...>/files
        self.run.finish(exit_code=exit_code)
        if self.mode == "offline" and self.sync_hint:
            print(f"W&B run saved offline; upload it with: wandb sync {Path(run_dir).parent}", file=sys.stderr)


def make_tracker(kind: str, **run_info) -> NoTracker | WandbTracker:
    if kind == "none":
        return NoTracker()
    if kind == "wandb":
        return WandbTracker(**run_info)
    raise ValueError(f"tracking must be 'wandb' or 'none', got {kind!r}")


def log_report(results: Path, group: str, *, tables: dict, images: list[Path], files: dict[str, Path],
               description: str, job_type: str = "report") -> str:
    """A study's or search's verdict where its runs are: one W&B run (this job type, their group) with `tables`
    (name -> DataFrame) as wandb.Tables, `images` (PNG files) as images, and `files` (name in the artifact ->
    path) as a versioned artifact `<group>-<job_type>`. Its id is fixed per results folder: written again, it
    continues the same W&B run, and the artifact gets a new version when its files changed. Returns the id."""
    import wandb

    run_id = wandb_run_id(f"{group}-{job_type}", results)
    run = _init(id=run_id, name=f"{group}/{job_type}", dir=str(results), group=group, job_type=job_type,
                config={"study": group})
    logged = {name: wandb.Table(dataframe=frame.reset_index(drop=True)) for name, frame in tables.items()}
    logged.update({f"figures/{png.stem}": wandb.Image(str(png)) for png in images})
    run.log(logged)
    artifact = wandb.Artifact(f"{group}-{job_type}", type="study-results", description=description)
    for name, path in files.items():
        artifact.add_file(str(path), name=name)
    run.log_artifact(artifact)
    run.finish()
    return run_id


def wandb_cli() -> str:
    """The `wandb` command of this environment."""
    return str(Path(sys.executable).with_name("wandb"))


def _synced(run: Path) -> bool:
    return any(run.glob("*.wandb.synced"))


def offline_runs(results: Path) -> tuple[list[Path], list[Path]]:
    """The offline W&B runs under a results folder: (not uploaded yet, uploaded already). `wandb sync` leaves a
    `*.wandb.synced` marker in each run folder it uploaded."""
    todo, synced = [], []
    for run in sorted(path for path in Path(results).rglob("offline-run-*") if path.is_dir()):
        (synced if _synced(run) else todo).append(run)
    return todo, synced


def sync(results: Path, parallel: int = 8, echo=print) -> None:
    """`benchbench sync RESULTS`: uploads every offline run under the folder (a study's cells, its report run,
    a search's trials) with W&B's own `wandb sync`, several at a time, skipping those already uploaded.
    ValueError for a folder that is not there; RuntimeError when not logged in, when W&B cannot be reached
    (checked first: `wandb sync` would retry for minutes), or when runs are left."""
    import socket
    import subprocess

    if not Path(results).is_dir():
        raise ValueError(f"sync {results}: not a folder; pass a study's results folder, e.g. results/demo")
    todo, done = offline_runs(results)
    if not todo:
        echo(f"nothing to upload under {results}: {len(done)} offline runs, all uploaded already")
        return
    if not wandb_logged_in():
        raise RuntimeError(f"not logged in to W&B: `wandb login` (or set WANDB_API_KEY), then `benchbench sync "
                           f"{results}` again; {len(todo)} runs wait offline")
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=10).close()
    except OSError as error:
        raise RuntimeError(f"cannot reach W&B at {url.scheme}://{url.netloc} ({error.strerror or error}): nothing "
                           f"uploaded; the {len(todo)} offline runs stay under {results}") from None
    echo(f"uploading {len(todo)} offline runs ({len(done)} uploaded already), {parallel} at a time")
    command = [wandb_cli(), "sync", "--yes", "--skip-synced", "-n", str(parallel), *map(str, todo)]
    if console.live():  # W&B's lines above a status line: how many runs are up (their .synced markers)
        pipe = subprocess.PIPE
        console.relay([subprocess.Popen(command, stdout=pipe, stderr=pipe)], seconds=1.0,
                      poll=lambda: f"sync: {sum(map(_synced, todo))}/{len(todo)} runs uploaded")
    else:
        subprocess.run(command, check=False)
    left, _ = offline_runs(results)
    if left:
        raise RuntimeError(f"{len(left)} of {len(todo)} runs did not upload (W&B said why above); run "
                           f"`benchbench sync {results}` again")
    echo(f"uploaded {len(todo)} runs")
