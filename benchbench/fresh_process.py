"""Measurements in a fresh Python process: what a long-lived process has loaded, compiled and allocated before
must not leak into a timing or a memory peak (the cost probes of studies, `benchbench bench`'s repeats)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_json(module: str, *args: str, what: str, timeout: float | None = None, env: dict | None = None) -> dict:
    """Runs `python -m MODULE ARGS` and returns the JSON object it prints last; a RuntimeError says `what`
    failed (or took too long) with the process's last stderr line. `env` adds to this process's environment."""
    out = run_module(module, *args, what=what, timeout=timeout, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_module(module: str, *args: str, what: str, timeout: float | None = None, env: dict | None = None,
               cwd: str | None = None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` in a fresh process, its output captured; a RuntimeError naming `what` and the
    process's last stderr line when it fails or takes longer than `timeout` seconds."""
    try:
        out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **env} if env else None, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took over {timeout:g} s") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise RuntimeError(f"{what} failed: {last}")
    return out
