"""Leaderboards and figures from a study's results: pandas aggregates, scipy tests, tabulate renders markdown,
seaborn draws.

Per dataset, one row per model: test top-1 mean with a 95% t-interval over its seeds (n shown; failed or missing
seeds listed, never averaged away), a paired t-test against the leader over the seeds both finished (models
the test cannot separate from the leader share its rank), and the cost columns measured by the runs.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchbench import io
from benchbench.stats import ALPHA, paired_p_value, t_interval

COSTS = ("params", "gflops", "train_images_per_second", "inference_latency_ms", "peak_memory_mb", "wall_seconds")
MEASURED = ("top1_mean", "top1_ci95", "top5_mean", *COSTS)  # NaN for a model with no finished seed
# What a report needs of runs.csv (study/results.py writes more).
NEEDED = ("model", "family", "dataset", "seed", "status", "test_top1", "test_top5", "epochs", "image_size", *COSTS)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model), ranked within each dataset by test top-1 mean."""
    rows = []
    for dataset, cells in runs.groupby("dataset", sort=False):
        # A cell counts only with a finite test accuracy: "done" with none (a hand-edited or foreign runs.csv)
        # is listed as missing its result, never ranked.
        usable = (cells["status"] == "done") & np.isfinite(pd.to_numeric(cells["test_top1"], errors="coerce"))
        done = cells[usable]
        board = []
        for model, own in cells.groupby("model", sort=False):
            finished = done[done["model"] == model].sort_values("seed")
            missing = own[~usable[own.index]]
            row = {"dataset": dataset, "model": model, "family": own["family"].iloc[0], "n": len(finished),
                   "seeds": len(own), **dict.fromkeys(MEASURED, float("nan")),
                   "not_done": ", ".join(f"seed {s} {'no result' if st == 'done' else st}"
                                         for s, st in zip(missing["seed"], missing["status"]))}
            if len(finished):
                row["top1_mean"], row["top1_ci95"] = t_interval(finished["test_top1"])
                row["top5_mean"] = float(finished["test_top5"].mean())
                for column in COSTS:
                    row[column] = float(finished[column].median())
            board.append(row)
        board = pd.DataFrame(board)
        ranked = board[board["n"] > 0].sort_values("top1_mean", ascending=False, kind="stable")
        leader = ranked.iloc[0]["model"] if len(ranked) else None
        leader_runs = done[done["model"] == leader].set_index("seed")["test_top1"]
        position = {}
        for i, (_, row) in enumerate(ranked.iterrows()):
            own = done[done["model"] == row["model"]].set_index("seed")["test_top1"]
            shared = sorted(set(own.index) & set(leader_runs.index))
            p = None if row["model"] == leader else paired_p_value(own[shared], leader_runs[shared])
            tied = row["model"] == leader or (p is not None and p >= ALPHA)
            position[row["model"]] = (1 if tied else i + 1, p, len(shared), tied and row["model"] != leader)
        for _, row in board.iterrows():
            rank, p, shared, tied = position.get(row["model"], (None, None, 0, False))
            rows.append({**row.to_dict(), "rank": rank, "p_vs_leader": p, "shared_seeds": shared, "tied": tied})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["dataset", "rank", "top1_mean"], ascending=[True, True, False], na_position="last",
                             kind="stable")


def _pct(mean, half, n) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{100 * mean:.2f} (n={n}, no interval)"
    return f"{100 * mean:.2f} ± {100 * half:.2f} (n={n})"


def _num(value, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def markdown_table(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    rows = []
    for _, r in board.iterrows():
        rank = "–" if pd.isna(r["rank"]) else (f"={int(r['rank'])}" if r["tied"] else str(int(r["rank"])))
        p = "leader" if r["rank"] == 1 and not r["tied"] else (
            "–" if pd.isna(r["p_vs_leader"]) else f"{r['p_vs_leader']:.3f} ({int(r['shared_seeds'])} seeds)")
        rows.append([rank, f"`{r['model']}`", r["family"], _pct(r.get("top1_mean"), r.get("top1_ci95"), int(r["n"])),
                     _num(100 * r["top5_mean"] if pd.notna(r.get("top5_mean")) else None, ".2f"), p,
                     _num(r.get("params", float("nan")) / 1e6, ".2f"), _num(r.get("gflops"), ".3f"),
                     _num(r.get("train_images_per_second"), ".0f"), _num(r.get("inference_latency_ms"), ".1f"),
                     _num(r.get("peak_memory_mb"), ".0f"), _num(r.get("wall_seconds"), ".0f"),
                     r["not_done"] or "–"])
    headers = ["rank", "model", "family", "test top-1 % (mean ± 95% CI)", "top-5 %", "p vs leader", "params (M)",
               "GFLOPs", "train img/s", "latency (ms)", "peak mem (MB)", "wall (s)", "not finished"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


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
    """(study name, results directory) from a results directory or a study file."""
    path = Path(path)
    if path.suffix == ".toml":
        from benchbench.study.file import load_study

        name = load_study(path, check_models=False).name
        directory = Path("results") / name
    else:
        directory, name = path, path.name
    if not (directory / "runs.csv").exists():
        raise RuntimeError(f"{directory / 'runs.csv'} does not exist: run the study first "
                           f"(benchbench study studies/<name>.toml), or pass its results directory")
    return name, directory


def write_report(results: str | Path, out: str | Path = "reports") -> Path:
    """Writes <out>/<study>/leaderboard.md, runs.csv and the figures; returns the leaderboard's path."""
    name, directory = load(results)
    runs, absent = _read_runs(directory / "runs.csv")
    records = _records(directory)
    target = Path(out) / name
    board = leaderboard(runs) if len(runs) else pd.DataFrame(columns=["dataset"])
    with io.atomic_dir(target) as tmp:  # readers, and other workers writing it too, never see half a report
        sections = [_header(name, directory, runs, records)]
        if absent:
            sections.append(f"runs.csv has no column {', '.join(absent)}: shown as –.")
        if not len(runs):
            sections.append("runs.csv lists no cells yet: run the study (it writes one row per cell).")
        for dataset, rows in board.groupby("dataset", sort=False):
            figures = _figures(dataset, runs[runs["dataset"] == dataset], rows, records, tmp)
            parts = [f"## {dataset}", _protocol(runs[runs["dataset"] == dataset]), markdown_table(rows),
                     _notes(rows), "\n".join(f"![{title}]({file})" for title, file in figures)]
            sections.append("\n\n".join(part for part in parts if part))
        (tmp / "leaderboard.md").write_text("\n\n".join(sections).rstrip() + "\n")
        (tmp / "runs.csv").write_bytes((directory / "runs.csv").read_bytes())
        board.to_csv(tmp / "leaderboard.csv", index=False)
    return target / "leaderboard.md"


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


def _header(name: str, directory: Path, runs: pd.DataFrame, records: list[dict]) -> str:
    study = json.loads((directory / "study.json").read_text()) if (directory / "study.json").exists() else {}
    env = records[0]["environment"] if records else {}
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "keras", "tensorflow", "numpy") if k in env)
    commits = sorted({r["environment"].get("git_commit") or "unknown" for r in records})
    protocol = ("tuned (each model searched on validation first, see the study file)" if study.get("tuned")
                else "one fixed recipe per model (the study file)")
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
             f"- **Statistics**: mean ± half-width of the 95% t-interval over seeds; p = two-sided paired t-test "
             f"against the leader over the seeds both finished; `=1` marks models not significantly different from "
             f"the leader at {ALPHA} (tied). Cost columns are medians over seeds: params and forward GFLOPs per "
             "image, training images/s (median step time inside fit), batch-1 inference latency, peak memory "
             "(host RSS on CPU), wall time per run."]
    return "\n".join(line for line in lines)


def _protocol(runs: pd.DataFrame) -> str:
    parts = []
    for model, own in runs.groupby("model", sort=False):
        epochs = sorted(own["epochs"].dropna().astype(int).unique())
        sizes = sorted(own["image_size"].dropna().astype(int).unique())
        parts.append(f"`{model}` {'/'.join(map(str, epochs))} epochs"
                     + (f" at {'/'.join(map(str, sizes))} px" if sizes else ""))
    return "Per model: " + "; ".join(parts) + "."


def _notes(rows: pd.DataFrame) -> str:
    notes = []
    if (rows["n"] == 1).any():
        notes.append("Models with one finished seed have no interval and cannot be tested against the leader.")
    if (rows["not_done"] != "").any():
        notes.append("Unfinished seeds are listed, not averaged: their means cover the finished seeds only.")
    return " ".join(notes)


def _figures(dataset: str, runs: pd.DataFrame, board: pd.DataFrame, records: list[dict], folder: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    suffix = f"_{dataset}"
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
        sns.stripplot(data=finished, x="model", y="test_top1_pct", order=order, hue="model", size=7, jitter=0.15,
                      ax=ax, legend=False)
        sns.pointplot(data=finished, x="model", y="test_top1_pct", order=order, errorbar=None, color="black",
                      markers="_", linestyles="none", ax=ax)
        ax.set_xlabel("")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{dataset}: every seed (dots) and the mean (bar)")
        ax.tick_params(axis="x", rotation=20)
        figures.append(_save(fig, folder, f"seeds{suffix}.png", f"{dataset}: per-seed test top-1"))
    return figures


def _save(fig, folder: Path, name: str, title: str) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(folder / name, dpi=110)
    plt.close(fig)
    return title, name
