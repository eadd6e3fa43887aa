"""reports/bench/<host>.md: the suite's measurements as tables, each target stated next to what was measured."""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path

from tabulate import tabulate

from benchbench import io
from benchbench.bench.speed import PROFILE_STEPS, SATURATED_SECONDS
from benchbench.bench.suite import (
    SUITE,
    TARGET_BF16_SPEEDUP,
    TARGET_FIT_SHARE,
    TARGET_MFU,
    TARGET_OVERHEAD,
    TARGET_PIPELINE_RATIO,
    TARGET_SUITE_MINUTES,
    TUTORIAL_MFU,
)
from benchbench.study.efficiency import PHASES


def _table(rows: list, headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _targeted(record: dict) -> bool:
    """Whether the record is one of the suite's fp32 configurations, for which the issue states targets."""
    return record["precision"] == "fp32" and not record["jit"] and _backend(record) == "tensorflow" and any(
        (c.model, c.image_size or record["reference_image_size"], c.batch_size, dict(c.model_args)) ==
        (record["model"], record["image_size"], record["batch_size"], record.get("model_args") or {})
        for c in SUITE if c.precision == "fp32")


def _label(record: dict) -> str:
    """`model`, with its options when it has any: the same model may be measured in two configurations."""
    options = ", ".join(f"{k}={v}" for k, v in sorted((record.get("model_args") or {}).items()))
    return f"`{record['model']}`" + (f" ({options})" if options else "")


def _key(record: dict) -> tuple:
    return record["model"], record["image_size"], record["batch_size"], _label(record)


def _backend(record: dict) -> str:
    return record.get("backend", "tensorflow")  # records written before backends were measured


def pair_markdown(records: list[dict]) -> str:
    """Each measured model next to its matched pair (models.matched_pair) measured at the same size, batch,
    precision and shared options: the token mixer's cost alone."""
    from benchbench.models import model_info

    lines = []
    for r in records:
        other = model_info(r["model"]).matched
        own = {k: v for k, v in (r.get("model_args") or {}).items() if k != "window_size"}  # attention's own option
        match = next((o for o in records if o["model"] == other and (o["image_size"], o["batch_size"], o["precision"])
                      == (r["image_size"], r["batch_size"], r["precision"]) and (o.get("model_args") or {}) == own),
                     None)
        if match:
            lines.append(f"- {_label(r)} against its matched pair {_label(match)}, {r['image_size']} px, batch "
                         f"{r['batch_size']}, {r['precision']}: {r['train_images_per_second']:.1f} against "
                         f"{match['train_images_per_second']:.1f} train img/s (the pair "
                         f"{match['train_images_per_second'] / r['train_images_per_second']:.2f}x as fast), "
                         f"{r['gflops']:.3f} against {match['gflops']:.3f} GFLOPs/img, MFU "
                         f"{100 * r['mfu']:.1f} against {100 * match['mfu']:.1f} %.")
    return "\n".join(lines)


def suite_markdown(records: list[dict]) -> str:
    """The speed table: every configuration, fp32 MFU against the family targets, bf16 speed-ups."""
    fp32 = {_key(r): r for r in records if r["precision"] == "fp32"}
    rows = []
    for r in records:
        key = _key(r)
        target = TARGET_MFU.get(r["family"]) if _targeted(r) else None
        # The tutorial figures are for the tutorial configurations: fp32 at the model's reference size.
        tutorial = TUTORIAL_MFU.get(r["model"]) if target and r["image_size"] == r["reference_image_size"] else None
        speedup = r["train_images_per_second"] / fp32[key]["train_images_per_second"] if (
            r["precision"] != "fp32" and key in fp32) else None
        spread = _spread(r)
        precision = r["precision"] + (" +XLA" if r["jit"] else "")
        rows.append([_label(r), r["image_size"], r["batch_size"], precision,
                     f"{r['gflops']:.3f}", f"{r['train_images_per_second']:.1f}{spread}",
                     f"{1000 * r['train_step_seconds']:.0f}",
                     f"{r['inference_images_per_second']:.0f}", f"{r['latency_ms']:.1f}", f"{r['peak_memory_mb']:.0f}",
                     f"{r['peak_gflops']:.0f}", f"{100 * r['mfu']:.1f}",
                     f"≥ {100 * target:.0f}" if target else "–", f"{100 * tutorial:.1f}" if tutorial else "–",
                     f"{speedup:.2f}x (target ≥ {TARGET_BF16_SPEEDUP}x)" if speedup else "–"])
    headers = ["model", "px", "batch", "precision", "GFLOPs/img", "train img/s (range)", "step (ms)", "infer img/s",
               "latency (ms)", "peak mem (MB)", "peak GFLOP/s", "MFU %", "target MFU %", "tutorial MFU %",
               "speed-up vs fp32"]
    return _table(rows, headers)


def record_markdown(record: dict) -> str:
    """One configuration's row of the speed table, and its op-type profile when it was profiled."""
    text = suite_markdown([record])
    if record["profile"]:
        text += "\n\nTraining step by op type (TF profiler; shares of op time):\n\n" + tabulate(
            [[p["op"], f"{p['ms_per_step']:.1f}", f"{100 * p['share']:.1f}"] for p in record["profile"]],
            headers=["op", "ms / step", "share %"], tablefmt="github", disable_numparse=True)
    return text


# Op types that do the counted FLOPs (matmuls and convolutions, forward and backward); the rest of the op time
# is what keeps MFU below the matmul peak.
FLOP_OPS = ("MatMul", "BatchMatMul", "Conv2D", "Conv2DBackprop", "DepthwiseConv2d", "FusedConv2D", "Einsum")


def _does_flops(op: str) -> bool:
    return op.lstrip("_").startswith(FLOP_OPS)


def profiles_markdown(records: list[dict], top: int = 8) -> str:
    """Each profiled configuration's training step by op type: the FLOP-doing ops' share of op time, and the
    op types that take the most."""
    parts = []
    for r in records:
        if not r.get("profile"):
            continue
        flop_share = sum(p["share"] for p in r["profile"] if _does_flops(p["op"]))
        rows = [[p["op"], "matmul/conv" if _does_flops(p["op"]) else "", f"{p['ms_per_step']:.1f}",
                 f"{100 * p['share']:.1f}"] for p in r["profile"][:top]]
        parts.append(f"**{_label(r)}** ({r['family']}, {r['image_size']} px, batch {r['batch_size']}, "
                     f"{r['precision']}; MFU {100 * r['mfu']:.1f} %): matmuls and convolutions take "
                     f"{100 * flop_share:.0f} % of the op time among the {len(r['profile'])} costliest op types.\n\n"
                     + _table(rows, ["op type", "kind", "ms / step", "share of op time %"]))
    return "\n\n".join(parts)


def pipeline_markdown(pipelines: list[dict], records: list[dict]) -> str:
    rows = []
    for p in pipelines:
        ratio = _pipeline_ratio(p, records)
        fastest = p["images_per_second"] / ratio if ratio else None
        rows.append([p["dataset"], p["image_size"], p["batch_size"], p["augment"],
                     "x".join(map(str, p["stand_in_size"])), f"{p['images_per_second']:.0f}", f"`{p['model']}`",
                     f"{fastest:.1f}" if fastest else "–", f"{ratio:.1f}x" if ratio else "–",
                     f"≥ {TARGET_PIPELINE_RATIO:.0f}x"])
    headers = ["dataset", "px", "batch", "augment", "stand-in image", "pipeline img/s", "model it feeds",
               "model train img/s (fastest precision)", "ratio", "target"]
    return _table(rows, headers)


def _fits(runs: list[dict]) -> str:
    """Each process's fit seconds and their median: "17.0, 18.7, 17.1 (17.1)"."""
    fits = [r["fit"] for r in runs]
    return f"{', '.join(f'{fit:.1f}' for fit in fits)} ({statistics.median(fits):.1f})"


def overhead_markdown(o: dict) -> str:
    row = [f"`{o['model']}` on {o['dataset']}, {o['epochs']} epochs", _fits(o["bare_runs"]), _fits(o["runner_runs"]),
           f"{o['bookkeeping_seconds']:.2f}", f"{100 * o['overhead']:+.1f}", f"≤ {100 * TARGET_OVERHEAD:.0f}",
           f"{100 * o['steady_overhead']:+.1f}", f"{100 * o['fit_overhead']:+.1f} / {100 * o['bookkeeping_share']:.1f}",
           f"{o['setup_seconds']:.1f} / {o['final_seconds']:.1f}"]
    headers = ["run", "bare fits (s), median", "runner fits (s), median", "bookkeeping (s)", "overhead %", "target %",
               "after the first epoch %", "fit / bookkeeping %", "setup / final (s)"]
    parts = [("first epoch", "first epoch's training part (s)"), ("train", "epochs' training parts (s)"),
             ("validation", "validation passes (s)"), ("rest", "rest of fit (s)")]
    split = [[side, *(f"{o['phases'][side][part]:.2f}" for part, _ in parts)] for side in ("bare", "runner")]
    return (_table([row], headers) + "\n\nWhere each side's fit went (medians; epoch-level callbacks only, so the "
            "steps are dispatched as in a plain fit):\n\n" + _table(split, ["side", *(header for _, header in parts)]))


def backends_markdown(records: list[dict], missing: list[str]) -> str:
    """The reference configurations on every backend against TensorFlow's: training and inference speed, and the
    first training step (trace and compile) apart."""
    tensorflow = {_key(r): r for r in records if _backend(r) == "tensorflow" and r["precision"] == "fp32"}
    rows = []
    for r in sorted((r for r in records if r["precision"] == "fp32" and _key(r) in tensorflow
                     and any(_key(o) == _key(r) and _backend(o) != "tensorflow" for o in records)),
                    key=lambda r: (_key(r), _backend(r) != "tensorflow", _backend(r))):
        base = tensorflow[_key(r)]
        rows.append([_label(r), r["image_size"], r["batch_size"], _backend(r), r.get("compiler", "–"),
                     f"{r['train_images_per_second']:.1f}{_spread(r)}",
                     f"{r['train_images_per_second'] / base['train_images_per_second']:.2f}x",
                     f"{r['inference_images_per_second']:.0f}",
                     f"{r['inference_images_per_second'] / base['inference_images_per_second']:.2f}x",
                     f"{r['first_step_seconds']:.1f}" if r.get("first_step_seconds") else "–",
                     f"{r['peak_memory_mb']:.0f}", f"{100 * r['mfu']:.1f}"])
    note = "".join(f"\n\n{b}: not installed here (pip install -e '.[{b}]'), not measured." for b in missing)
    return _table(rows, ["model", "px", "batch", "backend", "compiled as", "train img/s (range)", "vs TF",
                         "infer img/s", "vs TF", "first step (s)", "peak mem (MB)", "MFU %"]) + note


def _spread(r: dict) -> str:
    runs = r.get("repeats") or []
    return (f" ({min(x['train_images_per_second'] for x in runs):.0f}–"
            f"{max(x['train_images_per_second'] for x in runs):.0f})") if len(runs) > 1 else ""


def processes_markdown(records: list[dict]) -> str:
    """Each row's processes, MFU beside the memory copy rate measured in the same process, and how the two rank
    together over every process of a row that had more than one: whether a slow process is a slow memory system."""
    from scipy import stats

    rows, relative, copies = [], [], []
    for r in records:
        runs = [x for x in r.get("repeats") or [] if x.get("copy_gb_s")]
        if len(runs) < 2:
            continue
        rows.append([_label(r), _backend(r), ", ".join(f"{100 * x['mfu']:.1f} / {x['copy_gb_s']:.1f}" for x in runs)])
        middle = statistics.median(x["mfu"] for x in runs)
        relative += [x["mfu"] / middle for x in runs]
        copies += [x["copy_gb_s"] for x in runs]
    if not rows:
        return ""
    text = _table(rows, ["model", "backend", "processes: MFU % / copy GB/s (slowest first)"])
    if len(copies) >= 5:
        rho, p = stats.spearmanr(relative, copies)
        text += (f"\n\nOver these {len(copies)} processes, the rank correlation (Spearman) of a process's MFU over "
                 f"its row's median with its copy rate: rho = {rho:.2f} (two-sided p = {p:.2g}; it assumes the "
                 "processes independent).")
    return text


def precision_markdown(probe: dict) -> str:
    """What precision = "auto" measured and chose on this machine."""
    rows = [[name, f"{seconds['fp32'] * 1000:.0f}", f"{seconds['bf16'] * 1000:.0f}", f"{probe['speedups'][name]:.2f}x"]
            for name, seconds in probe["step_seconds"].items()]
    return (_table(rows, ["probe model", "fp32 step (ms)", "bf16 step (ms)", "bf16 speed-up"]) +
            f"\n\nChoice: **{probe['precision']}** (bf16 only if every probe model is at least "
            f"{probe['margin']:.2f}x faster in bf16; {probe['rounds']} alternating rounds of {probe['round_steps']} "
            "steps, median of the rounds' ratios).")


def study_markdown(study: dict) -> str:
    """Where a study's time went, per phase, as shares of its workers' time."""
    names = {**PHASES, "outside": "outside cells (start-up, storage, waiting for the last cells)"}
    rows = [[names[phase], f"{seconds:.0f}", f"{100 * seconds / study['worker_seconds']:.1f}"]
            for phase, seconds in sorted(study["seconds"].items(), key=lambda item: -item[1])]
    seeds = len(study["seeds"])
    which = f"its {seeds} seeds" if seeds == study["all_seeds"] else f"{seeds} of its {study['all_seeds']} seeds"
    return (f"`{study['study']}` at {which}, {study['cells']} cells, {study['workers']} workers: "
            f"{study['wall_seconds'] / 60:.1f} min of wall time.\n\n" +
            _table(rows, ["phase", "worker seconds", "share %"]))


def sections_markdown(suite: dict) -> str:
    """Where `make bench`'s own wall time went, part by part (its 20-minute target)."""
    rows = [[part, f"{seconds / 60:.1f}", f"{100 * seconds / suite['seconds']:.0f}"]
            for part, seconds in suite["sections"].items()]
    return _table(rows + [["total", f"{suite['seconds'] / 60:.1f}", "100"]], ["part", "minutes", "share %"])


def targets_markdown(suite: dict) -> str:
    """Every target next to what was measured, and whether it is met."""
    rows = [[what, measured, target, "yes" if met else ("–" if met is None else "**no**")]
            for what, measured, target, met in _targets(suite)]
    return _table(rows, ["target", "measured", "target", "met"])


def _targets(suite: dict) -> list[tuple]:
    records = suite["records"]
    rows = [(f"fp32 training MFU, {_label(r)} {r['image_size']} px", f"{100 * r['mfu']:.1f} %",
             f"≥ {100 * TARGET_MFU[r['family']]:.0f} %", r["mfu"] >= TARGET_MFU[r["family"]])
            for r in records if _targeted(r) and r["family"] in TARGET_MFU]
    fp32 = {_key(r): r for r in records if r["precision"] == "fp32" and _backend(r) == "tensorflow"}
    for r in records:
        if r["precision"] == "bf16" and _key(r) in fp32 and r["model"] in TUTORIAL_MFU:
            speedup = r["train_images_per_second"] / fp32[_key(r)]["train_images_per_second"]
            rows.append((f"bf16 speed-up on AMX, {_label(r)}", f"{speedup:.2f}x", f"≥ {TARGET_BF16_SPEEDUP}x",
                         speedup >= TARGET_BF16_SPEEDUP if suite["amx"] else None))
    if not any(r["precision"] == "bf16" for r in records):
        rows.append(("bf16 training speed-up over fp32 on AMX (reference configurations)",
                     "not measured: no AMX here", f"≥ {TARGET_BF16_SPEEDUP}x", None))
    probe = suite["precision"]
    auto = 1.0 if probe["precision"] == "fp32" else probe["bf16_speedup"]
    rows.append(("precision auto never slower than fp32", f"auto = {probe['precision']}: {auto:.2f}x fp32",
                 "≥ 1.00x", auto >= 1.0))
    o = suite["overhead"]
    rows.append((f"runner overhead over a bare `model.fit` (medians of {o['repeats']} fresh processes each)",
                 f"{100 * o['overhead']:+.1f} % (after the first epoch {100 * o['steady_overhead']:+.1f} %)",
                 f"≤ {100 * TARGET_OVERHEAD:.0f} %", o["overhead"] <= TARGET_OVERHEAD))
    study = suite["study"]
    rows.append((f"study time in `fit` (`{study['study']}`, {len(study['seeds'])} seeds)",
                 f"{100 * study['fit_share']:.1f} %", f"≥ {100 * TARGET_FIT_SHARE:.0f} %",
                 study["fit_share"] >= TARGET_FIT_SHARE))
    if suite.get("seconds"):
        rows.append(("`make bench` wall time on this machine", f"{suite['seconds'] / 60:.1f} min",
                     f"≤ {TARGET_SUITE_MINUTES} min", suite["seconds"] <= 60 * TARGET_SUITE_MINUTES))
    worst = min(suite["pipelines"], key=lambda p: _pipeline_ratio(p, records) or float("inf"))
    ratio = _pipeline_ratio(worst, records)
    rows.append(("input pipeline over the model it feeds (slowest)", f"{ratio:.1f}x ({worst['dataset']})",
                 f"≥ {TARGET_PIPELINE_RATIO:.0f}x", ratio >= TARGET_PIPELINE_RATIO))
    return rows


def _pipeline_ratio(p: dict, records: list[dict]) -> float | None:
    fastest = max((r["train_images_per_second"] for r in records if r["model"] == p["model"]
                   and _backend(r) == "tensorflow"), default=None)
    return p["images_per_second"] / fastest if fastest else None


def write_suite(suite: dict, folder) -> Path:
    """reports/bench/<host>.md: the suite's tables under an environment stamp, and <host>.json with every
    figure, both written atomically."""
    records = suite["records"]
    tensorflow = [r for r in records if _backend(r) == "tensorflow"]
    env = tensorflow[0]["environment"]
    path = Path(folder) / f"{records[0]['host']}.md"
    pairs, processes = pair_markdown(tensorflow), processes_markdown(tensorflow)
    sections = [
        f"# benchbench bench: {records[0]['host']}\n\n{env.get('device')}, {env.get('cpu_count')} CPUs, "
        f"{'with' if suite['amx'] else 'without'} AMX (`amx_bf16` in /proc/cpuinfo); keras {env.get('keras')}, "
        f"tensorflow {env.get('tensorflow')}; git {str(env.get('git_commit'))[:10]}; "
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}. Written by `make bench`.",
        "## Targets\n\nIssues 7 and 20. The bf16 target applies on CPUs with AMX (and GPUs), where the suite "
        "measures the reference configurations in bf16 too; without AMX, precision auto must simply never be slower "
        "than fp32 (its probe, below, measures bf16 against fp32).\n\n" + targets_markdown(suite),
        "## Training and inference speed (TensorFlow)\n\nEach configuration measured in fresh processes, a third "
        f"only where the first two differ by more than {100 * suite['settle']:g} %; the row is the lower median (of "
        "two: the slower), the range is over the processes. Training: median step time inside one `fit` on "
        "in-memory random images after 3 warm-up steps; MFU = 3 x forward FLOPs x train img/s / peak, the peak "
        "being the best n x n matmul (n = 2048, 3072, 4096 up to the first taking "
        f"{SATURATED_SECONDS:g} s, which saturates the cores) of the same precision measured once per backend and "
        "precision, in the first process of its first row. Inference: forward passes chained in one compiled loop "
        "(no Python dispatch per pass), batch-1 latency and throughput at the batch size, in each configuration's "
        "first process.\n\n" + suite_markdown(tensorflow) + (f"\n\n{pairs}" if pairs else "")
        + ("\n\nEach process also times NumPy copies of 256 MB (one thread, median of 8, after its timed steps): "
           "the memory system the element-wise work of its steps met.\n\n" + processes if processes else ""),
        "## Where each family's training step goes\n\nThe TensorFlow profiler over "
        f"{PROFILE_STEPS} training steps of each family's reference configuration above (Swin's: its CIFAR one), in "
        "its first process after the timed steps. Op time is summed over both cores' threads, so it exceeds the "
        "step's wall time; what is not a matmul or a convolution is what keeps MFU below the matmul peak.\n\n"
        + profiles_markdown(tensorflow),
        "## Backends\n\nThe reference configurations in fp32 on each Keras backend, in fresh processes (JAX and "
        "torch: one each, so a figure may be off by the 20 % one process swings; TensorFlow: the median row above), "
        "the same model code and the same random batches through the same `fit`; the first step, which traces and "
        "compiles, is apart from the median step. MFU uses the FLOPs counted on the TensorFlow graph and the peak "
        "matmul measured by the same backend.\n\n" + backends_markdown(records, suite["backends_missing"]),
        "## Precision auto\n\nThe probe `precision = \"auto\"` runs once per machine (cached), measured again "
        "here: a small ViT and a small ShiftViT, training steps in fp32 and bf16.\n\n"
        + precision_markdown(suite["precision"]),
        "## Where a study's time goes\n\nThe demo (studies/demo.toml: its models, recipe, seeds and two workers) "
        "run as a study, W&B offline; its cells' phases summed from their records, against the workers' wall "
        "time.\n\n" + study_markdown(suite["study"]),
        "## Input pipeline\n\nSteady-state images per second of the training pipeline (shuffle, the data set's "
        "augmentation, one-hot, batch, prefetch) from the in-memory cache a run reads after its first epoch, on "
        "random images of the data set's native size, against the training speed of the model it feeds.\n\n"
        + pipeline_markdown(suite["pipelines"], tensorflow),
        "## Runner overhead\n\n`benchbench run`'s training loop against a bare `model.fit` of the same compiled "
        f"model on the same batches, each side in {suite['overhead']['repeats']} fresh processes of its own, the "
        "sides alternating; medians per side. Runner = its fit call (all epochs, step timer, op determinism) + "
        "per-epoch bookkeeping (checkpoints, best weights, state file, W&B offline). Setup (data, model) and the "
        "final test pass are listed apart: a bare script has its own. A process per fit: a process's second fit ran "
        "from 18 % faster to 29 % slower than its first here, whichever side it was. After the first epoch: the "
        "same ratio without each fit's first epoch's training part, which holds the trace and most of the spread "
        "from fit to fit, where a per-step or per-epoch cost of the runner shows. fit / bookkeeping split the "
        "overhead.\n\n"
        + overhead_markdown(suite["overhead"])]
    if suite.get("sections"):
        sections.append("## Where the bench's time goes\n\nEach part's wall time in this run (fresh processes, "
                        "their start-up included).\n\n" + sections_markdown(suite))
    io.write_text(path, "\n\n".join(sections) + "\n")
    io.write_json(path.with_suffix(".json"), suite)  # every figure, for scripts
    return path
