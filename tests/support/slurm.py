"""Starts a throwaway one-node SLURM cluster on loopback (Debian's slurmctld, slurmd and munge), for the
cluster-launcher tests: its own munge key and socket, its own ports, state and logs in a temporary folder, and
its slurm.conf handed to every SLURM command through $SLURM_CONF."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol")
PARTITION = "bench"


def missing() -> list[str]:
    """The programs this fixture needs that are not installed (empty when the cluster can start)."""
    return [name for name in DAEMONS if not shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(root: Path, host: str, cpus: int) -> str:
    return "\n".join([
        "ClusterName=benchbench-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root}/munge.socket",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/builtin",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "KillWait=5",  # seconds between a scancel's SIGTERM and its SIGKILL
        "MinJobAge=600",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"


class SlurmCluster:
    """`with SlurmCluster() as cluster:` a running cluster with one partition (`cluster.partition`) of one node
    with this machine's CPUs; `cluster.env` is os.environ with SLURM_CONF set."""

    partition = PARTITION

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="benchbench-slurm-"))
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin"}
        self._munged: subprocess.Popen | None = None

    def _run(self, *command: str, timeout: float = 60) -> str:
        result = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()[-2000:]}"
                               f"\n{self.logs()}")
        return result.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in sorted(self.root.glob("*.log")))

    def __enter__(self) -> SlurmCluster:
        for folder in ("state", "spool"):
            (self.root / folder).mkdir()
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._run("munged", "--force", f"--key-file={key}", f"--socket={self.root}/munge.socket",
                  f"--pid-file={self.root}/munged.pid", f"--log-file={self.root}/munged.log",
                  f"--seed-file={self.root}/munged.seed")
        self.conf.write_text(_conf(self.root, self.host, os.cpu_count() or 1))
        self._run("slurmctld", "-c", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf))
        deadline = time.monotonic() + 60
        while "idle" not in self._run("sinfo", "-h", "-o", "%t"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster's node never became idle\n{self.logs()}")
            time.sleep(0.5)
        return self

    def run(self, *command: str) -> str:
        """A SLURM client command against this cluster (squeue, scancel, ...); its stdout."""
        return self._run(*command)

    def __exit__(self, *exc) -> None:
        try:
            subprocess.run(["scancel", "--full", "--quiet", f"--partition={PARTITION}"], env=self.env, timeout=30,
                           capture_output=True)
            subprocess.run(["scontrol", "shutdown"], env=self.env, timeout=30, capture_output=True)
        finally:
            for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
                _stop(self.root / pid_file)
            shutil.rmtree(self.root, ignore_errors=True)


def _stop(pid_file: Path, wait: float = 10) -> None:
    """Stops the daemon whose pid the file holds: SIGTERM, then SIGKILL if it lingers."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig, grace in ((15, wait), (9, 0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
