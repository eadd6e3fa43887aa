"""Where a study's time went: each finished cell's phases (run/train.py's timing_seconds, and the cost probe it
waited for), summed, against the wall time of the workers that ran them.

The share that matters is fit's: the seconds the workers spent in `model.fit` (training steps, validation and
the traces they need) over the seconds they existed (wall time x workers). The rest is what a study pays per
cell (data and model set-up, the test pass and records, cost probes) and outside any cell (process start-up,
storage transactions, workers waiting while others finish the last cells)."""

from __future__ import annotations

from pathlib import Path

from benchbench import io

FILE = "time.json"
PHASES = {"fit": "fit", "setup": "set-up", "bookkeeping": "epoch bookkeeping", "final": "test pass and record",
          "cost_probe": "cost probes"}


def account(records: list[dict], wall_seconds: float, workers: int) -> dict:
    """The phases of these cells' records summed, and what is left of wall_seconds x workers outside them."""
    available = wall_seconds * workers
    phases = {phase: sum(record.get("timing_seconds", {}).get(phase, 0.0) for record in records)
              for phase in PHASES}
    phases["outside"] = max(0.0, available - sum(phases.values()))
    return {"cells": len(records), "wall_seconds": wall_seconds, "workers": workers, "worker_seconds": available,
            "seconds": phases, "fit_share": phases["fit"] / available if available else None}


def summary_line(spent: dict) -> str:
    """"time:    9.8 min x 2 workers, 20 cells: fit 78.0 %, test pass and record 7.1 %, ..."."""
    shares = sorted(spent["seconds"].items(), key=lambda item: -item[1])
    names = {**PHASES, "outside": "outside cells (start-up, storage, waiting for the last cells)"}
    parts = ", ".join(f"{names[phase]} {100 * seconds / spent['worker_seconds']:.1f} %" for phase, seconds in shares
                      if seconds >= 0.0005 * spent["worker_seconds"])
    return (f"time:    {spent['wall_seconds'] / 60:.1f} min x {spent['workers']} worker"
            f"{'s' if spent['workers'] > 1 else ''}, {spent['cells']} cells: {parts}")


def write(directory: Path, spent: dict) -> Path:
    return io.write_json(Path(directory) / FILE, spent)

