"""Study workers: processes (here or on other machines sharing the storage) that claim a study's cells and
run them until none is queued or running; `--workers N` starts N of them on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchbench import console
from benchbench.io import DiskFullError
from benchbench.run.checkpoint import committed_epoch
from benchbench.run.config import RunConfig
from benchbench.run.reuse import sibling_key
from benchbench.run.train import execute
from benchbench.storage import STORAGE_ENV, StorageError, heartbeat
from benchbench.study.queue import Queue

STOP_GRACE = 30.0  # seconds an interrupted worker gets to mark its cell and exit
ALONE_SECONDS = 2.0  # of those, how long workers that got the signal themselves are left to stop


def join_and_work(url: str, name: str, *, runs_dir: Path | None, data_dir: str | None, quiet: bool = False,
                  echo: Callable[[str], None] = print, fresh: bool = False, claimed: int | None = None) -> int:
    """`benchbench worker NAME`: joins study NAME on the storage and works until no cell is left. Its runs go
    under `runs_dir`, by default the study's results folder as its creator named it (shared on a cluster).
    `fresh`: a model configuration whose costs are not measured yet gets its first cell run in a fresh process
    (this one, started again: `restart`), which measures them (`benchbench worker --fresh-per-configuration`,
    what `--workers N` starts); `claimed`: the cell the process before it had claimed (`--claimed`)."""
    queue = Queue.join(url, name)
    runs_dir = Path(runs_dir or Path(queue.settings.results) / "runs")
    try:  # before any cell is claimed: every cell would fail the same way
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RuntimeError(f"worker {name}: cannot create the runs folder {runs_dir} ({error.strerror or error}); "
                           "is the study's results folder shared with this machine? --runs-dir names another") from None
    if claimed is None:
        echo(f"worker   {name}: {len(queue.keys)} cells; runs in {runs_dir}")
    return work(queue, runs_dir=runs_dir, data_dir=data_dir, tracking=queue.settings.tracking, quiet=quiet, echo=echo,
                status=console.status if console.live() else None,
                restart=(lambda trial_id: restart(queue, trial_id)) if fresh else None, claimed=claimed)


def restart(queue: Queue, trial_id: int):
    """Replaces this worker process with a fresh one (same PID, pipes and environment) that takes claimed cell
    `trial_id` over: the cell's configuration has no measured costs yet, and a process that ran other cells
    would measure them with its own history (its memory peak keeps what earlier cells freed). The heartbeat is
    recorded first: the new process beats again once it has imported Keras, well within the grace period."""
    queue.storage.record_heartbeat(trial_id)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = list(sys.argv[1:])
    if "--claimed" in argv:
        del argv[argv.index("--claimed"):argv.index("--claimed") + 2]
    os.execv(sys.executable, [sys.executable, "-m", "benchbench", *argv, "--claimed", str(trial_id)])


def work(queue: Queue, *, runs_dir: Path, data_dir: str | None, tracking: str, poll_seconds: float = 2.0,
         quiet: bool = False, echo: Callable[[str], None] = print, status: Callable[[str], None] | None = None,
         restart: Callable[[int], None] | None = None, claimed: int | None = None) -> int:
    """Claims and runs cells until none is queued or running; returns how many this worker finished. Each
    finished cell prints one line with the study's progress; `quiet` drops the lines of cells starting and of
    epochs (the lines are plain: a SLURM log or CI reads them as a terminal does). `status`, on a terminal,
    shows the study's progress and the cell's epoch in one line redrawn in place (console.status). With
    `restart` (see join_and_work), a cell whose configuration's costs are not measured yet is run by a fresh
    process, which measures them: this one if it has run no cell yet, else `restart(trial_id)` replaces it."""
    say = (lambda line: None) if quiet else echo
    finished, ran, handed, last = 0, 0, _handed_over(queue, claimed), None
    while (cell := handed or _next_cell(queue, poll_seconds, after=last)) is not None:
        handed = None
        trial_id, trial = cell
        last = sibling_key(trial.user_attrs["config"])  # the next seed of it runs on this process's traced model
        config = RunConfig.from_resolved(trial.user_attrs["config"])
        missing = bool(restart) and _costs_missing(queue, runs_dir, config)
        elsewhere = missing and _measured_elsewhere(queue, trial_id, config)
        measure = missing and not elsewhere
        if measure:
            queue.mark_measuring(trial_id, config)  # before a restart: other workers need not measure it too
        if measure and ran:
            say(f"fresh    {config.model}: its first cell runs in a fresh worker process, which measures its costs")
            restart(trial_id)  # does not return
        ran += 1
        label = f"{config.model} {config.dataset} seed {config.seed}"
        epoch = committed_epoch(runs_dir / config.run_name())
        resumed = f", resuming after epoch {epoch}" if epoch else ""
        say(f"running  {label}  (trial {trial.number}, run {config.run_name()}{resumed})")
        show = _epoch_status(status, queue, config) if status else None
        if show:
            show(epoch)
        sharing = queue.running_on_this_host()
        record = _run_cell(queue, trial_id, config, label, runs_dir=runs_dir, data_dir=data_dir, tracking=tracking,
                           echo=echo, say=say, show=show, measure_costs=measure, probe=not elsewhere)
        if record is None:
            continue
        # How many cells shared this machine while it trained (at its start or end): its training speed's context.
        record["host_workers"] = max(sharing, queue.running_on_this_host())
        if queue.complete(trial_id, record):
            finished += 1
            cells = queue.cells()  # one read: the states give the running count too
            workers = sum(c.status == "running" for c in cells) + 1  # this one is about to claim the next cell
            echo(f"done     {label}  test top-1 {100 * record['metrics']['test_top1']:.1f}%  "
                 f"{record['wall_seconds']:.0f} s  [{progress(cells, workers)}]")
        else:
            echo(f"dropped  {label}: its heartbeat was missed and another worker re-queued it")
    if status:
        status("")
    return finished


def progress(cells: list, running: int) -> str:
    """"7/20 cells done, about 12 min left": the time left is the cells not done times the median wall time of
    the finished ones, shared by the workers running now (a guide: cells of different models differ)."""
    import statistics

    done = [cell.record["wall_seconds"] for cell in cells if cell.status == "done" and cell.record]
    line = f"{len(done)}/{len(cells)} cells done"
    left = len(cells) - len(done)
    if done and left:
        seconds = left * statistics.median(done) / max(1, running)
        line += f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"
    return line


def status_line(name: str, cells: list) -> str:
    """A study's status line on a terminal: its progress, then each running cell's epoch."""
    running = [cell for cell in cells if cell.status == "running"]
    epochs = "  ".join(_epoch_of(c.config, c.epoch) for c in running)
    return f"{name}: {progress(cells, len(running))}" + (f"  |  {epochs}" if epochs else "")


def _epoch_status(status: Callable[[str], None], queue: Queue, config: RunConfig) -> Callable[[int], None]:
    """What a cell's epochs show on the status line: the study's progress as the cell starts, then the epoch."""
    cells = queue.cells()
    head = f"{queue.name}: {progress(cells, sum(cell.status == 'running' for cell in cells))}"
    return lambda epoch: status(f"{head}  |  {_epoch_of(config, epoch)}")


def _epoch_of(config: RunConfig, epoch: int | None) -> str:
    return f"{config.model}/{config.dataset}/{config.seed} epoch {epoch or 0}/{config.epochs}"


def _probe_costs(config: RunConfig, folder: Path, echo: Callable[[str], None],
                 sharing: Callable[[], int] = lambda: 1) -> dict | None:
    """The model configuration's costs measured in a fresh process, once per study (benchbench/run/costs.py).
    A failed probe costs the report its clean cost columns (it falls back to the runs' own), not the cell."""
    from benchbench.run import costs

    try:
        return costs.cached(config, folder, sharing)
    except (RuntimeError, OSError, ValueError) as error:
        echo(f"warning  {config.model}: no fresh-process costs ({error})")
        return None


def _handed_over(queue: Queue, trial_id: int | None):
    """(trial id, trial) of the cell a restarted worker's previous process had claimed, if it is still running."""
    from optuna.trial import TrialState

    if trial_id is None:
        return None
    trial = queue.storage.get_trial(trial_id)
    return (trial_id, trial) if trial.state == TrialState.RUNNING else None


def _costs_missing(queue: Queue, runs_dir: Path, config: RunConfig) -> bool:
    """Whether the study measures costs in fresh processes and this configuration's are not measured yet."""
    from benchbench.run import costs

    return queue.settings.costs == "fresh_process" and not costs.path(config, runs_dir.parent / "costs").exists()


def _measured_elsewhere(queue: Queue, trial_id: int, config: RunConfig) -> bool:
    """Whether another running cell is measuring this configuration's costs (Queue.mark_measuring). Then this
    cell neither restarts nor probes: it runs in this process with quick in-run costs, and the report takes the
    configuration's costs from the measuring cell's file. Otherwise every worker reaching a new model while its
    first cell trained restarted to measure the same costs (the demo's two workers did at each of its models: a
    process start and a lost model reuse each time)."""
    from benchbench.run import costs

    key = costs.key(config)
    return any(other != trial_id and trial.user_attrs.get("measures_costs") == key for other, trial in queue.running())


def _next_cell(queue: Queue, poll_seconds: float, after: str | None = None):
    """The next claimed (trial id, trial), or None once no cell is queued or running (`after`: Queue.claim's).
    While other workers train the last cells it waits, in case one of them dies and its cell is re-queued."""
    from optuna.exceptions import StorageInternalError

    errors = 0
    while True:
        try:
            queue.reap()
            claimed = queue.claim(after)
            if claimed or not any(cell.status == "running" for cell in queue.cells()):
                return claimed
            errors = 0
        except StorageInternalError as error:  # a database blip must not end a long study: wait, then retry
            errors += 1
            if errors > 10:
                raise StorageError(f"the study's storage keeps failing: {error.__cause__ or error}") from None
        time.sleep(poll_seconds * max(1, errors))


def _run_cell(queue: Queue, trial_id: int, config: RunConfig, label: str, *, runs_dir: Path, data_dir: str | None,
              tracking: str, echo: Callable[[str], None], say: Callable[[str], None],
              show: Callable[[int], None] | None, measure_costs: bool = False, probe: bool = True) -> dict | None:
    def on_epoch(logs: dict) -> None:
        queue.record_epoch(trial_id, logs["epoch"])
        say(f"         {label}  epoch {logs['epoch']}/{config.epochs}  loss {logs['loss']:.3f}  "
             f"val top-1 {100 * logs['val_top1']:.1f}%")
        if show:
            show(logs["epoch"])

    with heartbeat(queue.storage, trial_id):  # the probe too: it takes a while, and the cell is claimed
        try:
            probed, started, sharing = None, time.monotonic(), queue.running_on_this_host()
            if queue.settings.costs == "fresh_process" and not measure_costs and probe:
                probed = _probe_costs(config, runs_dir.parent / "costs", echo, queue.running_on_this_host)
            probe_seconds = time.monotonic() - started  # ~0 when another cell of its configuration probed already
            record = execute(config, out_dir=str(runs_dir), data_dir=data_dir, resume=True, verbose=0,
                             tracking=tracking, group=queue.name, job_type=queue.settings.job_type,
                             protocol=queue.settings.protocol, on_epoch=on_epoch, sync_hint=False, costs=probed,
                             measure_costs=measure_costs)
            if measure_costs and record.get("costs_source") == "fresh process":  # not a finished run read back
                from benchbench.run import costs

                costs.from_run(config, record, runs_dir.parent / "costs", max(sharing, queue.running_on_this_host()))
            return {**record, "timing_seconds": {**record["timing_seconds"], "cost_probe": probe_seconds}}
        except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, SIGTERM (scancel), submitit's preemption exit
            _give_back(queue, trial_id, stop)
            raise
        except Exception as error:  # one broken cell must not stop the study; it is reported and re-tried on restart
            if (stop := console.stop_requested()) is not None:  # the signal came back as another error
                _give_back(queue, trial_id, stop)
                raise stop from None
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            queue.fail(trial_id, message)
            echo(f"failed   {label}: {message}")
            if isinstance(error, DiskFullError):  # every next cell would fail the same way: stop this worker
                raise
            return None


def _give_back(queue: Queue, trial_id: int, stop: BaseException) -> None:
    with console.signals_held():  # a second signal (SLURM's SIGTERM after its warning) must wait
        queue.requeue(trial_id, "interrupted" if isinstance(stop, KeyboardInterrupt) else "preempted")


def worker_env(workers: int) -> dict:
    """Environment for one of `workers` local worker processes: the CPU cores split between them."""
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}


def spawn_workers(argv: list[str], workers: int, storage_url: str, piped: bool = False) -> list:
    """Starts `workers` processes of `benchbench ARGV`; the storage URL travels in the environment, where `ps`
    does not show it (it may hold a password). `piped`: their stdout and stderr come back through pipes."""
    env = {**worker_env(workers), STORAGE_ENV: storage_url}
    pipe = subprocess.PIPE if piped else None
    return [subprocess.Popen([sys.executable, "-m", "benchbench", *argv], env=env, stdout=pipe, stderr=pipe)
            for _ in range(workers)]


def worker_argv(name: str, runs_dir: Path, data_dir: str | None, quiet: bool = False) -> list[str]:
    """The `benchbench worker` command line that joins study NAME (the storage URL goes in the environment); its
    configurations' first cells run in fresh processes (join_and_work's `fresh`)."""
    return ["worker", name, "--runs-dir", str(runs_dir), *(["--data-dir", data_dir] if data_dir else []),
            *(["--quiet"] if quiet else []), "--fresh-per-configuration"]


def without_storage(argv: list[str]) -> list[str]:
    """A command line without its --storage option (workers get the URL from the environment)."""
    command, skip = [], False
    for item in argv:
        if skip or item == "--storage" or item.startswith("--storage="):
            skip = item == "--storage"
            continue
        command.append(item)
    return command


def run_workers(argv: list[str], workers: int, storage_url: str, poll: Callable[[], str] | None = None) -> None:
    """Runs `benchbench ARGV` as `workers` local worker processes (the storage URL in their environment) and
    waits for them. With `poll` (on a terminal), this process prints their lines and, under them, `poll()` as
    a status line redrawn every few seconds; otherwise they write to this process's stdout and stderr."""
    processes = spawn_workers(argv, workers, storage_url, piped=poll is not None)
    try:
        codes = console.relay(processes, poll) if poll else [process.wait() for process in processes]
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: stop every worker, then let the caller finish up
        stop_workers(processes, signal.SIGTERM if isinstance(interrupt, console.Terminated) else signal.SIGINT)
        raise
    if any(codes):
        raise RuntimeError(f"{sum(map(bool, codes))} of {workers} workers exited with an error "
                           f"(status {max(codes)}); run the command again to finish")


def stop_workers(processes: list, sig: int, grace: float = STOP_GRACE) -> None:
    """Sends `sig` to every worker still running (a terminal's Ctrl-C reached them already; a `kill` of this
    process did not), waits up to `grace` seconds for them to mark their cells interrupted, then kills the rest
    (their cells are re-queued by the next start, once their heartbeat is stale)."""
    deadline = time.monotonic() + grace
    # A terminal's Ctrl-C reached every worker already: a second signal would interrupt them while they mark
    # their cells, so they get a moment alone first.
    alone = time.monotonic() + ALONE_SECONDS
    while time.monotonic() < alone and any(process.poll() is None for process in processes):
        time.sleep(0.1)
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
