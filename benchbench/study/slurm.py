"""`benchbench study FILE --launcher slurm`: the study's workers as one SLURM job array, submitted with submitit.

Each array task runs one `benchbench worker` loop (join the study on the shared storage, claim cells until none
is left). What must be shared between the login node and the compute nodes: the PostgreSQL storage (SQLite is
refused: its locks do not hold over NFS), the Python environment, and the study's results folder, where runs
checkpoint every epoch, where the workers' logs go (results/NAME/slurm/) and from which a re-queued cell resumes.
The storage URL travels in the job's environment (sbatch exports the submitting environment), never in a file or
on a command line.

Stopping: `scancel` (SIGTERM) makes a worker give its cell back at once; SLURM's warning signal before the time
limit or a preemption (USR2, submitit's checkpoint) does the same and requeues the array task, which joins the
study again; a node that dies or a SIGKILL stops the heartbeat, and the cell is re-queued a grace period later.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from benchbench.storage import STORAGE_ENV

SIGNAL_DELAY_SECONDS = 120  # SLURM warns a task this long before its time limit: room to give back the cell


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """The `--launcher slurm` options of `benchbench study` (see its --help)."""

    workers: int = 1
    partition: str | None = None
    gpus_per_worker: int = 0
    cpus_per_worker: int = 1
    time_minutes: int = 24 * 60
    extra: tuple[str, ...] = ()  # sbatch options as KEY=VALUE: --slurm mem=16G --slurm account=vision

    def sbatch(self) -> dict:
        """submitit's SlurmExecutor parameters; --slurm KEY=VALUE pairs go to sbatch as --KEY=VALUE."""
        extra = {}
        for item in self.extra:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--slurm {item!r} must be KEY=VALUE, e.g. --slurm mem=16G")
            extra[key.strip().lstrip("-").replace("-", "_")] = value
        parameters = dict(time=self.time_minutes, cpus_per_task=self.cpus_per_worker, ntasks_per_node=1,
                          signal_delay_s=SIGNAL_DELAY_SECONDS, additional_parameters=extra)
        if self.partition:
            parameters["partition"] = self.partition
        if self.gpus_per_worker:
            parameters["gpus_per_task"] = self.gpus_per_worker  # SLURM sets CUDA_VISIBLE_DEVICES per task
        return parameters


def check_cluster(url: str, options: SlurmOptions) -> None:
    """Everything that can be refused before a cell is queued or a job submitted: the storage, SLURM's presence,
    the partition and the sbatch options. ValueError (usage) or RuntimeError (this machine)."""
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "sqlite":
        raise ValueError("--launcher slurm needs a PostgreSQL storage that every node reaches (SQLite's locks do not "
                         "hold on a shared filesystem and corrupt it): pass --storage postgresql://user@host/db")
    if not shutil.which("sbatch"):
        raise RuntimeError("SLURM is not installed here (no sbatch on PATH): run this on the cluster's login node, "
                           "or use --launcher local")
    options.sbatch()
    if options.partition:
        found = subprocess.run(["scontrol", "show", "partition", options.partition], capture_output=True, text=True,
                               timeout=60)
        if found.returncode:
            names = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=60)
            known = ", ".join(sorted(set(names.stdout.split()))) or "none"
            raise ValueError(f"SLURM has no partition {options.partition!r} (partitions: {known})")


class ClusterWorker:
    """One array task: `benchbench worker NAME` in the job's process. It has submitit's `checkpoint` method, so
    submitit requeues the task when SLURM warns of the time limit or a preemption (its state is in the storage
    and the results folder, so the task starts over and joins the study again). submitit itself is imported
    only where it is used: on import it binds its log handlers to the sys.stdout of the moment."""

    def __init__(self, name: str, runs_dir: str, data_dir: str | None):
        self.name, self.runs_dir, self.data_dir = name, runs_dir, data_dir

    def __call__(self, task: int) -> str:
        from benchbench import console

        threads = os.environ.get("SLURM_CPUS_PER_TASK", "1")  # before TensorFlow starts: its thread pools
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
        console.stop_on_sigterm()  # scancel's SIGTERM gives the cell back (submitit would ignore it)
        _hold_sigterm_on_warning()
        console.import_backend_quietly()
        from benchbench.study.workers import join_and_work

        try:
            finished = join_and_work(os.environ[STORAGE_ENV], self.name, runs_dir=Path(self.runs_dir),
                                     data_dir=self.data_dir, echo=console.echo)
        except KeyboardInterrupt:
            console.echo(f"worker   task {task} stopped by a signal; its cell went back to the queue")
            return "stopped"
        return f"{finished} cells finished"

    def checkpoint(self, *args, **kwargs):
        """submitit's hook on SLURM's warning signal: the same call again, once the task is requeued."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _hold_sigterm_on_warning() -> None:
    """SLURM's warning signal (USR2) makes submitit requeue the task and exit, and the requeue makes SLURM send
    SIGTERM at once: held from the warning on, it cannot cut short the worker giving its cell back (it is
    delivered when the cell is back, workers.py)."""
    import signal

    submitits = signal.getsignal(signal.SIGUSR2)
    if not callable(submitits):
        return

    def on_warning(signum, frame):
        from benchbench import console

        console.hold_signals()  # for good: submitit exits once it has requeued the task
        submitits(signum, frame)

    signal.signal(signal.SIGUSR2, on_warning)


def submit(name: str, url: str, options: SlurmOptions, *, results: Path, data_dir: str | None) -> str:
    """Submits the workers as one job array; returns the array's job id. Their logs: results/slurm/<job>_<task>/."""
    import submitit

    executor = submitit.SlurmExecutor(folder=results / "slurm" / "%j", max_num_timeout=3)
    executor.update_parameters(job_name=f"benchbench-{name}", **options.sbatch())
    saved = os.environ.get(STORAGE_ENV)
    os.environ[STORAGE_ENV] = url  # sbatch exports it to the job: no file or command line shows it
    try:
        jobs = executor.map_array(ClusterWorker(name, str(results / "runs"), data_dir), range(options.workers))
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"sbatch refused the job array: {_first_line(error)}") from None
    finally:
        if saved is None:
            os.environ.pop(STORAGE_ENV, None)
        else:
            os.environ[STORAGE_ENV] = saved
    return jobs[0].job_id.split("_")[0]


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "error" in line.lower()] or lines or [type(error).__name__]
    return useful[-1]


def array_alive(job_id: str) -> bool:
    """Whether any task of the job array is still pending or running (squeue; no accounting database needed)."""
    listed = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True, timeout=60)
    return bool(listed.stdout.strip())


def follow(job_id: str | None, progress: Callable[[], tuple[str, bool]], echo: Callable[[str], None],
           poll_seconds: float = 10.0) -> None:
    """`--wait`: prints the study's progress when it changes, until `progress()` says it is over. RuntimeError
    when the array JOB_ID ends (every task gone from the queue) with cells still to do."""
    import time

    last = None
    while True:
        line, over = progress()
        if line != last:
            echo(line)
            last = line
        if over:
            return
        if job_id and not array_alive(job_id):
            line, over = progress()  # the last task may have finished the study just now
            if over:
                return
            raise RuntimeError(f"SLURM job {job_id} ended with cells left ({line}); its logs are in the study's "
                               "slurm/ folder")
        time.sleep(poll_seconds)
