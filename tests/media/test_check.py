"""`avsa check`: ρ per file/clip flags FuMa, N3D and up-mixed audio; Table I subsets."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from avsa.cli import main
from avsa.errors import InputError
from avsa.media.check import CheckRow, check_paths, subset
from avsa.media.prepare import PrepareOptions, prepare

from .test_prepare import FPS, SR, WIDTH, in_convention, plane_wave, time_frames, write_media

CONVENTIONS = {"good": "ambix", "fuma": "fuma", "n3d": "n3d"}


def _folder(root):
    frames = time_frames(FPS)  # 1 s
    for name, layout in CONVENTIONS.items():
        write_media(root / f"{name}.mp4", frames, in_convention(plane_wave(SR, 1.0, 0.3, seed=len(name)), layout))
    mono = plane_wave(SR, 0.0, 0.0, seed=5)[0]
    rng = np.random.default_rng(1)
    upmix = np.stack([mono, 0.01 * rng.standard_normal(SR), np.zeros(SR), np.zeros(SR)]).astype(np.float32)
    write_media(root / "upmix.mp4", frames, upmix)
    write_media(root / "stereo.mp4", frames, upmix[:2])
    return root


def test_check_files_flags_conventions(tmp_path):
    rows = {row.name: row for row in check_paths([_folder(tmp_path / "src")], tau=0.1)}
    assert rows["good.mp4"].result == "pass" and rows["good.mp4"].convention == "ambix"
    assert rows["fuma.mp4"].result == "fail" and rows["fuma.mp4"].convention == "fuma"
    assert rows["fuma.mp4"].rho == pytest.approx(2.0, rel=0.05)
    assert rows["n3d.mp4"].convention == "n3d" and rows["n3d.mp4"].rho == pytest.approx(3.0, rel=0.05)
    assert rows["upmix.mp4"].convention == "not ambisonic" and rows["upmix.mp4"].rho < 0.1
    assert rows["stereo.mp4"].result == "error" and "2 audio channel" in rows["stereo.mp4"].reason


def test_check_cache_and_cli_outputs(tmp_path, capsys):
    src = _folder(tmp_path / "src")
    prepare(src, tmp_path / "cache", options=PrepareOptions(width=WIDTH), progress=False)
    table = tmp_path / "check.csv"
    listing = tmp_path / "pass.txt"
    assert main(["check", str(tmp_path / "cache"), "--csv", str(table), "--subset", "pass", "--out", str(listing)]) == 0
    out = capsys.readouterr().out
    assert "1 of 4 pass" in out  # auto layout reads FuMa/N3D as ambiX: the cache keeps what the file holds
    with open(table, newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert rows["good_c000"]["result"] == "pass" and rows["fuma_c000"]["convention"] == "fuma"
    assert listing.read_text().split() == ["good_c000"]


def test_prepare_with_explicit_layout_passes_check(tmp_path):
    src = tmp_path / "src"
    write_media(src / "f.mp4", time_frames(FPS), in_convention(plane_wave(SR, 1.0, 0.3), "fuma"))
    prepare(src, tmp_path / "cache", options=PrepareOptions(width=WIDTH, layout="fuma"), progress=False)
    (row,) = check_paths([tmp_path / "cache"])
    assert row.result == "pass" and row.convention == "ambix"


def test_subsets_table_one():
    rows = [CheckRow(f"c{k}", 1.0 if k % 3 == 0 else 2.0, "pass" if k % 3 == 0 else "fail", "", "") for k in range(12)]
    rows.append(CheckRow("broken", float("nan"), "error", "", "unreadable"))
    assert subset(rows, "all") == [f"c{k}" for k in range(12)]
    assert subset(rows, "pass") == ["c0", "c3", "c6", "c9"]
    assert len(subset(rows, "fail")) == 8
    random = subset(rows, "random", seed=4)
    assert len(random) == 4 and set(random) <= set(subset(rows, "all"))
    assert random == subset(rows, "random", seed=4) and random != subset(rows, "random", seed=5)


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_paths([tmp_path / "nothing"])
    with pytest.raises(InputError, match="tau"):
        check_paths([tmp_path], tau=0.0)


def test_synth_prepare_check_end_to_end(tmp_path, capsys):
    pytest.importorskip("avsa.commands.synth")
    world, cache = tmp_path / "world", tmp_path / "cache"
    assert main(["synth", "--out", str(world), "--videos", "2", "--duration", "1", "--width", "128",
                 "--convention", "fuma"]) == 0
    assert main(["prepare", str(world), "--out", str(cache), "--width", "128", "--ground-truth"]) == 0
    raw = {row.name: row for row in check_paths([world])}
    cached = {row.name: row for row in check_paths([cache])}
    assert {row.convention for row in raw.values()} == {"fuma"}  # the files as written
    assert {row.convention for row in cached.values()} == {"ambix"}  # prepare took FuMa from the ground truth
    with open(cache / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["groundtruth"] and (cache / row["groundtruth"]).is_file() for row in rows)
    assert {row["split"] for row in rows} <= {"train", "test"}


def test_check_names_what_rho_cannot_see(tmp_path, capsys):
    """Swapped X/Y, a sign-flipped Y and FuMa order with SN3D gains all pass; the output says so."""
    w, y, z, x = plane_wave(SR, 1.0, 0.3)
    variants = {"swapped": np.stack([w, x, z, y]), "flipped": np.stack([w, -y, z, x]),
                "fuma-order-sn3d": np.stack([w, x, y, z])}
    for name, audio in variants.items():
        write_media(tmp_path / f"{name}.mp4", time_frames(FPS), audio)
    assert main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 pass" in out
    for blind_spot in ("X and Y swapped", "sign-flipped Y", "FuMa channel order (W, X, Y, Z) with SN3D gains"):
        assert blind_spot in out
