"""The one way tests run the `benchbench` command: in a fresh process (run_cli, start_cli, and run_script
for the helper scripts in tests/scripts/), or in this process (main) when a fresh process is not the point."""

from __future__ import annotations

import subprocess
import sys
import warnings

from support.env import TESTS, scrubbed_env, with_tests_on_path

SCRIPTS = TESTS / "scripts"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchbench", *map(str, args)]


def run_cli(*args, env: dict[str, str] | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m benchbench ARGS` in a fresh process, stdout and stderr captured as text; the environment is
    scrubbed_env() unless `env` is given."""
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout,
                          env=scrubbed_env() if env is None else env, **kwargs)


def start_cli(*args, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """`python -m benchbench ARGS` started in the background, in its own session (so os.killpg(pid, SIGKILL)
    kills it with any workers it starts), stdout and stderr merged into one text pipe unless `kwargs` say
    otherwise; the environment is scrubbed_env() unless `env` is given."""
    options = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    options.update(kwargs)
    return subprocess.Popen(command(*args), env=scrubbed_env() if env is None else env, **options)


def run_in_terminal(*args, env: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, str]:
    """`python -m benchbench ARGS` with stdout and stderr on a pseudo-terminal, as a user's shell runs it:
    (exit status, everything it wrote there, control sequences included)."""
    import os
    import pty
    import threading

    leader, follower = pty.openpty()
    process = subprocess.Popen(command(*args), env=scrubbed_env() if env is None else env, stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:  # until the last writer closes the terminal (EIO); a full terminal would block the child
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
        os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def run_script(name: str, *args, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """`python tests/scripts/NAME ARGS` in a fresh process with tests/ on PYTHONPATH (scripts may import
    `support.*`); the environment is scrubbed_env() unless `env` is given."""
    env = with_tests_on_path(scrubbed_env() if env is None else env)
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


# The warnings a fresh interpreter prints (Python's default filters): shown once per place, never the
# deprecation, import or resource warnings.
_DEFAULT_FILTERS = [("ignore", DeprecationWarning), ("ignore", PendingDeprecationWarning), ("ignore", ImportWarning),
                    ("ignore", ResourceWarning)]


def main(argv, capsys) -> tuple[int, str, str]:
    """benchbench.cli.main(argv) in this process: (exit status, stdout, stderr) of this call alone.

    Warnings raised during the call are appended to stderr as a fresh process would print them, so checks
    such as "stderr is one line" keep their meaning in process."""
    from benchbench.cli import main as cli_main

    capsys.readouterr()  # drop what earlier calls printed
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for action, category in _DEFAULT_FILTERS:
            warnings.filterwarnings(action, category=category)
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exit:  # argparse's --help and --version exit
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    out, err = capsys.readouterr()
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return code, out, err
