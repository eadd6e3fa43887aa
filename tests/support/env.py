"""The one environment builder for processes the tests start (and for in-process CLI calls, through
`use_env` and `environment`): the test process's environment without W&B or benchbench settings, so a developer's
WANDB_API_KEY, WANDB_MODE or BENCHBENCH_STORAGE cannot change what a test sees."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def scrubbed_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """os.environ less every WANDB_* and BENCHBENCH_* variable, with TF_CPP_MIN_LOG_LEVEL=3.

    With `home` (a temporary folder), HOME is home/"home" and NETRC names home/"no-netrc", a file that does
    not exist: W&B finds no credentials and runs offline. `extra` variables are set last (they may bring back
    a WANDB_* or BENCHBENCH_* one on purpose)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "BENCHBENCH_"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if home is not None:
        env.update(HOME=str(Path(home) / "home"), NETRC=str(Path(home) / "no-netrc"))
    env.update(extra)
    return env


def with_tests_on_path(env: dict[str, str]) -> dict[str, str]:
    """env with tests/ first on PYTHONPATH, for scripts that import `support.*`."""
    paths = [str(TESTS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """Makes os.environ equal `env` (one from scrubbed_env) until the monkeypatch is undone: for CLI calls run
    in this process that must see what a fresh process started with `env` would."""
    for key in [k for k in os.environ if k not in env]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@contextmanager
def environment(env: dict[str, str]):
    """Makes os.environ equal `env` inside the block and restores the previous environment exactly after it,
    including variables the code under test set (W&B sets its own): for module-scoped fixtures, which
    cannot use the function-scoped monkeypatch."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
