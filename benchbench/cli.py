"""The `benchbench` command line. Subcommands import Keras lazily so `--help` and usage errors are instant."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

EXIT_RUNTIME, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """A user mistake in the command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _import_backend_quietly() -> None:
    """Imports Keras and its backend with native stderr muted.

    TensorFlow's C++ libraries log CUDA probing and CPU-feature notes before absl logging is initialised, so
    TF_CPP_MIN_LOG_LEVEL cannot silence them; for a CLI user they are noise. Python errors still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.ops.zeros(1)  # the backend's device probing also happens on first use
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS warns about folders it merely probed


def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.models import MODELS, count_params

    names = MODELS.names(args.pattern)
    if not names:
        raise UsageError(MODELS.unknown_message(args.pattern).replace("unknown model", "no model matches"))
    rows = []
    for name in names:
        entry = MODELS.get(name)
        params = count_params(entry.build_reference())
        rows.append([name, entry.family, f"{params / 1e6:.2f}", f"{entry.num_classes} cls @ {entry.image_size} px",
                     entry.paper])
    print(tabulate(rows, headers=["model", "family", "params (M)", "reference config", "reference"],
                   tablefmt=args.format, disable_numparse=True))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchbench.data import DATASETS, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    rows = []
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        sizes = spec.split_sizes()
        rows.append([name, spec.num_classes, spec.native_size or "varies", spec.default_image_size,
                     f"{sizes['train']} / {sizes['val']} / {sizes['test']}", spec.augment,
                     "yes" if spec.is_present(data_dir) else "no", spec.source])
    print(tabulate(rows, headers=["dataset", "classes", "native px", "train px", "train / val / test", "augment",
                                  "present", "source"], tablefmt=args.format, disable_numparse=True))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from benchbench.data import get_dataset, resolve_data_dir

    spec = get_dataset(args.name)
    data_dir = resolve_data_dir(args.data_dir)
    if not spec.download:
        print(f"{spec.name} needs no download ({spec.source})")
        return 0
    spec.prepare(data_dir)
    print(f"{spec.name} is ready in {data_dir or 'the TFDS default directory'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import json

    from benchbench.run import RunConfig, apply_sets, execute

    given = {k: getattr(args, k) for k in ("seed", "epochs", "batch_size", "image_size") if getattr(args, k) is not None}
    config = apply_sets(RunConfig(model=args.model, dataset=args.dataset, **given), args.set)
    record = execute(config, out_dir=args.out, data_dir=args.data_dir, resume=args.resume,
                     verbose=1 if sys.stdout.isatty() else 2, tracking=args.tracking, distribute=args.distribute)
    print(f"run directory: {args.out}/{record['run_id']}")
    print(json.dumps(record))  # the run.json record, on one line: the last line of stdout
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.runner import Queue, work, write_results
    from benchbench.storage import STORAGE_ENV, display_url, sqlite_url
    from benchbench.study import load_study

    for flag, value, low in (("--workers", args.workers, 1), ("--heartbeat", args.heartbeat, 1),
                             ("--max-retries", args.max_retries, 0)):
        if value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    study = load_study(args.file)
    data_dir = resolve_data_dir(args.data_dir)
    for dataset in sorted({cell.dataset for cell in study.cells}):
        get_dataset(dataset).require_present(data_dir)  # before anything is queued or written
    out = Path(args.out) / study.name
    url = args.storage or os.environ.get(STORAGE_ENV) or sqlite_url(out / "optuna.db")
    tracking = args.tracking or study.tracking
    study = dataclasses.replace(study, tracking=tracking)
    run_options = dict(runs_dir=out / "runs", data_dir=data_dir, tracking=tracking)

    def tuned(study):  # tune-then-compare: the searches' best configurations become the cells
        if not study.tune:
            return study
        from benchbench.tune import tune_study

        return tune_study(study, url, out=out, data_dir=data_dir, heartbeat_seconds=args.heartbeat)

    if args.worker:  # one of `--workers N` local processes: the parent prints the tables
        queue = Queue(tuned(study), url, heartbeat_seconds=args.heartbeat, max_retries=args.max_retries)
        queue.start()
        work(queue, **run_options)
        return 0
    if study.tune and args.workers > 1:
        _run_workers(args, url)  # the workers share the searches, then the tuned cells
    queue = Queue(tuned(study), url, heartbeat_seconds=args.heartbeat, max_retries=args.max_retries)
    study = queue.study
    added = queue.start()
    cells = queue.cells()
    print(f"study {study.name}: {len(cells)} cells, {_counts(cells)}; {added} newly queued; "
          f"storage {display_url(url)}", flush=True)
    _print_cells(cells, "queued", "running", "new", "failed")
    if any(cell.status in ("queued", "running") for cell in cells):
        if args.workers == 1:
            work(queue, **run_options)
        else:
            _run_workers(args, url)
    cells = queue.cells()
    path = write_results(study, cells, out)
    print(f"study {study.name}: {_counts(cells)}")
    _print_cells(cells, "done", "failed", "queued", "running", "new")
    print(f"results: {path} (one row per cell), {out / 'records.jsonl'} (full records with histories)")
    print(f"runs:    {out / 'runs'}/<run id>/run.json")
    if tracking == "wandb":
        print(f"W&B:     group {study.name!r}; run files under {out / 'runs'}/<run id>/wandb/ "
              f"(offline runs upload with: wandb sync {out / 'runs'}/*/wandb/offline-run-*)")
    print(f"storage: {display_url(url)} (browse it with: optuna-dashboard {display_url(url)})")
    if args.report_dir != "none":
        from benchbench.report import write_report

        print(f"report:  {write_report(out, args.report_dir)}")
    failed = [cell for cell in cells if cell.status != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(cells)} cells did not finish ({failed[0].label}: "
                           f"{failed[0].error or failed[0].status}); start the study again to retry them")
    return 0


def _run_workers(args: argparse.Namespace, url: str) -> None:
    """Runs this same command as `--workers` local worker processes and waits for them."""
    from benchbench.runner import spawn_workers

    argv, skip = [], False
    for item in args.argv:  # the storage URL travels in the environment, not on a command line `ps` shows
        if skip or item == "--storage" or item.startswith("--storage="):
            skip = item == "--storage"
            continue
        argv.append(item)
    processes = spawn_workers([*argv, "--worker"], args.workers, url)
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:  # the workers got the same SIGINT: let them mark their trials interrupted
        for process in processes:
            process.wait()
        raise
    if any(codes):
        raise RuntimeError(f"{sum(map(bool, codes))} of {args.workers} workers exited with an error "
                           f"(status {max(codes)}); run the command again to finish")


def _counts(cells) -> str:
    from collections import Counter

    counts = Counter(cell.status for cell in cells)
    return ", ".join(f"{counts[s]} {s}" for s in ("done", "running", "queued", "failed", "new") if counts[s])


def _print_cells(cells, *order: str) -> None:
    for cell in sorted(cells, key=lambda c: order.index(c.status) if c.status in order else len(order)):
        detail = ""
        if cell.record:
            detail = f"test top-1 {100 * cell.record['metrics']['test_top1']:.1f}%  {cell.record['wall_seconds']:.0f} s"
        elif cell.error:
            detail = cell.error
        print(f"  {cell.status:<8} {cell.label:<40} {cell.config.hash()}  {detail}".rstrip())
    sys.stdout.flush()


def cmd_report(args: argparse.Namespace) -> int:
    from benchbench.report import write_report

    path = write_report(args.results, args.out)
    print(f"leaderboard: {path}")
    print(f"figures:     {path.parent}/*.png; cells: {path.parent / 'runs.csv'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from benchbench.bench import (BenchConfig, bench_repeated, overhead_config, overhead_markdown, run_suite,
                                  runner_overhead, suite_markdown, write_suite)
    from benchbench.models import model_info
    from benchbench.run import parse_literal

    for flag, value in (("--batch-size", args.batch_size), ("--steps", args.steps), ("--repeats", args.repeats)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.suite:
        print(f"bench tables: {write_suite(run_suite(args.repeats or 3), args.out)}")
        return 0
    if args.overhead:
        overhead = runner_overhead(overhead_config(), args.repeats or 3)
        print(json.dumps(overhead) if args.json else overhead_markdown(overhead))
        return 0
    if not args.model:
        raise UsageError("bench needs --model NAME (or --suite for the `make bench` tables)")
    model_info(args.model)
    model_args = []
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects OPTION=VALUE (a model option, e.g. dropout=0), got {item!r}")
        model_args.append((key.removeprefix("model."), parse_literal(raw)))
    config = BenchConfig(args.model, image_size=args.image_size, batch_size=args.batch_size,
                         precision=args.precision, jit=args.jit, steps=args.steps, model_args=tuple(model_args),
                         profile=args.profile)
    record = bench_repeated(config, args.repeats or 1)
    if args.json:
        print(json.dumps(record))
        return 0
    print(suite_markdown([record]))
    if record["profile"]:
        from tabulate import tabulate

        print("\nTraining step by op type (TF profiler; shares of op time):\n")
        print(tabulate([[p["op"], f"{p['ms_per_step']:.1f}", f"{100 * p['share']:.1f}"] for p in record["profile"]],
                       headers=["op", "ms / step", "share %"], tablefmt="github", disable_numparse=True))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from tabulate import tabulate

    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.run import RunConfig, apply_sets, validate
    from benchbench.space import space_for
    from benchbench.storage import STORAGE_ENV, display_url, sqlite_url
    from benchbench.tune import Search, confirm, counts, open_search, search_worker

    for flag, value, low in (("--trials", args.trials, 1), ("--workers", args.workers, 1), ("--confirm", args.confirm, 0),
                             ("--confirm-seeds", args.confirm_seeds, 1), ("--heartbeat", args.heartbeat, 1)):
        if value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "image_size") if getattr(args, k) is not None}
    base = apply_sets(RunConfig(model=args.model, dataset=args.dataset, seed=args.seed, **given), args.set)
    validate(base)
    explicit = _space_overrides(args.space)
    # What the command fixes (--set, --batch-size, ...) leaves the family's space, unless --space names it again.
    fixed = {k for k in given if k != "epochs"} | {item.partition("=")[0] for item in args.set}
    space = {k: d for k, d in space_for(args.model, explicit).items() if k not in fixed or k in explicit}
    name = args.study_name or f"tune-{args.model}-{args.dataset}"
    data_dir = resolve_data_dir(args.data_dir)
    get_dataset(args.dataset).require_present(data_dir)
    out = Path(args.out) / name
    url = args.storage or os.environ.get(STORAGE_ENV) or sqlite_url(out / "optuna.db")
    search = Search(name=name, base=base, space=space, trials=args.trials, pruner=args.pruner)
    storage, study = open_search(search, url, heartbeat_seconds=args.heartbeat)
    deadline = time.time() + args.timeout if args.timeout else None
    options = dict(runs_dir=out / "runs", data_dir=data_dir, tracking=args.tracking, deadline=deadline)
    if args.worker:
        search_worker(search, storage, study, **options)
        return 0
    before = counts(study)
    print(f"search {name}: {args.model} on {args.dataset}, {args.trials} trials of {base.epochs} epochs, "
          f"{args.pruner} pruner, TPE seed {args.seed}; {before['complete'] + before['pruned']} finished before; "
          f"storage {display_url(url)}", flush=True)
    print("space: " + "; ".join(f"{k} {_describe(d)}" for k, d in space.items()), flush=True)
    if args.workers == 1:
        search_worker(search, storage, study, **options)
    else:
        _run_workers(args, url)
    n = counts(study)
    best = study.best_trial if n["complete"] else None
    print(f"search {name}: {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed" +
          (f"; best val top-1 {100 * best.value:.1f}% (trial {best.number}: "
           f"{', '.join(f'{k}={_short(v)}' for k, v in best.params.items())})"
           if best else ""))
    print(f"trials:  {out / 'runs'}/trial<N>/<run id>/run.json; browse with: optuna-dashboard {display_url(url)}")
    if args.confirm:
        rows, runs_csv = confirm(search, study, k=args.confirm, seeds=args.confirm_seeds, url=url, out=out,
                                 data_dir=data_dir, tracking=args.tracking, heartbeat_seconds=args.heartbeat)
        table = [[r["rank"], r["trial"], f"{100 * r['search_best_val_top1']:.1f}",
                  _mean_ci(r["confirmed_test_top1_mean"], r["confirmed_test_top1_ci95"], r["seeds"]),
                  f"{100 * r['optimism_gap']:+.1f}" if r["optimism_gap"] is not None else "-",
                  ", ".join(f"{k}={_short(v)}" for k, v in json.loads(r["params"]).items())]
                 for r in rows]
        print(tabulate(table, headers=["rank", "trial", "search best val top-1 %", "confirmed test top-1 %",
                                       "gap (pts)", "params"], disable_numparse=True))
        print(f"confirmation: {out / 'confirm.csv'}; its runs: {runs_csv}")
    return 0


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _mean_ci(mean, half, n) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.1f} ± {100 * half:.1f} (n={n})" if half is not None else f"{100 * mean:.1f} (n={n}, no interval)"


def _describe(dimension) -> str:
    if dimension.choices is not None:
        return "{" + ", ".join(map(str, dimension.choices)) + "}"
    return f"[{dimension.low:g}, {dimension.high:g}]" + (" log" if dimension.log else "")


def _space_overrides(items: list[str]) -> dict:
    """--space KEY=LOW:HIGH[:log] or KEY=A,B,C (choices), in the study file's {low, high, log} / {choices} form."""
    from benchbench.run import parse_literal

    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = raw.split(":")
        if not sep or not key or not raw or len(parts) > 3 or (len(parts) == 3 and parts[2] != "log"):
            raise UsageError(f"--space expects KEY=LOW:HIGH, KEY=LOW:HIGH:log or KEY=A,B,C, got {item!r}")
        if len(parts) > 1:
            low, high = parse_literal(parts[0]), parse_literal(parts[1])
            overrides[key] = {"low": low, "high": high, "log": len(parts) == 3}
        else:
            overrides[key] = {"choices": [parse_literal(v.strip()) for v in raw.split(",")]}
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbench", description="Benchmark image classifiers: ViT, ShiftViT, MobileViT, CNNs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    models = sub.add_parser("models", help="list registered models with their parameter counts")
    models.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit_*' (default: all)")
    models.add_argument("--format", default="simple", choices=["simple", "github", "plain"],
                        help="table format (github: markdown)")
    models.set_defaults(func=cmd_models)

    datasets = sub.add_parser("datasets", help="list data sets with their splits and whether each is on disk")
    datasets.add_argument("--data-dir", help="TFDS data directory (default: $BENCHBENCH_DATA_DIR, else TFDS's)")
    datasets.add_argument("--format", default="simple", choices=["simple", "github", "plain"])
    datasets.set_defaults(func=cmd_datasets)

    data = sub.add_parser("data", help="prepare data sets (the only command that downloads)")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser, metavar="ACTION")
    download = data_sub.add_parser("download", help="download and prepare a data set with TFDS")
    download.add_argument("name")
    download.add_argument("--data-dir")
    download.set_defaults(func=cmd_data_download)

    run = sub.add_parser("run", help="train one model on one data set with one seed, and measure it")
    run.add_argument("--model", required=True)
    run.add_argument("--dataset", required=True)
    run.add_argument("--seed", type=int)
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--image-size", type=int)
    run.add_argument("--data-dir")
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

    study = sub.add_parser("study", help="run a study file: every model x dataset x seed cell, once, crash-safe")
    study.add_argument("file", help="a study TOML file, e.g. studies/demo.toml")
    study.add_argument("--workers", type=int, default=1, help="local worker processes sharing the cells (default 1)")
    study.add_argument("--storage", help="Optuna storage URL shared by every worker and machine, e.g. "
                       "postgresql://user@host/db (default: $BENCHBENCH_STORAGE, else sqlite:///OUT/STUDY/optuna.db)")
    study.add_argument("--out", default="results", help="results parent directory (default: results/)")
    study.add_argument("--data-dir")
    study.add_argument("--tracking", choices=["wandb", "none"], help="override the study file's [tracking] backend")
    study.add_argument("--heartbeat", type=float, default=10,
                       help="seconds between worker heartbeats; a cell whose worker misses 3 is re-queued (default 10)")
    study.add_argument("--max-retries", type=int, default=2,
                       help="re-queues of a cell whose worker died, per start of the study (default 2)")
    study.add_argument("--report-dir", default="reports",
                       help="where the leaderboard and figures go when the study ends (default reports/; none: skip)")
    study.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    study.set_defaults(func=cmd_study)

    report = sub.add_parser("report", help="leaderboard (markdown) and figures from a study's results")
    report.add_argument("results", help="a study's results directory (results/<study>) or its study file")
    report.add_argument("--out", default="reports", help="reports parent directory (default: reports/)")
    report.set_defaults(func=cmd_report)

    bench = sub.add_parser("bench", help="training/inference speed and MFU of one model configuration")
    bench.add_argument("--model")
    bench.add_argument("--image-size", type=int, help="default: the model's reference size")
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    bench.add_argument("--jit", action=argparse.BooleanOptionalAction, default=False, help="XLA-compile the steps")
    bench.add_argument("--steps", type=int, default=20, help="timed training steps (after 3 warm-up steps)")
    bench.add_argument("--repeats", type=int, help="measure in N fresh processes and report the median "
                       "(default 1; 3 with --suite)")
    bench.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                       help="a model option, e.g. --set dropout=0 (repeatable)")
    bench.add_argument("--profile", action="store_true", help="also print the training step's time by op type")
    bench.add_argument("--json", action="store_true", help="print the record as JSON")
    bench.add_argument("--overhead", action="store_true",
                       help="only the runner-overhead measurement (the demo's ShiftViT cell, bare fit vs runner)")
    bench.add_argument("--suite", action="store_true",
                       help="the `make bench` tables (speed, input pipelines, runner overhead), written to --out")
    bench.add_argument("--out", default="reports/bench", help="folder of the suite's <host>.md (default reports/bench)")
    bench.set_defaults(func=cmd_bench)

    tune = sub.add_parser("tune", help="search a model's hyperparameters with Optuna (TPE, pruning), then confirm")
    tune.add_argument("--model", required=True)
    tune.add_argument("--dataset", required=True)
    tune.add_argument("--trials", type=int, required=True, help="finished trials wanted, counted over all workers")
    tune.add_argument("--epochs", type=int, help="epochs per trial (default: the run default, 10)")
    tune.add_argument("--batch-size", type=int)
    tune.add_argument("--image-size", type=int)
    tune.add_argument("--seed", type=int, default=0, help="training seed of every trial and the TPE sampler's seed")
    tune.add_argument("--storage", help="Optuna storage URL (default: $BENCHBENCH_STORAGE, else "
                      "sqlite:///OUT/STUDY_NAME/optuna.db)")
    tune.add_argument("--study-name", help="the search's name in the storage (default: tune-MODEL-DATASET)")
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tune.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    tune.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    tune.add_argument("--confirm", type=int, default=0, metavar="K",
                      help="re-run the top K configurations on fresh seeds, evaluated on the test split")
    tune.add_argument("--confirm-seeds", type=int, default=3, metavar="M", help="fresh seeds per configuration (3)")
    tune.add_argument("--space", action="append", default=[], metavar="KEY=RANGE",
                      help="override a search dimension: KEY=LOW:HIGH, KEY=LOW:HIGH:log or KEY=A,B,C")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fix a recipe field or model option")
    tune.add_argument("--out", default="results", help="results parent directory (default: results/)")
    tune.add_argument("--data-dir")
    tune.add_argument("--tracking", default="wandb", choices=["wandb", "none"])
    tune.add_argument("--heartbeat", type=float, default=10, help="seconds between worker heartbeats (default 10)")
    tune.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    tune.set_defaults(func=cmd_tune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # local worker processes re-run the same command
        _import_backend_quietly()
        return args.func(args)
    except (UsageError, ValueError, FileExistsError) as error:  # ValueError: bad names, values, overrides
        print(f"benchbench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as error:  # DataMissingError and other failures of the world, not of the command line
        print(f"benchbench: error: {error}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("benchbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
