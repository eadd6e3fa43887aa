"""The `benchbench` command line: argparse and printing. Each command's work lives in its own room (run/,
study/, tune/, report.py, bench.py); subcommands import Keras lazily so `--help` and usage errors are instant."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from benchbench import console
from benchbench.arguments import (
    Parser,
    UsageError,
    add_bench,
    add_run,
    add_status,
    add_study,
    add_tune,
    add_verbose,
    add_worker,
    at_least,
    shared,
)

EXIT_RUNTIME, EXIT_USAGE = 1, 2


# --- commands -------------------------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.model_catalogue import rows

    print(tabulate(rows(args.pattern), headers="keys", tablefmt=args.format, disable_numparse=True))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.data import catalogue, get_dataset, resolve_data_dir

    if args.name:  # one data set: its classes, with the images of each per split
        spec = get_dataset(args.name)
        sizes = spec.split_sizes()
        print(f"{spec.name}: {spec.num_classes} classes, train / val / test {sizes['train']} / {sizes['val']} / "
              f"{sizes['test']} ({spec.describe().get('splits', 'fixed splits')}), trains at "
              f"{spec.default_image_size} px unless --image-size")
        if hasattr(spec, "class_counts"):
            print(tabulate(spec.class_counts(), headers="keys", tablefmt=args.format))
        return 0
    print(tabulate(catalogue(resolve_data_dir(args.data_dir)), headers="keys", tablefmt=args.format,
                   disable_numparse=True))
    print("\nyour own data: --dataset folder:PATH (one sub-folder of images per class) or tfds:NAME[:CONFIG] (any "
          "TFDS image classification set); `benchbench datasets folder:PATH` lists its classes")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from benchbench.data import prepare

    print(prepare(args.name, args.data_dir))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchbench.run import summary
    from benchbench.run.config import RunConfig, apply_sets
    from benchbench.run.train import execute, finished

    given = {k: getattr(args, k) for k in ("seed", "epochs", "batch_size", "image_size")
             if getattr(args, k) is not None}
    if args.resume and args.rerun:
        raise UsageError("--resume continues a run, --rerun starts it again: pass one of them")
    config = apply_sets(RunConfig(model=args.model, dataset=args.dataset, **given), args.set)
    before = not args.rerun and finished(config, args.out) is not None
    record = execute(config, out_dir=args.out, data_dir=args.data_dir, resume=args.resume, rerun=args.rerun,
                     verbose=1 if sys.stdout.isatty() else 2, tracking=args.tracking, distribute=args.distribute)
    print("\n".join(summary.lines(record, Path(args.out) / record["run_id"], finished_before=before)))
    if args.json or not sys.stdout.isatty():
        print(json.dumps(record))  # the run.json record, on one line: the last line of stdout, for scripts
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from benchbench.study.launch import StudyOptions, run_study

    slurm = None
    if args.launcher == "slurm":
        from benchbench.study.slurm import SlurmOptions

        slurm = SlurmOptions(workers=args.workers, partition=args.partition, gpus_per_worker=args.gpus_per_worker,
                             cpus_per_worker=args.cpus_per_worker, time_minutes=args.time, extra=tuple(args.slurm))
    elif args.wait:
        raise UsageError("--wait follows a cluster launch: use it with --launcher slurm")
    run_study(StudyOptions(file=args.file, out=args.out, storage=args.storage, data_dir=args.data_dir,
                           tracking=args.tracking, workers=args.workers, heartbeat=args.heartbeat,
                           max_retries=args.max_retries, report_dir=args.report_dir, worker=args.worker,
                           argv=tuple(args.argv), slurm=slurm, wait=args.wait, quiet=args.quiet,
                           dry_run=args.dry_run), echo=console.echo)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from benchbench.storage import STORAGE_ENV
    from benchbench.study.workers import join_and_work

    url = args.storage or os.environ.get(STORAGE_ENV)
    if not url:
        raise UsageError(f"worker needs the study's storage: --storage URL (or ${STORAGE_ENV})")
    join_and_work(url, args.study, runs_dir=args.runs_dir, data_dir=args.data_dir, quiet=args.quiet,
                  echo=console.echo, fresh=args.fresh_per_configuration, claimed=args.claimed)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from benchbench.study.status import locate, status_lines

    print("\n".join(status_lines(*locate(args.study, args.storage, args.out), fmt=args.format)))
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
        if (args.tracking or report.tracking_of(args.results)) == "wandb":
            name, directory = report.load(args.results)
            print(f"W&B:         report run {report.log_to_wandb(path.parent, directory, name)} (a new version "
                  "of its artifact when the report changed)")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from benchbench.tracking import sync

    sync(args.results, parallel=args.parallel, echo=console.echo)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchbench import bench
    from benchbench.models import model_info

    if args.suite:
        print(f"bench tables: {bench.write_suite(bench.run_suite(args.repeats or 3), args.out)}")
        return 0
    if args.overhead:
        overhead = bench.runner_overhead(bench.overhead_config(), args.repeats or bench.OVERHEAD_PROCESSES)
        print(json.dumps(overhead) if args.json else bench.overhead_markdown(overhead))
        return 0
    if not args.model:
        raise UsageError("bench needs --model NAME (or --suite for the `make bench` tables)")
    model_info(args.model)
    config = bench.BenchConfig(args.model, image_size=args.image_size, batch_size=args.batch_size,
                               precision=args.precision, jit=args.jit, steps=args.steps,
                               model_args=bench.parse_model_sets(args.set), profile=args.profile,
                               peak_gflops=args.peak_gflops, backend=args.backend)
    record = bench.bench_repeated(config, args.repeats or 1)
    print(json.dumps(record) if args.json else bench.record_markdown(record))
    return 0


# --- the parser -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from benchbench import __version__

    parser = Parser(prog="benchbench", description="Benchmark image classifiers: ViT, ShiftViT, MobileViT, CNNs.")
    parser.add_argument("--version", action="version", version=f"benchbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    models = sub.add_parser("models", help="list registered models with their parameter counts")
    models.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit_*' (default: all)")
    shared(models, "--format")
    models.set_defaults(func=cmd_models, backend=False)  # read from a file: answers without importing Keras

    datasets = sub.add_parser("datasets", help="list data sets with their splits and whether each is on disk")
    datasets.add_argument("name", nargs="?", help="one data set, e.g. folder:PATH: its classes and images per split")
    shared(datasets, "--data-dir", "--format")
    datasets.set_defaults(func=cmd_datasets)

    data = sub.add_parser("data", help="prepare data sets (the only command that downloads)")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser, metavar="ACTION")
    download = data_sub.add_parser("download", help="download and prepare a data set with TFDS")
    download.add_argument("name", help="a data set of `benchbench datasets`, or tfds:NAME[:CONFIG] for any TFDS one")
    shared(download, "--data-dir")
    download.set_defaults(func=cmd_data_download)

    add_run(sub).set_defaults(func=cmd_run)
    add_study(sub).set_defaults(func=cmd_study)
    add_worker(sub).set_defaults(func=cmd_worker)
    add_status(sub).set_defaults(func=cmd_status)
    sync = sub.add_parser("sync", help="upload a results folder's offline W&B runs (cells, report, trials)")
    sync.add_argument("results", help="a study's or search's results folder, e.g. results/demo")
    sync.add_argument("--parallel", type=at_least(1), default=8, help="runs uploaded at a time (default 8)")
    sync.set_defaults(func=cmd_sync)
    report = sub.add_parser("report", help="leaderboard (markdown) and figures from a study's results")
    report.add_argument("results", help="a study's results directory (results/<study>) or its study file")
    report.add_argument("--out", default="reports", help="reports parent directory (default: reports/)")
    report.add_argument("--tracking", choices=["wandb", "none"],
                        help="log the report as a W&B run (default: as the study did, from its study.json)")
    report.add_argument("--seeds-needed", type=at_least(0, float, strict=True, unit=" points"), metavar="POINTS",
                        help="instead of the report: how many seeds per model would resolve a true difference of "
                        "POINTS (default: off)")
    report.set_defaults(func=cmd_report)
    add_bench(sub).set_defaults(func=cmd_bench)
    add_tune(sub).set_defaults(func=cmd_tune)
    add_verbose([parser, *sub.choices.values(), download])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; every failure ends in one line on stderr (exit 2: usage, 1: runtime, 130/143: signal)."""
    try:
        console.start()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # local worker processes re-run the same command
        from benchbench.data.specs import using_data_dir

        with console.verbosity(args.verbose), using_data_dir(getattr(args, "data_dir", None)):
            if getattr(args, "backend", True):
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
