"""Leaderboards and figures from a study's results: pandas aggregates, benchbench.stats tests, tabulate renders
markdown, seaborn draws.

Per dataset, one row per model, ordered by rank then mean: test top-1 with a 95% interval counting seed and
test-set variance, the difference to the leader with its interval, the Holm-adjusted p-value and the
probability that a leader's seed beats this model's (benchbench.stats says what each assumes); calibration
(NLL, ECE, Brier) and the cost columns (per model from a fresh-process probe where the study ran one,
benchbench/run/costs.py; training speed from the runs, labelled with the cells sharing their machine). Failed
or missing seeds are listed, never averaged away; a model with one finished seed is shown untested.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchbench import io, predictions, stats
from benchbench.run import costs as run_costs
from benchbench.run.config import dataset_slug

COSTS = ("params", "gflops", "train_images_per_second", "inference_latency_ms", "inference_images_per_second",
         "peak_memory_mb", "wall_seconds")
# The costs of the model alone: from the study's fresh-process probe of its configuration when there is one.
PROBED = ("params", "gflops", "inference_latency_ms", "inference_images_per_second", "peak_memory_mb")
# Columns runs.csv gained later: read when present, silently "–" when not.
OPTIONAL = ("inference_images_per_second", "host_workers", "costs_key")
CALIBRATION = ("test_nll", "test_ece", "test_brier")
# NaN for a model with no finished seed (or, for the comparison columns, no test against the leader).
MEASURED = ("top1_mean", "top1_ci95", "top5_mean", "diff_vs_leader", "diff_ci95", "p_vs_leader", "p_leader_better",
            *(f"{c}_{s}" for c in CALIBRATION for s in ("mean", "ci95")), *COSTS)
# What a report needs of runs.csv (study/results.py writes more).
NEEDED = ("model", "family", "dataset", "seed", "status", "test_top1", "test_top5", *CALIBRATION, "epochs",
          "image_size", *(c for c in COSTS if c not in OPTIONAL))


def leaderboard(runs: pd.DataFrame, saved: dict[str, dict] | None = None,
                costs: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per (dataset, model), ranked within each dataset (see benchbench.stats). `saved` maps run ids to
    their predictions (benchbench.predictions): with them the intervals count the test set's sampling error,
    and models are compared image by image. `costs` maps costs keys to fresh-process probes (run/costs.py)."""
    runs = runs.assign(**{c: float("nan") for c in OPTIONAL if c not in runs})
    boards = [_board(dataset, cells, saved or {}, costs or {})
              for dataset, cells in runs.groupby("dataset", sort=False)]
    return pd.concat(boards, ignore_index=True) if boards else pd.DataFrame(columns=["dataset"])


def _board(dataset: str, cells: pd.DataFrame, saved: dict[str, dict], costs: dict[str, dict]) -> pd.DataFrame:
    # A cell counts only with a finite test accuracy: "done" with none (a hand-edited or foreign runs.csv) is
    # listed as missing its result, never ranked.
    usable = (cells["status"] == "done") & np.isfinite(pd.to_numeric(cells["test_top1"], errors="coerce"))
    done = cells[usable]
    rows, scores = [], []
    for model, own in cells.groupby("model", sort=False):
        finished = done[done["model"] == model].sort_values("seed")
        missing = own[~usable[own.index]]
        scores.append(stats.Scores.of(finished["test_top1"], _correct(finished, saved)))
        row = {"dataset": dataset, "model": model, "family": own["family"].iloc[0], "n": len(finished),
               "seeds": len(own), **dict.fromkeys(MEASURED, float("nan")), "host_workers": float("nan"),
               "costs_source": None, "probe_host_workers": float("nan"),
               "not_done": ", ".join(f"seed {s} {'no result' if st == 'done' else st}"
                                     for s, st in zip(missing["seed"], missing["status"]))}
        if len(finished):
            row["top1_mean"], row["top5_mean"] = scores[-1].mean, float(finished["test_top5"].mean())
            estimate = stats.accuracy(scores[-1])
            row["top1_ci95"] = estimate.half_width if estimate else float("nan")
            for column in CALIBRATION:
                values = pd.to_numeric(finished.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
                if len(values):
                    row[f"{column}_mean"], half = stats.t_interval(values)
                    row[f"{column}_ci95"] = float("nan") if half is None else half
            row.update(_costs(finished, costs))
        rows.append(row)
    return _ranked(pd.DataFrame(rows), scores)


def _costs(finished: pd.DataFrame, costs: dict[str, dict]) -> dict:
    """Medians over the finished seeds; the model-alone columns from the configuration's fresh-process probe
    when there is one (then costs_source says so), and the most cells that shared a machine while training."""
    row = {column: float(pd.to_numeric(finished[column], errors="coerce").median()) for column in COSTS}
    row["host_workers"] = float(pd.to_numeric(finished["host_workers"], errors="coerce").max())
    keys = finished["costs_key"].dropna().unique()
    probe = costs.get(keys[0]) if len(keys) == 1 else None
    row["costs_source"] = "fresh process" if probe else "in run"
    row["probe_host_workers"] = float(probe.get("host_workers", float("nan"))) if probe else float("nan")
    if probe:
        row.update({column: float(probe[column]) for column in PROBED if probe.get(column) is not None})
    return row


def _ranked(board: pd.DataFrame, scores: list) -> pd.DataFrame:
    """Adds rank, shared (a rank held by several models), tested and the comparison with the leader."""
    ranking = stats.rank(scores)
    board["rank"] = pd.array(ranking.ranks, dtype="Int64")
    board["tested"] = [s.tested for s in scores]
    board["shared"] = board["rank"].duplicated(keep=False) & board["rank"].notna()
    tested = [i for i in np.argsort([-s.mean if s.n else math.inf for s in scores], kind="stable") if scores[i].tested]
    if tested:
        leader = tested[0]
        for i in tested[1:]:
            estimate = ranking.differences[(leader, i)]
            board.loc[i, ["diff_vs_leader", "diff_ci95", "p_vs_leader"]] = (
                -estimate.value, estimate.half_width, ranking.adjusted[(leader, i)])
            board.loc[i, "p_leader_better"] = stats.probability_of_improvement(scores[leader].seeds, scores[i].seeds)
    # Ranked models first, by rank then mean; then untested ones by mean; then those with no result.
    board["_group"] = [0 if s.tested else (1 if s.n else 2) for s in scores]
    board["_mean"] = [-s.mean if s.n else 0.0 for s in scores]
    order = board.sort_values(["_group", "rank", "_mean"], kind="stable", na_position="last")
    return order.drop(columns=["_group", "_mean"]).reset_index(drop=True)


def _correct(finished: pd.DataFrame, saved: dict[str, dict]) -> np.ndarray | None:
    """Seeds x images correctness from the runs' predictions; None unless every finished seed saved them for
    the same test images."""
    if "run_id" not in finished:
        return None
    return predictions.correct_by_seed([saved.get(run_id) for run_id in finished["run_id"]])


def _pct(mean, half, n) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{100 * mean:.2f} (n={n}, no interval)"
    return f"{100 * mean:.2f} ± {100 * half:.2f} (n={n})"


def _num(value, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else format(value, fmt)


def markdown_table(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    rows = []
    for _, r in board.iterrows():
        rank = ("untested" if r["n"] == 1 else "–") if pd.isna(r["rank"]) else \
            f"{'=' if r['shared'] else ''}{int(r['rank'])}"
        leader = pd.notna(r["rank"]) and pd.isna(r["diff_vs_leader"])
        rows.append([rank, f"`{r['model']}`", r["family"], _pct(r["top1_mean"], r["top1_ci95"], int(r["n"])),
                     "leader" if leader else _signed(r["diff_vs_leader"], r["diff_ci95"]),
                     _num(r["p_vs_leader"], ".3f"), _num(r["p_leader_better"], ".2f"),
                     _num(100 * r["top5_mean"], ".2f"), _num(r["test_nll_mean"], ".3f"),
                     _num(100 * r["test_ece_mean"], ".2f"), _num(r["test_brier_mean"], ".3f"),
                     _num(r["params"] / 1e6, ".2f"), _num(r["gflops"], ".3f"),
                     _sharing(_num(r["train_images_per_second"], ".0f"), r["host_workers"]),
                     _sharing(_num(r["inference_latency_ms"], ".2f"), r["probe_host_workers"]),
                     _sharing(_num(r["inference_images_per_second"], ".0f"), r["probe_host_workers"]),
                     _num(r["peak_memory_mb"], ".0f") + (" †" if r["costs_source"] == "in run" else ""),
                     _num(r["wall_seconds"], ".0f"), r["not_done"] or "–"])
    headers = ["rank", "model", "family", "test top-1 % (mean ± 95% CI)", "Δ vs leader (points)", "p (Holm)",
               "P(leader > it)", "top-5 %", "NLL", "ECE %", "Brier", "params (M)", "GFLOPs", "train img/s",
               "latency (ms)", "infer img/s", "peak mem (MB)", "wall (s)", "not finished"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _sharing(value: str, cells) -> str:
    """A timing, with how many of the study's cells shared the machine while it was taken when more than one did."""
    return value if pd.isna(cells) or cells <= 1 or value == "–" else f"{value} ({int(cells)} sharing)"


def _signed(value, half) -> str:
    if pd.isna(value):
        return "–"
    return f"{100 * value:+.2f} ± {100 * half:.2f}"


def pareto_front(cost: np.ndarray, accuracy: np.ndarray, cheaper_is_lower: bool = True) -> np.ndarray:
    """Indices of the points no other point beats on both cost and accuracy, ordered by cost."""
    sign = 1 if cheaper_is_lower else -1
    order = np.argsort(sign * cost, kind="stable")
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.asarray(front, dtype=int)


def load(path: str | Path) -> tuple[str, Path]:
    """(name, results directory) from a study's results directory, a study file (its results where the study
    wrote them: study/results.py remembers), or a folder of single runs (`benchbench report runs/`)."""
    path = Path(path)
    if path.suffix == ".toml":
        from benchbench.study.file import load_study
        from benchbench.study.results import written_to

        name = load_study(path, check_models=False).name
        directory = written_to(path) or Path("results") / name
    else:
        directory, name = path, path.resolve().name
    if not (directory / "runs.csv").exists() and not _run_dirs(directory):
        raise RuntimeError(f"{directory} holds no results (no study's runs.csv, no run directory with a run.json): "
                           "run the study first, or pass its results folder or a folder of `benchbench run`s")
    return name, directory


def _run_dirs(directory: Path) -> list[Path]:
    """The finished single runs in a folder (`benchbench run --out FOLDER`): sub-folders with a run.json."""
    return sorted(p.parent for p in Path(directory).glob("*/run.json")) if Path(directory).is_dir() else []


def _inputs(directory: Path) -> tuple[pd.DataFrame, list[str], list[dict], Path, bytes]:
    """(runs table, its absent columns, records, the folder of run directories, runs.csv's bytes): a study's
    files, or the table made from the run.json of each single run in the folder."""
    if (directory / "runs.csv").exists():
        runs, absent = _read_runs(directory / "runs.csv")
        return runs, absent, _records(directory), directory / "runs", (directory / "runs.csv").read_bytes()
    from benchbench.run.config import RunConfig
    from benchbench.study.queue import Cell
    from benchbench.study.results import COLUMNS, row

    records = [json.loads((run / "run.json").read_text()) for run in _run_dirs(directory)]
    frame = pd.DataFrame([row("", Cell(RunConfig.from_resolved(r["config"]), "done", r)) for r in records],
                         columns=COLUMNS)
    return frame, [], records, directory, frame.to_csv(index=False).encode()


SINGLE_RUNS = {"protocol": "runs", "description": "Single runs of `benchbench run` in one folder, reported "
               "together: no study held their recipes equal."}


def write_report(results: str | Path, out: str | Path = "reports") -> Path:
    """Writes <out>/<name>/leaderboard.md, runs.csv and the figures; returns the leaderboard's path."""
    name, directory = load(results)
    runs, absent, records, runs_dir, table = _inputs(directory)
    saved = _predictions(runs_dir, records)
    target = Path(out) / name
    board = leaderboard(runs, saved, run_costs.read_all(directory / "costs")) if len(runs) else \
        pd.DataFrame(columns=["dataset"])
    with io.atomic_dir(target) as tmp:  # readers, and other workers writing it too, never see half a report
        study = _study(directory) if (directory / "runs.csv").exists() else SINGLE_RUNS
        sections = [_header(name, study, runs, records)]
        if absent:
            sections.append(f"runs.csv has no column {', '.join(absent)}: shown as –.")
        if not len(runs):
            sections.append("runs.csv lists no cells yet: run the study (it writes one row per cell).")
        for dataset, rows in board.groupby("dataset", sort=False):
            own = runs[runs["dataset"] == dataset]
            figures = _figures(dataset, own, rows, records, tmp) + _reliability(dataset, own, rows, saved, tmp)
            parts = [f"## {dataset}", _protocol(own), power_statement(own, saved), markdown_table(rows),
                     _notes(rows), time_to_target(records, dataset, study.get("target_val_top1")),
                     "\n".join(f"![{title}]({file})" for title, file in figures)]
            sections.append("\n\n".join(part for part in parts if part))
        (tmp / "leaderboard.md").write_text("\n\n".join(sections).rstrip() + "\n")
        (tmp / "runs.csv").write_bytes(table)
        board.to_csv(tmp / "leaderboard.csv", index=False)
    return target / "leaderboard.md"


def log_to_wandb(report_dir: Path, out: Path, name: str) -> str:
    """The report as a W&B run: each data set's leaderboard (every column of leaderboard.csv, the intervals as
    numbers), the figures, and leaderboard.md/.csv, runs.csv and every run's test predictions as an artifact."""
    from benchbench.tracking import log_report

    board = pd.read_csv(report_dir / "leaderboard.csv")
    files = {file: report_dir / file for file in ("leaderboard.md", "leaderboard.csv", "runs.csv")}
    runs_dir = out / "runs" if (out / "runs.csv").exists() else out  # a study's results, or a folder of runs
    files.update({f"predictions/{p.parent.name}.npz": p for p in sorted(runs_dir.glob("*/predictions.npz"))})
    return log_report(out, name, tables={f"leaderboard/{d}": rows for d, rows in board.groupby("dataset", sort=False)},
                      images=sorted(report_dir.glob("*.png")), files=files,
                      description=f"leaderboard, cells and per-example test predictions of {name}")


def tracking_of(results: str | Path) -> str:
    """The tracking backend the study used ("none" for results written before study.json recorded it)."""
    return _study(load(results)[1]).get("tracking") or "none"


def _read_runs(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """runs.csv, and the report's columns it lacks (filled with NaN). Without a cell's identity and status
    there is nothing to report: RuntimeError naming what is wrong."""
    try:
        runs = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise RuntimeError(f"{path} is empty; start the study again to rewrite it") from None
    except (pd.errors.ParserError, UnicodeDecodeError):
        raise RuntimeError(f"{path} is not a CSV table; start the study again to rewrite it") from None
    lacking = [column for column in ("model", "dataset", "seed", "status", "test_top1") if column not in runs]
    if lacking:
        raise RuntimeError(f"{path} has no column {', '.join(lacking)}: not a benchbench results table; start the "
                           "study again to rewrite it")
    absent = [column for column in NEEDED if column not in runs]
    return runs.assign(**dict.fromkeys(absent, float("nan"))).assign(family=lambda f: f["family"].fillna("?")), \
        absent


def _records(directory: Path) -> list[dict]:
    path = directory / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _predictions(runs_dir: Path, records: list[dict]) -> dict[str, dict]:
    """Run id -> its saved test predictions, for the runs whose predictions file is there and readable."""
    saved = {}
    for record in records:
        path = runs_dir / record["run_id"] / (record.get("predictions") or predictions.FILE)
        try:
            saved[record["run_id"]] = predictions.load(path)
        except (OSError, ValueError, KeyError):
            continue  # reported without the test-set share: the header says which models lack it
    return saved


def _study(directory: Path) -> dict:
    return json.loads((directory / "study.json").read_text()) if (directory / "study.json").exists() else {}


def _header(name: str, study: dict, runs: pd.DataFrame, records: list[dict]) -> str:
    env = records[0]["environment"] if records else {}
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "keras", "tensorflow", "numpy") if k in env)
    commits = sorted({r["environment"].get("git_commit") or "unknown" for r in records})
    protocol = _protocol_line(study) + _deviations(study.get("deviations") or {})
    lines = [f"# Leaderboard: {name}", "",
             study.get("description") or "",
             "",
             f"- **Study**: `{name}`" + (f" (`{study['file']}`)" if study.get("file") else "")
             + f", {runs['model'].nunique()} models x {runs['dataset'].nunique()} dataset(s) x "
               f"{runs['seed'].nunique()} seeds = {len(runs)} cells, {int((runs['status'] == 'done').sum())} finished",
             f"- **Protocol**: {protocol}; "
             "test top-1 of the best-validation epoch's weights",
             f"- **Environment**: {env.get('device', 'unknown device')}, {env.get('cpu_count', '?')} CPUs, "
             f"backend {env.get('backend', '?')}; {versions}",
             f"- **Code**: git {', '.join(c[:10] for c in commits)}; report generated "
             f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
             f"- **Statistics**: test top-1 = mean over seeds ± half-width of its {100 * (1 - stats.ALPHA):.0f}% "
             "interval, counting seed-to-seed variance and the test set's sampling error (a random-effects "
             "variance with Welch-Satterthwaite t; models compared image by image on the shared test set, seeds "
             "unpaired). Δ = difference to the leader (the best mean among tested models) with its interval; p = "
             "two-sided, Holm-adjusted over every pair of tested models. Rank = 1 + the number of models "
             f"significantly better at {stats.ALPHA} (made monotone in the mean); `=k` marks a shared rank. "
             "P(leader > it) = the chance that a leader's seed scores above this model's (ties count half). A model "
             "with one finished seed is untested (its seed variance is unknown). NLL, ECE (15 equal-width "
             "confidence bins) and Brier score: means over seeds. See README, \"Reading a leaderboard\".",
             "- **Costs**: params, forward GFLOPs per image, inference latency (batch 1) and throughput (the "
             "study's batch size) from forward passes chained in one compiled loop (no Python dispatch), and peak "
             "memory (host RSS on CPU, GPU memory on a GPU) of training steps at the study's batch size: each "
             "measured once per model configuration in a fresh process (costs/, benchbench/run/costs.py), so no "
             "figure depends on what ran before it; † marks a model measured inside its run's long-lived worker "
             "instead (the study ran with costs = \"in_run\"). Training images/s: median step time inside the runs' "
             "fit, median over seeds. Any timing taken while more than one of the study's cells ran on the machine "
             "says how many (\"2 sharing\": the cores were split). Wall: seconds per run, median over seeds."]
    return "\n".join(line for line in lines)


def _protocol_line(study: dict) -> str:
    """What the study held equal (study.json; older results without a declared protocol get the old wording)."""
    if study.get("tune"):
        return _tuned(study["tune"])
    if study.get("budget_tflops"):
        return _flops(study)
    if study.get("budget_seconds"):
        return _seconds(study)
    if study.get("tuned"):
        return "tuned (each model searched on validation first, see the study file)"
    if study.get("protocol") == "runs":
        return "none: single runs, each trained as its own command said (compare runs of equal recipes only)"
    if study.get("protocol") == "recipe":
        return "recipe: the same recipe, epochs, batch size, image size and augmentation for every model"
    return "one fixed recipe per model (the study file)"


def _deviations(deviations: dict) -> str:
    """Each model's declared departures from the protocol, with the study file's reason."""
    if not deviations:
        return ""
    parts = [f"`{model}` " + ", ".join(f"{k} {v}" for k, v in d["fields"].items()) + f" ({d['reason']})"
             for model, d in deviations.items()]
    return "; declared deviations: " + "; ".join(parts)


def _flops(study: dict) -> str:
    spent = "; ".join(f"`{key.split('/')[0]}` {d['epochs']} epochs, {d['tflops']:g} TFLOPs"
                      for key, d in (study.get("budget") or {}).items())
    return (f"flops: the same recipe, batch size, image size and augmentation for every model, and the same "
            f"{study['budget_tflops']:g} training TFLOPs per run (3 x forward FLOPs x training images x epochs, "
            f"epochs derived per model: {spent})")


def _seconds(study: dict) -> str:
    spent = "; ".join(f"`{key.split('/')[0]}` {d['epochs']} epochs, {d['seconds']:g} s at "
                      f"{1e3 * d['step_seconds']:.1f} ms/step" for key, d in (study.get("budget") or {}).items())
    return (f"seconds: the same recipe, batch size, image size and augmentation for every model, and the same "
            f"{study['budget_seconds']:g} s of training per run on this machine (steps per epoch x the median "
            f"training step timed in a fresh process x epochs, epochs derived per model: {spent}; the runs' own "
            "step times are the training images/s column)")


def _tuned(tune: dict) -> str:
    n = tune.get("epochs")
    epochs = f"{n} epoch{'s' if n != 1 else ''} each" if n else "the study's epochs"
    pruning = ("no pruning" if tune["pruner"] == "none" else
               f"{tune['pruner']} pruning from the first epoch after the warm-up")
    return (f"tuned: each model searched on validation with {tune['trials']} trials ({epochs}, {pruning}) on "
            f"search seed {tune['seed']}, which no reported cell uses")


def _protocol(runs: pd.DataFrame) -> str:
    parts = []
    for model, own in runs.groupby("model", sort=False):
        epochs = sorted(own["epochs"].dropna().astype(int).unique())
        sizes = sorted(own["image_size"].dropna().astype(int).unique())
        parts.append(f"`{model}` {'/'.join(map(str, epochs))} epochs"
                     + (f" at {'/'.join(map(str, sizes))} px" if sizes else ""))
    return "Per model: " + "; ".join(parts) + "." + _compute_spread(runs)


def _compute_spread(runs: pd.DataFrame) -> str:
    """How far apart the models' forward compute per image is: a comparison at one recipe may still give one
    model many times another's compute (a larger input inside the model, a finer patch grid)."""
    gflops = pd.to_numeric(runs["gflops"], errors="coerce").groupby(runs["model"], sort=False).median().dropna()
    if len(gflops) < 2 or gflops.min() <= 0:
        return ""
    low, high = gflops.idxmin(), gflops.idxmax()
    return (f" Forward compute per image: {gflops[low]:.3g} GFLOPs (`{low}`) to {gflops[high]:.3g} (`{high}`), "
            f"{gflops[high] / gflops[low]:.1f}x.")


def power_statement(runs: pd.DataFrame, saved: dict[str, dict]) -> str:
    """What this dataset's comparison can resolve: the smallest true difference it detects with 80% power, for
    its seeds and observed spreads (and how `report --seeds-needed` answers for a given difference)."""
    power = _power_inputs(runs, saved)
    if power is None:
        return ""
    seed_sd, image_variance, seeds, pairs = power
    smallest = stats.resolvable_difference(seed_sd, image_variance, seeds, pairs)
    test = (f"a test-set share of ±{100 * math.sqrt(image_variance):.2f} points on a difference"
            if image_variance else "no test-set share (no predictions saved)")
    return (f"Power: with {seeds} seeds per model, a seed SD of {100 * seed_sd:.2f} points and {test}, this "
            f"comparison resolves differences of {100 * smallest:.2f} points or more ({100 * stats.POWER:.0f}% power, "
            f"two-sided {stats.ALPHA}, Bonferroni over {pairs} pair(s)); `benchbench report RESULTS --seeds-needed "
            "POINTS` says how many seeds a smaller one needs.")


def _power_inputs(runs: pd.DataFrame, saved: dict[str, dict]) -> tuple[float, float, int, int] | None:
    """(pooled seed SD, median test-set variance of a difference, median seeds, pairs) over the tested models
    of one dataset; None when fewer than two models are tested."""
    done = runs[(runs["status"] == "done") & np.isfinite(pd.to_numeric(runs["test_top1"], errors="coerce"))]
    groups = [own for _, own in done.groupby("model", sort=False) if len(own) >= 2]
    if len(groups) < 2:
        return None
    dof = sum(len(g) - 1 for g in groups)
    seed_sd = math.sqrt(sum((len(g) - 1) * g["test_top1"].var(ddof=1) for g in groups) / dof)
    correct = [_correct(g.sort_values("seed"), saved) for g in groups]
    shares = [np.var(a.mean(0) - b.mean(0), ddof=1) / a.shape[1]
              for i, a in enumerate(correct) for b in correct[i + 1:]
              if a is not None and b is not None and a.shape[1] == b.shape[1]]
    pairs = len(groups) * (len(groups) - 1) // 2
    return seed_sd, float(np.median(shares)) if shares else 0.0, int(np.median([len(g) for g in groups])), pairs


def seeds_needed(results: str | Path, points: float) -> list[str]:
    """Per dataset of a study's results: how many seeds per model would resolve a true difference of `points`
    percentage points, at this study's observed spreads (`benchbench report --seeds-needed`)."""
    if not (math.isfinite(points) and points > 0):
        raise ValueError(f"--seeds-needed must be a positive number of percentage points, got {points:g}")
    name, directory = load(results)
    runs, _, records, runs_dir, _ = _inputs(directory)
    saved = _predictions(runs_dir, records)
    lines = []
    for dataset, own in runs.groupby("dataset", sort=False):
        power = _power_inputs(own, saved)
        if power is None:
            lines.append(f"{dataset}: fewer than two models with two finished seeds: no spread to plan from")
            continue
        seed_sd, image_variance, seeds, pairs = power
        needed = stats.seeds_needed(points / 100, seed_sd, image_variance, pairs)
        lines.append(f"{dataset}: {points:g} points needs {needed} seeds per model (now {seeds})" if needed else
                     f"{dataset}: {points:g} points is beyond any number of seeds: the test set's own sampling "
                     f"error (±{100 * math.sqrt(image_variance):.2f} points) is too large: test on more images")
    return [f"{name}: seeds per model for {stats.POWER:.0%} power (two-sided {stats.ALPHA}, Bonferroni over the pairs)",
            *lines]


def time_to_target(records: list[dict], dataset: str, target: float | None) -> str:
    """Per model: how many runs reached the study's validation target, and the median over those of the first
    epoch that did and of the training seconds to it (that epoch x steps per epoch x the run's median step time:
    steady-state training, without tracing, validation or bookkeeping)."""
    if not target:
        return ""
    rows = []
    for model, own in _by_model(records, dataset).items():
        reached = [(epoch, epoch * r["resolved"]["steps_per_epoch"] * r["train_step_seconds_median"])
                   for r in own for epoch in [_first_epoch(r, target)] if epoch is not None]
        rows.append({"model": f"`{model}`", "runs reached": f"{len(reached)} of {len(own)}",
                     "epochs (median)": _num(np.median([e for e, _ in reached]), ".1f") if reached else "–",
                     "training seconds (median)": _num(np.median([t for _, t in reached]), ".0f") if reached else "–"})
    return (f"Time to {100 * target:g} % validation top-1 (first epoch reaching it; seconds = that epoch x steps "
            f"per epoch x the run's median step time):\n\n{pd.DataFrame(rows).to_markdown(index=False)}")


def _by_model(records: list[dict], dataset: str) -> dict[str, list[dict]]:
    """The finished runs' records of one data set, by model, in file order."""
    models: dict[str, list[dict]] = {}
    for record in records:
        if record["config"]["dataset"] == dataset and record.get("train_step_seconds_median"):
            models.setdefault(record["config"]["model"], []).append(record)
    return models


def _first_epoch(record: dict, target: float) -> int | None:
    return next((h["epoch"] for h in record["metrics"]["history"] if h.get("val_top1", -1) >= target), None)


def _notes(rows: pd.DataFrame) -> str:
    notes = []
    if (rows["n"] == 1).any():
        notes.append("Models with one finished seed are untested: no interval, no test, no rank.")
    if (rows["not_done"] != "").any():
        notes.append("Unfinished seeds are listed, not averaged: their means cover the finished seeds only.")
    return " ".join(notes)


def _figures(dataset: str, runs: pd.DataFrame, board: pd.DataFrame, records: list[dict], folder: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    suffix = f"_{dataset_slug(dataset)}"
    done = board[board["n"] > 0].reset_index(drop=True)
    figures = []
    scatters = (("train_images_per_second", "training throughput (images/s)", 1, "accuracy_vs_throughput"),
                ("params", "parameters (millions)", 1e-6, "accuracy_vs_params"))
    for cost, label, scale, stem in () if done.empty else scatters:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        x = done[cost].to_numpy() * scale
        y = 100 * done["top1_mean"].to_numpy()
        err = 100 * done["top1_ci95"].fillna(0).to_numpy()
        sns.scatterplot(x=x, y=y, hue=done["family"], s=80, ax=ax)
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="grey", capsize=3, zorder=0)
        front = pareto_front(x, y, cheaper_is_lower=(cost == "params"))
        ax.plot(x[front], y[front], "--o", color="black", linewidth=1, markersize=13, markerfacecolor="none",
                label="Pareto front")
        for xi, yi, model in zip(x, y, done["model"]):
            ax.annotate(model, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=9)
        ax.set_xscale("log")
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, 0), min(high, 100.5))  # two-seed intervals are wide: keep the axis on [0, 100] %
        ax.set_xlabel(label)
        ax.set_ylabel("test top-1 (%), mean ± 95% CI")
        ax.set_title(f"{dataset}: accuracy vs {'cost' if cost == 'params' else 'speed'}")
        ax.legend(fontsize=8, loc="lower left")
        figures.append(_save(fig, folder, f"{stem}{suffix}.png", f"{dataset}: test top-1 vs {label}"))

    curves = [{"model": r["config"]["model"], "seed": r["seed"], "epoch": h["epoch"], "val_top1": 100 * h["val_top1"]}
              for r in records if r["config"]["dataset"] == dataset for h in r["metrics"]["history"]]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        sns.lineplot(data=pd.DataFrame(curves), x="epoch", y="val_top1", hue="model", errorbar=("pi", 100), ax=ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1 (%)")
        ax.set_title(f"{dataset}: learning curves (mean, band = min to max over seeds)")
        figures.append(_save(fig, folder, f"learning_curves{suffix}.png", f"{dataset}: learning curves"))

    finished = runs[runs["status"] == "done"].assign(test_top1_pct=lambda f: 100 * f["test_top1"])
    if len(finished):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        order = list(done["model"])
        state = np.random.get_state()
        np.random.seed(0)  # seaborn jitters the dots with NumPy's global generator: the same report, the same figure
        sns.stripplot(data=finished, x="model", y="test_top1_pct", order=order, hue="model", size=7, jitter=0.15,
                      ax=ax, legend=False)
        np.random.set_state(state)
        sns.pointplot(data=finished, x="model", y="test_top1_pct", order=order, errorbar=None, color="black",
                      markers="_", linestyles="none", ax=ax)
        ax.set_xlabel("")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{dataset}: every seed (dots) and the mean (bar)")
        ax.tick_params(axis="x", rotation=20)
        figures.append(_save(fig, folder, f"seeds{suffix}.png", f"{dataset}: per-seed test top-1"))
    return figures


def _reliability(dataset: str, runs: pd.DataFrame, board: pd.DataFrame, saved: dict[str, dict],
                 folder: Path) -> list:
    """The reliability diagram: per model, accuracy against confidence in the ECE's bins, every seed's test
    predictions pooled; the diagonal is perfect calibration."""
    import matplotlib.pyplot as plt

    done = runs[runs["status"] == "done"]
    curves = []
    for model in board["model"]:
        pooled = [saved[r] for r in done[done["model"] == model].get("run_id", []) if r in saved]
        if pooled:
            table = predictions.reliability(np.concatenate([a["p_max"] for a in pooled]),
                                            np.concatenate([predictions.correct(a) for a in pooled]))
            curves.append((model, table))
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 100], [0, 100], ":", color="grey", label="perfectly calibrated")
    for model, table in curves:
        used = table["count"] > 0
        ax.plot(100 * table["confidence"][used], 100 * table["accuracy"][used], "-o", markersize=4, label=model)
    ax.set_xlabel("confidence (%): the top class's probability")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{dataset}: reliability ({predictions.ECE_BINS} bins, seeds pooled)")
    ax.legend(fontsize=8, loc="upper left")
    return [_save(fig, folder, f"reliability_{dataset_slug(dataset)}.png", f"{dataset}: reliability diagram")]


def _save(fig, folder: Path, name: str, title: str) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(folder / name, dpi=110)
    plt.close(fig)
    return title, name
