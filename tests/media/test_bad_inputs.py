"""The bad-input corpus: each bad file gets a clear row in failures.csv, the good ones are prepared."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

from avsa.media.prepare import PrepareOptions, prepare

from .test_prepare import FPS, SR, WIDTH, make_source, plane_wave, time_frames, write_media

# file → words its problem must contain
EXPECTED = {
    "truncated.mp4": "not a readable media file",
    "random.mp4": "not a readable media file",
    "no_audio.mp4": "no audio stream",
    "two_channels.mp4": "2 audio channel",
    "three_channels.mp4": "3 audio channel",
    "empty.mp4": "empty file",
    "flat.mp4": "not a 360° frame (16:9, no spherical metadata); pass --equirect",
    "silent.mp4": "silent",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "src"
    make_source(root / "good_a.mp4", duration_s=1.0, seed=1)
    make_source(root / "good_b.mp4", duration_s=1.0, seed=2)
    whole = make_source(root / "whole.mp4", duration_s=1.0, seed=3).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (root / "whole.mp4").unlink()
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "empty.mp4").write_bytes(b"")
    frames = time_frames(FPS)
    foa = plane_wave(SR, 0.5, 0.0)
    write_media(root / "no_audio.mp4", frames, None)
    write_media(root / "two_channels.mp4", frames, foa[:2])
    write_media(root / "three_channels.mp4", frames, foa[:3])
    write_media(root / "flat.mp4", time_frames(FPS, 128, 72), foa)
    write_media(root / "silent.mp4", frames, np.zeros_like(foa))
    return root


def test_each_bad_file_reported_good_files_prepared(corpus, tmp_path):
    results, manifest, failures = prepare(corpus, tmp_path / "cache", options=PrepareOptions(width=WIDTH), progress=False)
    ok = sorted(row["source"] for row in manifest if row["status"] == "ok")
    assert ok == ["good_a.mp4", "good_b.mp4"]
    with open(tmp_path / "cache" / "failures.csv", newline="") as handle:
        problems = {row["file"]: row["problem"] for row in csv.DictReader(handle)}
    assert sorted(problems) == sorted(EXPECTED)
    for name, words in EXPECTED.items():
        assert words in problems[name], (name, problems[name])
    # the silent file's clip is in the manifest as dropped, with its reason
    (silent,) = [row for row in manifest if row["source"] == "silent.mp4"]
    assert silent["status"].startswith("dropped: loudness") and silent["video"] == ""
    # and no clip's frame reader outlives its clip (the dropped one stops after the frames decoded ahead)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("avsa-read-ahead")]


def test_equirect_flag_accepts_16_9(corpus, tmp_path):
    _, manifest, failures = prepare(corpus, tmp_path / "cache", options=PrepareOptions(width=WIDTH, equirect=True),
                                    progress=False)
    assert "flat.mp4" not in {row["file"] for row in failures}
    assert any(row["source"] == "flat.mp4" and row["status"] == "ok" for row in manifest)


def test_cli_summary_and_exit_status(corpus, tmp_path, capsys):
    from avsa.cli import main

    assert main(["prepare", str(corpus), "--out", str(tmp_path / "cache"), "--width", str(WIDTH), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "2 prepared" in captured.out and "8 failed" in captured.out
    assert "random.mp4" in captured.out and "8 bad input(s)" in captured.err
    # rerun: bad files are retried (and fail the same way), the good ones are skipped
    assert main(["prepare", str(corpus), "--out", str(tmp_path / "cache"), "--width", str(WIDTH)]) == 0
    captured = capsys.readouterr()
    assert "0 prepared, 3 already done, 7 failed" in captured.out
