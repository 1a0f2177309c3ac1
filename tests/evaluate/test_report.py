"""``avsa report`` on hand-made run folders: cells in the right rows/columns, CSV, curves, errors."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from avsa.cli import main
from avsa.errors import InputError
from avsa.evaluate.report import (MISSING, build_tables, describe_config, load_runs, read_metrics,
                                  write_report)
from avsa.evaluate.results import Result, save_result
from avsa.train.config import TrainConfig, to_dict


def _config(run, **data):
    cfg = TrainConfig(name=run.name)
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.validate()
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _result(task, value, *, chance=0.5, details=None, half=0.03):
    return Result(task=task, value=value, low=value - half, high=value + half, n=200, chance=chance,
                  details=details or {})


def _metrics(run, *, avc_steps=(10, 20, 30), avsa_steps=(10, 20), garbage=False):
    lines = [json.dumps({"stage": "avc", "step": s, "loss": 3.0 - 0.01 * s, "avc_acc": 0.01 * s, "avc_acc_v2a": 0.1,
                         "lr": 1e-3, "samples_per_s": 5.0}) for s in avc_steps]
    lines += [json.dumps({"stage": "avsa", "step": s, "loss": 1.4 - 0.01 * s, "avsa_acc": 0.25 + 0.01 * s,
                          "retrieval_acc": 0.1, "lr": 1e-3}) for s in avsa_steps]
    if garbage:
        lines.append('{"stage": "avsa", "st')  # cut off by a kill
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def runs(tmp_path):
    base = tmp_path / "baseline-run"
    base.mkdir()
    _config(base, crops="random", format="ambi", features="mel")
    _metrics(base, garbage=True)
    save_result(base, _result("avc-binary", 0.70))
    save_result(base, _result("avsa-contrastive", 0.40, chance=0.25, details={
        "per_kind": {"object": {"value": 0.45, "low": 0.40, "high": 0.50, "n": 80},
                     "random": {"value": 0.35, "low": 0.30, "high": 0.40, "n": 120}}}))
    save_result(base, _result("ucf101", 0.30, chance=1 / 101, details={
        "clip_accuracy": {"value": 0.25, "low": 0.22, "high": 0.28, "n": 400}}))
    save_result(base, _result("mystery-task", 0.123))
    (base / "crops.png").write_bytes(b"\x89PNG fake crops")

    iv = tmp_path / "iv-objects-run"
    iv.mkdir()
    _config(iv, crops="objects", format="ambi", features="iv")
    _metrics(iv)
    save_result(iv, _result("avc-binary", 0.80))
    save_result(iv, _result("avsa-binary", 0.66))
    save_result(iv, _result("ucf101-finetune", 0.55, chance=1 / 101))
    save_result(iv, _result("eigenscape", 0.875, chance=1 / 8))

    bare = tmp_path / "stereo-icf-run"
    bare.mkdir()
    _config(bare, crops="objects", format="stereo", features="icf")
    return base, iv, bare


def _md_table(md: str, title_start: str) -> list[list[str]]:
    """Rows (header first) of the markdown table under the heading starting with ``title_start``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## " + title_start))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("| ---"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_labels_describe_configs(runs):
    rows = load_runs(runs)
    assert [r.label for r in rows] == ["log-mel, random crops", "FOA-IV + objects", "stereo + ICF + objects"]
    cfg = TrainConfig(stages=["avc"])
    cfg.data.clips = "lists/pass.txt"
    assert describe_config(cfg) == "log-mel, random crops (AVC only), clips pass"


def test_report_cells_in_right_rows_and_columns(runs, tmp_path):
    out = tmp_path / "report"
    md_path = write_report(runs, out)
    assert md_path == out / "report.md"
    md = md_path.read_text()

    indomain = _md_table(md, "In-domain")
    header, rows = indomain[0], {r[0]: r for r in indomain[1:]}
    assert header[0] == "Training" and len(rows) == 3
    col = {h.split(" (chance")[0]: j for j, h in enumerate(header)}
    assert "chance 50%" in header[col["AVC binary"]] and "chance 25%" in header[col["AVSA contrastive"]]
    base, iv, bare = rows["log-mel, random crops"], rows["FOA-IV + objects"], rows["stereo + ICF + objects"]
    assert base[col["AVC binary"]] == "70.0 [67.0, 73.0]"
    assert iv[col["AVC binary"]] == "80.0 [77.0, 83.0]"
    assert base[col["AVSA binary"]] == MISSING and iv[col["AVSA binary"]] == "66.0 [63.0, 69.0]"
    assert base[col["AVSA contrastive, object crops"]] == "45.0 [40.0, 50.0]"
    assert base[col["AVSA contrastive, random crops"]] == "35.0 [30.0, 40.0]"
    assert iv[col["AVSA contrastive, object crops"]] == MISSING
    assert all(c == MISSING for c in bare[1:])
    assert "AVSA contrastive, audio crops" not in col  # no run has it: no column
    assert "AVC contrastive" not in col

    action = _md_table(md, "Action recognition")
    col = {h.split(" (chance")[0]: j for j, h in enumerate(action[0])}
    rows = {r[0]: r for r in action[1:]}
    assert rows["log-mel, random crops"][col["UCF101"]] == "30.0 [27.0, 33.0]"
    assert rows["log-mel, random crops"][col["UCF101, clip"]] == "25.0 [22.0, 28.0]"
    assert rows["log-mel, random crops"][col["UCF101, fine-tuned"]] == MISSING
    assert rows["FOA-IV + objects"][col["UCF101, fine-tuned"]] == "55.0 [52.0, 58.0]"
    assert "chance 0.99%" in action[0][col["UCF101"]]

    scenes = _md_table(md, "Acoustic scene")
    assert scenes[2][0] == "FOA-IV + objects" and scenes[2][1] == "87.5 [84.5, 90.5]"
    assert "chance 12.5%" in scenes[0][1]

    other = _md_table(md, "Other results")
    assert other[0][1].startswith("mystery-task") and other[1][1] == "12.3 [9.3, 15.3]"
    assert "Audio-visual scene" not in md and "Localization" not in md  # no run has those tasks
    assert "no evaluation results" in md and "no metrics.jsonl" in md  # the bare run is noted
    assert "1 unreadable line" in md


def test_csv_matches_tables(runs, tmp_path):
    out = tmp_path / "report"
    write_report(runs, out)
    tables = {t.key: t for t in build_tables(list(runs))}
    assert set(tables) == {"indomain", "action", "scenes", "other"}
    assert {p.name for p in out.glob("*.csv")} == {f"{k}.csv" for k in tables}
    with open(out / "indomain.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["baseline-run", "iv-objects-run", "stereo-icf-run"]
    assert float(rows[1]["AVC binary"]) == pytest.approx(80.0)
    assert float(rows[1]["AVC binary low"]) == pytest.approx(77.0)
    assert float(rows[1]["AVC binary high"]) == pytest.approx(83.0)
    assert rows[1]["AVC binary n"] == "200" and float(rows[1]["AVC binary chance"]) == pytest.approx(50)
    assert float(rows[0]["AVSA contrastive, object crops"]) == pytest.approx(45.0)
    assert rows[0]["AVSA binary"] == "" and rows[2]["AVC binary"] == ""
    # the same data as the table object
    t = tables["indomain"]
    j = [c.header for c in t.columns].index("AVC binary")
    assert t.cells[1][j].value == pytest.approx(0.80) and t.cells[0][j].value == pytest.approx(0.70)


def test_curves_and_pictures(runs, tmp_path):
    out = tmp_path / "report"
    md = write_report(runs, out).read_text()
    for name in ("baseline-run", "iv-objects-run"):
        png = out / f"{name}-curves.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"]({png.name})" in md
    assert not (out / "stereo-icf-run-curves.png").exists()
    assert (out / "baseline-run-crops.png").read_bytes() == b"\x89PNG fake crops"
    assert "](baseline-run-crops.png)" in md
    assert not list(out.glob("*localization.png"))


def test_read_metrics_keeps_last_row_of_repeated_steps(tmp_path):
    lines = [{"stage": "avsa", "step": 20, "loss": 9.0}, {"stage": "avc", "step": 10, "loss": 2.0},
             {"stage": "avsa", "step": 10, "loss": 1.0}, {"stage": "avsa", "step": 20, "loss": 0.5}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n")
    by_stage, bad = read_metrics(path)
    assert list(by_stage) == ["avc", "avsa"] and bad == 1
    assert [(r["step"], r["loss"]) for r in by_stage["avsa"]] == [(10, 1.0), (20, 0.5)]


def test_cli_with_names(runs, tmp_path, capsys):
    out = tmp_path / "cli-report"
    args = ["report", *map(str, runs), "--out", str(out), "--name", "A", "--name", "B", "--name", "C"]
    assert main(args) == 0
    md = (out / "report.md").read_text()
    rows = {r[0]: r for r in _md_table(md, "In-domain")[1:]}
    assert set(rows) == {"A", "B", "C"} and rows["B"][1] == "80.0 [77.0, 83.0]"
    assert str(out / "report.md") in capsys.readouterr().out


def test_duplicate_labels_get_folder_names(tmp_path):
    paths = []
    for seed in (0, 1):
        run = tmp_path / f"foa-iv-s{seed}"
        run.mkdir()
        _config(run, features="iv")
        save_result(run, _result("avsa-binary", 0.6 + 0.1 * seed))
        paths.append(run)
    assert [r.label for r in load_runs(paths)] == ["FOA-IV, random crops (foa-iv-s0)",
                                                   "FOA-IV, random crops (foa-iv-s1)"]


def test_bad_paths_are_input_errors(runs, tmp_path):
    not_a_run = tmp_path / "holiday-photos"
    not_a_run.mkdir()
    (not_a_run / "a.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="holiday-photos"):
        write_report([runs[0], not_a_run], tmp_path / "out")
    with pytest.raises(InputError, match="does-not-exist"):
        write_report([tmp_path / "does-not-exist"], tmp_path / "out")
    with pytest.raises(InputError, match="names"):
        write_report(runs, tmp_path / "out", names=["only one"])
    # through the CLI the error is reported, not raised as a traceback
    assert main(["report", str(not_a_run), "--out", str(tmp_path / "out")]) != 0


def test_variants_order_chance_footnote_and_unknown_suffixes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run in (a, b):
        run.mkdir()
    for task in ("ucf101-finetune-split3", "ucf101", "ucf101-split2", "eigenscape-fold2", "ucf101-weird",
                 "tau-fusion-finetune", "tau-audio"):
        save_result(a, _result(task, 0.5, chance=0.1))
    save_result(a, _result("avc-contrastive", 0.2, chance=1 / 16))
    save_result(b, _result("avc-contrastive", 0.3, chance=1 / 8))
    save_result(b, Result(task="localization", value=0.6, low=0.5, high=0.7, n=50, details={"max_angle_deg": 30.0}))
    tables = {t.key: t for t in build_tables([a, b])}
    assert [c.header for c in tables["action"].columns] == ["UCF101", "UCF101, split 2",
                                                           "UCF101, fine-tuned, split 3"]
    assert [c.header for c in tables["scenes"].columns] == ["EigenScape, fold 2"]
    assert [c.header for c in tables["tau"].columns] == ["TAU audio", "TAU fusion, fine-tuned"]
    assert [c.task for c in tables["other"].columns] == ["ucf101-weird"]
    assert [r.label for r in load_runs([a, b])] == ["a", "b"]  # no config: the folder name
    indomain = tables["indomain"]
    assert indomain.headers() == ["AVC contrastive (chance 6.25%, 12.5%†)"]
    assert "† chance differs" in indomain.markdown()
    md = write_report([a, b], tmp_path / "out").read_text()
    loc = _md_table(md, "Localization")
    assert loc[0] == ["Training", "Localization"] and loc[2] == ["b", "60.0 [50.0, 70.0]"] and loc[1][1] == MISSING
    assert "within 30° of a sounding object" in md
    assert "no config.yaml" in md
