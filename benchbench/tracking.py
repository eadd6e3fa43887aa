"""Experiment tracking. W&B mirrors what a run records; it is never the source of truth (run.json is)."""

from __future__ import annotations

import hashlib
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse


class NoTracker:
    def log_epoch(self, logs: dict) -> None:
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


class WandbTracker:
    """One W&B run per benchmark run: config, per-epoch metrics and learning rate, W&B's system metrics, and
    the final summary. W&B's conventions: group = the study or search, job_type = what the run does ("train",
    "tune-trial", "confirm", "bench"; never the model, which is a config key to group by), name =
    model/dataset/seed. Online when logged in, offline (files under the run directory) otherwise; an explicit
    WANDB_MODE wins. Resuming a run continues the W&B run of the same id."""

    def __init__(self, *, run_id: str, name: str, run_dir: Path, config: dict, group: str | None, job_type: str,
                 tags: list[str], sync_hint: bool = True):
        import wandb

        from benchbench.redact import redacted_argv

        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
        with redacted_argv():  # W&B saves the command line, which may hold a database URL with its password
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "benchbench"), id=run_id, name=name,
                                  resume="allow", dir=str(run_dir), config=config, group=group, job_type=job_type,
                                  tags=tags, mode=mode, settings=wandb.Settings(silent=True))
        self.mode = mode
        self.sync_hint = sync_hint

    def log_epoch(self, logs: dict) -> None:
        self.run.log(logs, step=logs["epoch"])

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
