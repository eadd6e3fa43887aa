"""The shift-vs-attention pair: Swin-T and Shift-T/light are one network with two token mixers (the ShiftViT
paper's ablation), the catalogue says so, and the shipped digits study of the pair runs end to end."""

import json
from pathlib import Path

import pandas as pd
import pytest

import benchbench
from benchbench.models import matched_pair
from benchbench.study.file import load_study
from support.cli import main

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def mlp_widths(model) -> list[tuple[str, int]]:
    """(block, MLP hidden width) of every block in order: the stages, their depths and widths, the MLP ratio."""
    return [(layer.name.removesuffix("_fc1"), layer.units) for layer in model.layers if layer.name.endswith("_fc1")]


def test_swin_t_and_shift_t_light_are_one_network_with_two_mixers():
    assert benchbench.model_info("swin_t").matched == "shiftvit_t_light"
    assert matched_pair("shiftvit_t_light") == "swin_t" and matched_pair("vit_tiny") is None
    swin, shift = (benchbench.model_info(name).build_reference() for name in ("swin_t", "shiftvit_t_light"))
    assert mlp_widths(swin) == mlp_widths(shift) and len(mlp_widths(swin)) == 12  # depths 2-2-6-2, ratio 4
    for name in ("patch_embed", "head"):
        assert swin.get_layer(name).get_config()["kernel_size" if name == "patch_embed" else "units"] == \
            shift.get_layer(name).get_config()["kernel_size" if name == "patch_embed" else "units"]
    assert swin.get_layer("head").input.shape == shift.get_layer("head").input.shape  # 768 features each


def test_the_shipped_pair_studies_hold_everything_but_the_mixer_equal():
    for file in ("shift_vs_attention.toml", "shift_vs_attention_digits.toml"):
        study = load_study(STUDIES / file)  # loads: neither model degenerates at its size
        assert study.protocol == "recipe" and study.deviations == {}
        swin, shift = (next(c for c in study.cells if c.model == m) for m in ("swin_t", "shiftvit_t_light"))
        shared = {k: v for k, v in dict(swin.model_args).items() if k != "window_size"}
        assert shared == dict(shift.model_args)  # the same options, the window being attention's own


@pytest.mark.slow
def test_the_digits_pair_study_runs_end_to_end(tmp_path, capsys):
    out, reports = tmp_path / "out", tmp_path / "reports"
    code, printed, err = main(["study", str(STUDIES / "shift_vs_attention_digits.toml"), "--out", str(out),
                               "--report-dir", str(reports)], capsys)
    assert code == 0, err[-3000:]
    # Its recipe names no precision: "auto", measured (or read from the session's cache) before any cell runs.
    (line,) = [line for line in printed.splitlines() if line.startswith("precision auto: ") and " here " in line]
    chosen = line.split()[2]
    runs = pd.read_csv(out / "shift_vs_attention_digits" / "runs.csv")
    records = (out / "shift_vs_attention_digits" / "records.jsonl").read_text().splitlines()
    records = [json.loads(record) for record in records]
    assert {record["resolved"]["precision"] for record in records} == {chosen}
    assert set(runs["status"]) == {"done"} and len(runs) == 2
    assert set(runs["model"]) == {"swin_t", "shiftvit_t_light"}
    assert (runs["test_top1"] > 0.5).all(), runs[["model", "seed", "test_top1"]]  # both learn in 3 epochs
    board = (reports / "shift_vs_attention_digits" / "leaderboard.md").read_text()
    assert "**Protocol**: recipe: the same recipe, epochs" in board and "declared deviations" not in board
    assert "`swin_t`" in board and "`shiftvit_t_light`" in board
