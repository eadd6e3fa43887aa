"""The `benchbench` command line: argparse and printing. Each command's work lives in its own room (run/,
study/, tune/, report.py, bench.py); subcommands import Keras lazily so `--help` and usage errors are instant."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence

from benchbench import console

EXIT_RUNTIME, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """A user mistake in the command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        message = re.sub(r"^argument (\S+): must be", r"\1 must be", message)  # from the range checks below
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _at_least(low: float, kind=int, strict: bool = False, unit: str = ""):
    """An argparse type: a number >= low (> low when strict)."""
    def parse(raw: str):
        value = kind(raw)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low}{unit}, got {value}")
        return value

    parse.__name__ = kind.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


# --- commands -------------------------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.models import MODELS, catalogue

    if not MODELS.names(args.pattern):
        raise UsageError(MODELS.unknown_message(args.pattern).replace("unknown model", "no model matches"))
    print(tabulate(catalogue(args.pattern), headers="keys", tablefmt=args.format, disable_numparse=True))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.data import catalogue, resolve_data_dir

    print(tabulate(catalogue(resolve_data_dir(args.data_dir)), headers="keys", tablefmt=args.format,
                   disable_numparse=True))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from benchbench.data import get_dataset, resolve_data_dir

    spec, data_dir = get_dataset(args.name), resolve_data_dir(args.data_dir)
    if spec.download:
        spec.prepare(data_dir)
    print(f"{spec.name} is ready in {data_dir or 'the TFDS default directory'}" if spec.download
          else f"{spec.name} needs no download ({spec.source})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchbench.run.config import RunConfig, apply_sets
    from benchbench.run.train import execute

    given = {k: getattr(args, k) for k in ("seed", "epochs", "batch_size", "image_size")
             if getattr(args, k) is not None}
    config = apply_sets(RunConfig(model=args.model, dataset=args.dataset, **given), args.set)
    record = execute(config, out_dir=args.out, data_dir=args.data_dir, resume=args.resume,
                     verbose=1 if sys.stdout.isatty() else 2, tracking=args.tracking, distribute=args.distribute)
    print(f"run directory: {args.out}/{record['run_id']}")
    print(json.dumps(record))  # the run.json record, on one line: the last line of stdout
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from benchbench.study.launch import StudyOptions, run_study

    run_study(StudyOptions(file=args.file, out=args.out, storage=args.storage, data_dir=args.data_dir,
                           tracking=args.tracking, workers=args.workers, heartbeat=args.heartbeat,
                           max_retries=args.max_retries, report_dir=args.report_dir, worker=args.worker,
                           argv=tuple(args.argv)), echo=console.echo)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from benchbench.tune.launch import SearchOptions, run_search

    fields = SearchOptions.__dataclass_fields__
    run_search(SearchOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()
                                if k in fields}), echo=console.echo)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from benchbench import report

    if args.seeds_needed is not None:
        print("\n".join(report.seeds_needed(args.results, args.seeds_needed)))
    else:
        print(f"leaderboard: {(path := report.write_report(args.results, args.out))}")
        print(f"figures:     {path.parent}/*.png; cells: {path.parent / 'runs.csv'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchbench import bench
    from benchbench.models import model_info

    if args.suite:
        print(f"bench tables: {bench.write_suite(bench.run_suite(args.repeats or 3), args.out)}")
        return 0
    if args.overhead:
        overhead = bench.runner_overhead(bench.overhead_config(), args.repeats or 3)
        print(json.dumps(overhead) if args.json else bench.overhead_markdown(overhead))
        return 0
    if not args.model:
        raise UsageError("bench needs --model NAME (or --suite for the `make bench` tables)")
    model_info(args.model)
    config = bench.BenchConfig(args.model, image_size=args.image_size, batch_size=args.batch_size,
                               precision=args.precision, jit=args.jit, steps=args.steps,
                               model_args=bench.parse_model_sets(args.set), profile=args.profile,
                               peak_gflops=args.peak_gflops)
    record = bench.bench_repeated(config, args.repeats or 1)
    print(json.dumps(record) if args.json else bench.record_markdown(record))
    return 0


# --- the parser -----------------------------------------------------------------------------------------

SHARED = {  # options several commands take, said once
    "--data-dir": dict(help="TFDS data directory (default: $BENCHBENCH_DATA_DIR, else TFDS's)"),
    "--storage": dict(help="Optuna storage URL shared by every worker and machine, e.g. postgresql://user@host/db "
                           "(default: $BENCHBENCH_STORAGE, else sqlite:///OUT/NAME/optuna.db)"),
    "--heartbeat": dict(type=_at_least(1, float), default=10, help="seconds between worker heartbeats; a cell "
                        "whose worker misses 3 is re-queued (default 10)"),
    "--worker": dict(action="store_true", help=argparse.SUPPRESS),  # one of `--workers N` local processes
    "--format": dict(default="simple", choices=["simple", "github", "plain"], help="table format (github: markdown)"),
}


def _shared(parser: argparse.ArgumentParser, *flags: str) -> None:
    for flag in flags:
        parser.add_argument(flag, **SHARED[flag])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbench", description="Benchmark image classifiers: ViT, ShiftViT, MobileViT, CNNs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    models = sub.add_parser("models", help="list registered models with their parameter counts")
    models.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit_*' (default: all)")
    _shared(models, "--format")
    models.set_defaults(func=cmd_models)

    datasets = sub.add_parser("datasets", help="list data sets with their splits and whether each is on disk")
    _shared(datasets, "--data-dir", "--format")
    datasets.set_defaults(func=cmd_datasets)

    data = sub.add_parser("data", help="prepare data sets (the only command that downloads)")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser, metavar="ACTION")
    download = data_sub.add_parser("download", help="download and prepare a data set with TFDS")
    download.add_argument("name")
    _shared(download, "--data-dir")
    download.set_defaults(func=cmd_data_download)

    _add_run(sub)
    _add_study(sub)
    report = sub.add_parser("report", help="leaderboard (markdown) and figures from a study's results")
    report.add_argument("results", help="a study's results directory (results/<study>) or its study file")
    report.add_argument("--out", default="reports", help="reports parent directory (default: reports/)")
    report.add_argument("--seeds-needed", type=_at_least(0, float, strict=True, unit=" points"), metavar="POINTS",
                        help="instead: how many seeds per model would resolve a true difference of POINTS")
    report.set_defaults(func=cmd_report)
    _add_bench(sub)
    _add_tune(sub)
    return parser


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="train one model on one data set with one seed, and measure it")
    run.add_argument("--model", required=True)
    run.add_argument("--dataset", required=True)
    for flag in ("--seed", "--epochs", "--batch-size", "--image-size"):
        run.add_argument(flag, type=int)
    _shared(run, "--data-dir")
    run.add_argument("--out", default="runs", help="parent of the run directory (default: runs/)")
    run.add_argument("--tracking", default="wandb", choices=["wandb", "none"],
                     help="W&B: online when logged in, else offline files under the run directory (default)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe field (e.g. learning_rate=5e-4) or a model option (model.depth=6)")
    run.add_argument("--resume", action="store_true", help="continue the run from its last finished epoch")
    run.add_argument("--distribute", default="auto", choices=["auto", "mirrored", "none"],
                     help="data-parallel training with MirroredStrategy: auto (when several GPUs are visible), "
                     "mirrored (every GPU, else every logical CPU device), none")
    run.set_defaults(func=cmd_run)


def _add_study(sub) -> None:
    study = sub.add_parser("study", help="run a study file: every model x dataset x seed cell, once, crash-safe")
    study.add_argument("file", help="a study TOML file, e.g. studies/demo.toml")
    study.add_argument("--workers", type=_at_least(1), default=1,
                       help="local worker processes sharing the cells (default 1)")
    study.add_argument("--out", default="results", help="results parent directory (default: results/)")
    study.add_argument("--tracking", choices=["wandb", "none"], help="override the study file's [tracking] backend")
    _shared(study, "--storage", "--data-dir", "--heartbeat", "--worker")
    study.add_argument("--max-retries", type=_at_least(0), default=2,
                       help="re-queues of a cell whose worker died, per start of the study (default 2)")
    study.add_argument("--report-dir", default="reports",
                       help="where the leaderboard and figures go when the study ends (default reports/; none: skip)")
    study.set_defaults(func=cmd_study)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="training/inference speed and MFU of one model configuration")
    bench.add_argument("--model")
    bench.add_argument("--image-size", type=int, help="default: the model's reference size")
    bench.add_argument("--batch-size", type=_at_least(1), default=64)
    bench.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    bench.add_argument("--jit", action=argparse.BooleanOptionalAction, default=False, help="XLA-compile the steps")
    bench.add_argument("--steps", type=_at_least(1), default=20, help="timed training steps (after 3 warm-up steps)")
    bench.add_argument("--repeats", type=_at_least(1), help="measure in N fresh processes and report the median "
                       "(default 1; 3 with --suite)")
    bench.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                       help="a model option, e.g. --set dropout=0 (repeatable)")
    bench.add_argument("--profile", action="store_true", help="also print the training step's time by op type")
    bench.add_argument("--peak-gflops", type=float, help="MFU's denominator, e.g. a datasheet peak (default: measured)")
    bench.add_argument("--json", action="store_true", help="print the record as JSON")
    bench.add_argument("--overhead", action="store_true",
                       help="only the runner-overhead measurement (bare fit vs runner, small ShiftViT on digits)")
    bench.add_argument("--suite", action="store_true",
                       help="the `make bench` tables (speed, input pipelines, runner overhead), written to --out")
    bench.add_argument("--out", default="reports/bench", help="folder of the suite's <host>.md (default reports/bench)")
    bench.set_defaults(func=cmd_bench)


def _add_tune(sub) -> None:
    tune = sub.add_parser("tune", help="search a model's hyperparameters with Optuna (TPE, pruning), then confirm")
    tune.add_argument("--model", required=True)
    tune.add_argument("--dataset", required=True)
    tune.add_argument("--trials", type=_at_least(1), required=True,
                      help="finished trials wanted, counted over all workers")
    tune.add_argument("--epochs", type=int, help="epochs per trial (default: the run default, 10)")
    for flag in ("--batch-size", "--image-size"):
        tune.add_argument(flag, type=int)
    tune.add_argument("--seed", type=int, default=0, help="training seed of every trial and the TPE sampler's seed")
    tune.add_argument("--study-name", help="the search's name in the storage (default: tune-MODEL-DATASET)")
    tune.add_argument("--timeout", type=_at_least(0, float, strict=True, unit=" seconds"),
                      help="stop starting trials after this many seconds")
    tune.add_argument("--workers", type=_at_least(1), default=1, help="local worker processes (default 1)")
    tune.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    tune.add_argument("--confirm", type=_at_least(0), default=0, metavar="K",
                      help="re-run the top K configurations on fresh seeds, evaluated on the test split")
    tune.add_argument("--confirm-seeds", type=_at_least(1), default=3, metavar="M", help="fresh seeds per config")
    tune.add_argument("--space", action="append", default=[], metavar="KEY=RANGE",
                      help="override a search dimension: KEY=LOW:HIGH, KEY=LOW:HIGH:log or KEY=A,B,C")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a recipe field or model option")
    tune.add_argument("--out", default="results", help="results parent directory (default: results/)")
    tune.add_argument("--tracking", default="wandb", choices=["wandb", "none"])
    _shared(tune, "--storage", "--data-dir", "--heartbeat", "--worker")
    tune.set_defaults(func=cmd_tune)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; every failure ends in one line on stderr (exit 2: usage, 1: runtime, 130/143: signal)."""
    try:
        console.start()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # local worker processes re-run the same command
        console.import_backend_quietly()
        return args.func(args)
    except (UsageError, ValueError, FileExistsError) as error:  # ValueError: bad names, values, overrides
        return console.error(error, EXIT_USAGE)
    except (RuntimeError, OSError) as error:  # the world's: missing data, a full disk, a lost database
        return console.error(error, EXIT_RUNTIME)
    except KeyboardInterrupt as interrupt:
        return console.interrupted(interrupt)
    except Exception as error:  # a bug of ours: still one line, and the way to the traceback
        if os.environ.get("BENCHBENCH_DEBUG"):
            raise
        return console.error(f"internal error: {type(error).__name__}: {console.first_line(error)} "
                             "(BENCHBENCH_DEBUG=1 shows the traceback; please report it)", EXIT_RUNTIME)


if __name__ == "__main__":
    sys.exit(main())
