"""The one W&B reader: what W&B itself reads back from a run's offline files, through the venv's `wandb` CLI
(`wandb leet inspect`), so the checks need no account and no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WANDB = str(Path(sys.executable).with_name("wandb"))


def offline_run(run_dir: Path) -> Path:
    """The single offline-run-* folder W&B wrote under a benchbench run directory."""
    (offline,) = (Path(run_dir) / "wandb").glob("offline-run-*")
    return offline


def _inspect(offline: Path, *flags: str) -> str:
    result = subprocess.run([WANDB, "leet", "inspect", *flags, "--json", str(offline)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def summary_view(offline: Path) -> dict:
    """`wandb leet inspect --summary --json`: run_id, state, project, tags, config, step and summary."""
    return json.loads(_inspect(offline, "--summary"))


def records(offline: Path) -> list[dict]:
    """`wandb leet inspect --json`: every record of the run file, one dict each (with its "type")."""
    return [json.loads(line) for line in _inspect(offline).splitlines()]


def run_record(offline: Path) -> dict:
    """The run's one "run" record (group, job type, config updates...)."""
    (run,) = [record["run"] for record in records(offline) if record["type"] == "run"]
    return run
