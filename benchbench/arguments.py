"""The `benchbench` command line's options, as data for argparse: one function per subcommand with options of its
own, and the options several commands share (SHARED). cli.py builds the parser from them and runs the commands."""

from __future__ import annotations

import argparse
import re


class UsageError(Exception):
    """A user mistake in the command line: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        message = re.sub(r"^argument (\S+): must be", r"\1 must be", message)  # from the range checks below
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def at_least(low: float, kind=int, strict: bool = False, unit: str = ""):
    """An argparse type: a number >= low (> low when strict)."""
    def parse(raw: str):
        value = kind(raw)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low}{unit}, got {value}")
        return value

    parse.__name__ = kind.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


SHARED = {  # options several commands take, said once
    "--data-dir": dict(help="TFDS data directory, for the built-in sets and tfds:NAME (default: $BENCHBENCH_DATA_DIR, "
                            "else TFDS's ~/tensorflow_datasets)"),
    "--storage": dict(help="Optuna storage URL shared by every worker and machine, e.g. postgresql://user@host/db "
                           "(default: $BENCHBENCH_STORAGE, else sqlite:///OUT/NAME/optuna.db)"),
    "--heartbeat": dict(type=at_least(1, float), default=10, help="seconds between worker heartbeats; a cell "
                        "whose worker misses 3 is re-queued (default 10)"),
    "--worker": dict(action="store_true", help=argparse.SUPPRESS),  # one of `--workers N` local processes
    "--quiet": dict(action="store_true", help="one line per finished cell (with the study's progress), no line "
                    "per cell start or epoch (default: off)"),
    "--format": dict(default="simple", choices=["simple", "github", "plain"],
                     help="table format, github for markdown (default: simple)"),
}


def shared(parser: argparse.ArgumentParser, *flags: str) -> None:
    for flag in flags:
        parser.add_argument(flag, **SHARED[flag])


def add_verbose(parsers: list[argparse.ArgumentParser]) -> None:
    """--verbose on the command and on every subcommand (it is typed after either)."""
    for parser in parsers:
        parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS if parser.prog != "benchbench"
                            else False, help="show TensorFlow's native log lines and retracing warnings, which are "
                            "hidden by default (also in the worker processes this command starts)")


def add_model_and_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a registered model, e.g. vit_tiny (`benchbench models`)")
    parser.add_argument("--dataset", required=True, help="a data set of `benchbench datasets`, folder:PATH (one "
                        "sub-folder of images per class) or tfds:NAME[:CONFIG] (any prepared TFDS set)")


def add_run(sub) -> argparse.ArgumentParser:
    run = sub.add_parser("run", help="train one model on one data set with one seed, and measure it")
    add_model_and_data(run)
    run.add_argument("--seed", type=int, help="the run's seed: initial weights, data order, augmentation, dropout "
                     "(default 0)")
    run.add_argument("--epochs", type=int, help="training epochs (default 10)")
    run.add_argument("--batch-size", type=int, help="global batch size (default 64)")
    run.add_argument("--image-size", type=int, help="training and test image size in pixels (default: the data set's, "
                     "`benchbench datasets`)")
    shared(run, "--data-dir")
    run.add_argument("--out", default="runs", help="parent of the run directory (default: runs/)")
    run.add_argument("--tracking", default="wandb", choices=["wandb", "none"],
                     help="wandb: online when logged in, else offline files under the run directory; none: no "
                     "tracking (default: wandb)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe field (e.g. learning_rate=5e-4), a model option (model.depth=6) or "
                     "start from weights (model.weights=PATH); repeatable (default: none)")
    run.add_argument("--resume", action="store_true", help="continue the run from its last finished epoch")
    run.add_argument("--rerun", action="store_true", help="train again in a fresh directory (NAME-rerunK) when this "
                     "configuration has a finished run in --out (without it, the same command prints that result)")
    run.add_argument("--json", action="store_true", help="end with the run.json record on one line (default: only "
                     "when stdout is not a terminal, e.g. in scripts and pipes)")
    run.add_argument("--distribute", default="auto", choices=["auto", "mirrored", "none"],
                     help="data-parallel training with MirroredStrategy: auto (when several GPUs are visible), "
                     "mirrored (every GPU, else every logical CPU device), none (default: auto)")
    return run


def add_study(sub) -> argparse.ArgumentParser:
    study = sub.add_parser("study", help="run a study file: every model x dataset x seed cell, once, crash-safe")
    study.add_argument("file", help="a study TOML file, e.g. studies/demo.toml")
    study.add_argument("--workers", type=at_least(1), default=1,
                       help="local worker processes sharing the cells (default 1)")
    study.add_argument("--out", default="results", help="results parent directory (default: results/)")
    study.add_argument("--dry-run", action="store_true", help="print the cells, the protocol, the storage and where "
                       "the results and report would go; run and write nothing")
    study.add_argument("--tracking", choices=["wandb", "none"],
                       help="override the study file's [tracking] backend (default: the file's, else wandb)")
    shared(study, "--storage", "--data-dir", "--heartbeat", "--worker", "--quiet")
    study.add_argument("--max-retries", type=at_least(0), default=2,
                       help="re-queues of a cell whose worker died, per start of the study (default 2)")
    study.add_argument("--report-dir", default="reports",
                       help="where the leaderboard and figures go when the study ends (default reports/; none: skip)")
    cluster = study.add_argument_group("on a cluster (--launcher slurm: the workers as one SLURM job array)")
    cluster.add_argument("--launcher", default="local", choices=["local", "slurm"],
                         help="local: worker processes here (default); slurm: submit --workers array tasks with "
                         "submitit (needs a PostgreSQL --storage)")
    cluster.add_argument("--partition", help="SLURM partition (default: the cluster's default partition)")
    cluster.add_argument("--gpus-per-worker", type=at_least(0), default=0, metavar="G",
                         help="GPUs per array task, each task seeing its own (default 0)")
    cluster.add_argument("--cpus-per-worker", type=at_least(1), default=1, metavar="C",
                         help="CPU cores per array task, TensorFlow's threads (default 1)")
    cluster.add_argument("--time", type=at_least(1), default=24 * 60, metavar="MINUTES",
                         help="time limit per array task; near it the task gives its cell back and is requeued "
                         "(default 1440)")
    cluster.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                         help="any other sbatch option, e.g. --slurm mem=16G --slurm account=vision (repeatable; "
                         "default: none)")
    cluster.add_argument("--wait", action="store_true",
                         help="follow the study until it ends, then write the results and the report")
    return study


def add_worker(sub) -> argparse.ArgumentParser:
    worker = sub.add_parser("worker", help="join a started study on a shared storage and run its cells until none "
                            "is left (what --workers and --launcher slurm start)")
    worker.add_argument("study", help="the study's name (its file's `name`); the cells come from the storage")
    shared(worker, "--storage", "--data-dir", "--quiet")
    worker.add_argument("--runs-dir", help="where the runs go (default: the study's results folder/runs, as "
                        "`benchbench study` named it: shared between machines, so a re-queued cell resumes)")
    worker.add_argument("--fresh-per-configuration", action="store_true",
                        help="when the study measures costs in fresh processes, run each model configuration's first "
                        "cell in a fresh process (this worker starts again) that measures them, instead of a separate "
                        "probe process (what --workers N starts)")
    worker.add_argument("--claimed", type=int, help=argparse.SUPPRESS)  # the cell a restarted worker takes over
    return worker


def add_status(sub) -> argparse.ArgumentParser:
    status = sub.add_parser("status", help="a study's cells by state, and who runs each running cell (read-only)")
    status.add_argument("study", help="a study file, or a study's name with --storage")
    shared(status, "--storage", "--format")
    status.add_argument("--out", default="results",
                        help="results parent directory, to find a study file's SQLite storage (default: results/)")
    return status


def add_bench(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser("bench", help="training/inference speed and MFU of one model configuration")
    bench.add_argument("--model", help="the model to measure (`benchbench models`; required unless --suite or "
                       "--overhead)")
    bench.add_argument("--image-size", type=int, help="image size in pixels (default: the model's reference size)")
    bench.add_argument("--batch-size", type=at_least(1), default=64, help="batch size (default 64)")
    bench.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                       help="fp32, or mixed precision in bf16 or fp16 (default: fp32)")
    bench.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax", "torch"],
                       help="the Keras backend, measured in a fresh process (default: tensorflow; torch is the "
                       "[torch] extra)")
    bench.add_argument("--jit", action=argparse.BooleanOptionalAction, default=False,
                       help="XLA-compile the steps (default: off; always on under JAX)")
    bench.add_argument("--steps", type=at_least(1), default=20,
                       help="timed training steps, after 3 warm-up steps (default 20)")
    bench.add_argument("--repeats", type=at_least(1), help="measure in N fresh processes and report the median "
                       "(default 1; with --suite at most N, default 3, stopping at 2 where they agree within 10 %%; "
                       "3 per side with --overhead)")
    bench.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                       help="a model option, e.g. --set dropout=0 (repeatable; default: none)")
    bench.add_argument("--profile", action="store_true", help="also print the training step's time by op type")
    bench.add_argument("--peak-gflops", type=float, help="MFU's denominator, e.g. a datasheet peak (default: measured)")
    bench.add_argument("--json", action="store_true", help="print the record as JSON")
    bench.add_argument("--overhead", action="store_true",
                       help="only the runner-overhead measurement (bare fit vs runner, small ShiftViT on digits)")
    bench.add_argument("--suite", action="store_true",
                       help="the `make bench` tables (targets, speed, backends, precision auto, a study\'s time, input "
                       "pipelines, runner overhead), written to --out")
    bench.add_argument("--out", default="reports/bench", help="folder of the suite's <host>.md (default reports/bench)")
    return bench


def add_tune(sub) -> argparse.ArgumentParser:
    tune = sub.add_parser("tune", help="search a model's hyperparameters with Optuna (TPE, pruning), then confirm")
    add_model_and_data(tune)
    tune.add_argument("--trials", type=at_least(1), required=True,
                      help="finished trials wanted, counted over all workers (required)")
    tune.add_argument("--epochs", type=int, help="epochs per trial (default: the run default, 10)")
    tune.add_argument("--batch-size", type=int, help="batch size, unless searched (default 64)")
    tune.add_argument("--image-size", type=int, help="image size in pixels (default: the data set's)")
    tune.add_argument("--seed", type=int, default=0,
                      help="training seed of every trial and the TPE sampler's seed (default 0)")
    tune.add_argument("--study-name", help="the search's name in the storage (default: tune-MODEL-DATASET)")
    tune.add_argument("--timeout", type=at_least(0, float, strict=True, unit=" seconds"),
                      help="stop starting trials after this many seconds (default: no limit)")
    tune.add_argument("--workers", type=at_least(1), default=1, help="local worker processes (default 1)")
    tune.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                      help="stop unpromising trials early, by validation accuracy per epoch (default: median)")
    tune.add_argument("--confirm", type=at_least(0), default=0, metavar="K",
                      help="re-run the top K configurations on fresh seeds, evaluated on the test split (default 0)")
    tune.add_argument("--confirm-seeds", type=at_least(1), default=3, metavar="M",
                      help="fresh seeds per confirmed configuration (default 3)")
    tune.add_argument("--space", action="append", default=[], metavar="KEY=RANGE",
                      help="override a search dimension: KEY=LOW:HIGH, KEY=LOW:HIGH:log or KEY=A,B,C (repeatable; "
                      "default: the model family's space)")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a recipe field or model option, e.g. model.depth=6 (repeatable; default: none)")
    tune.add_argument("--out", default="results", help="results parent directory (default: results/)")
    tune.add_argument("--tracking", default="wandb", choices=["wandb", "none"],
                      help="wandb: each trial a W&B run (offline unless logged in); none (default: wandb)")
    shared(tune, "--storage", "--data-dir", "--heartbeat", "--worker")
    return tune
