"""Where a study's time goes: the demo's four models, recipe and workers, run as a study in a fresh process into
a temporary folder, and its time.json (study/efficiency.py) read back. The share that matters is fit's: the
workers' seconds in `model.fit` over the seconds they existed."""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from benchbench.fresh_process import run_module
from benchbench.study.efficiency import FILE

STUDY = Path(__file__).resolve().parents[2] / "studies" / "demo.toml"


def study_efficiency(study: Path = STUDY, seeds: int | None = None, workers: int = 2) -> dict:
    """Runs STUDY (its first `seeds` seeds; None: all, as `make bench` does) with `workers` local workers, W&B
    offline, and returns its time account with the study's name, seeds and wall time. Fewer seeds are no proxy for
    the share: what is paid once per model configuration (a fresh process, the first trace) weighs more per cell."""
    text = Path(study).read_text()
    name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M).group(1)
    all_seeds = json.loads(re.search(r"^seeds\s*=\s*(\[[^\]]*\])", text, re.M).group(1))
    kept = all_seeds[:seeds] if seeds else all_seeds
    with tempfile.TemporaryDirectory(prefix="benchbench-bench-study-") as folder:
        path = Path(folder) / Path(study).name
        path.write_text(re.sub(r"^seeds\s*=.*$", f"seeds = {kept}", text, count=1, flags=re.M))
        start = time.monotonic()
        run_module("benchbench", "study", str(path), "--workers", str(workers), "--out", f"{folder}/results",
                   "--report-dir", "none", what="the bench's study", cwd=folder,
                   env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
        spent = json.loads((Path(folder) / "results" / name / FILE).read_text())
    return {**spent, "study": name, "seeds": kept, "all_seeds": len(all_seeds),
            "command_seconds": time.monotonic() - start}
