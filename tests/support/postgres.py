"""Starts a throwaway PostgreSQL server on 127.0.0.1 (the Debian packages' binaries), for the storage tests."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "pg-test-secret-5f1c2e"


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin/pg_ctl may link into the versioned bin dir
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (version 15 or later)")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, user: str = "bench", database: str = "benchbench"):
        self.bindir = _bindir()
        self.user, self.database, self.port = user, database, _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="benchbench-pg-"))
        self.url = f"postgresql://{user}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        # initdb and postgres refuse to run as root: run them as the postgres system user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        result = subprocess.run([*prefix, str(self.bindir / command[0]), *command[1:]], capture_output=True,
                                text=True, env=env, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")

    def __enter__(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", self.user, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-E", "UTF8")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "-t", "60", "start", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
