"""The few lines `benchbench run` ends with: what a person reads first (the record, run.json, has the rest)."""

from __future__ import annotations

from pathlib import Path

FILES = {"run.json": "the record", "best.weights.h5": "the best epoch's weights", "predictions.npz": "test predictions"}


def lines(record: dict, run_dir: Path, *, finished_before: bool = False) -> list[str]:
    config, metrics = record["config"], record["metrics"]
    percent = lambda value: "n/a" if value is None else f"{100 * value:.1f} %"
    epochs = len(metrics["history"])
    head = (f"{config['model']} on {config['dataset']}, seed {config['seed']}: test top-1 "
            f"{percent(metrics['test_top1'])} (top-5 {percent(metrics['test_top5'])}), best val top-1 "
            f"{percent(metrics['best_val_top1'])} at epoch {metrics['best_epoch']} of {epochs}"
            + (" (stopped early)" if record.get("stopped_early") else ""))
    fit = record.get("timing_seconds", {}).get("fit")
    speed = record.get("train_images_per_second")
    wall = record["wall_seconds"]
    time = ("time:  " + (f"{wall:.0f} s" if wall < 90 else f"{wall / 60:.1f} min")
            + (f", training {fit:.0f} s" if fit else "") + (f" at {speed:.0f} images/s" if speed else "")
            + f"; {record['params'] / 1e6:.2f} M parameters, {record['gflops']:.2f} GFLOPs per image")
    files = ", ".join(f"{name} ({what})" for name, what in FILES.items() if (run_dir / name).exists())
    out = [head, time, f"files: {run_dir}/  {files}"]
    if finished_before:
        out.insert(0, "finished already: this is its result (the same command gives the same numbers; --rerun "
                      "trains it again in a fresh directory)")
    return out
