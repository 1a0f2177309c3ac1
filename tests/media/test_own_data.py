"""Your own 360° footage: odd file names, camera sidecars, short videos and bad label files (docs/own-data.md)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from avsa.cli import main
from avsa.errors import MediaError
from avsa.media import io, starss23
from avsa.media.cache import Cache
from avsa.media.prepare import MAX_KEY_BYTES, PrepareOptions, prepare, source_key
from avsa.media.sources import find_sources, hash_split
from avsa.media.sphere360 import warn_missing
from avsa.spatial.ambisonics import encode

from .test_prepare import FPS, HEIGHT, SR, WIDTH, make_source, read_manifest

OPTIONS = PrepareOptions(width=WIDTH, clip_s=1.0)


def test_ordinary_names_keep_their_ids():
    for name in ("VID_20261207_101500_00_001", "synth-00003", "a b#c", "猫" * 50, "x" * MAX_KEY_BYTES):
        assert source_key(name) == name


def test_names_that_no_file_system_takes_get_short_unique_ids():
    undecodable = os.fsdecode(b"caf\xe9-\xff")
    for name in ("a" * 240, "猫" * 80, undecodable, "line\nbreak", ".hidden"):
        key = source_key(name)
        assert len(key.encode("utf-8")) <= MAX_KEY_BYTES and key.isprintable() and not key.startswith(".")
        assert source_key(name) == key  # stable: the same file keeps its clips
    assert source_key("a" * 240) != source_key("a" * 239 + "b")  # a shared prefix is not a shared id
    assert source_key("猫" * 80).startswith("猫" * 40)  # readable, cut on a character boundary
    assert hash_split(undecodable) in ("train", "test")


def test_prepare_goes_on_past_long_and_undecodable_names(tmp_path):
    src = tmp_path / "src"
    names = ["plain", "a" * 240, "猫" * 80, os.fsdecode(b"caf\xe9")]
    for name in names:
        make_source(src / f"{name}.mp4", duration_s=1.0)
    results, manifest, failures = prepare(src, tmp_path / "cache", options=OPTIONS, progress=False)
    assert failures == [] and len(manifest) == 4 and all(r.problem is None for r in results)
    ids = {row["clip_id"] for row in manifest}
    assert "plain_c000" in ids and len(ids) == 4
    cache = Cache(tmp_path / "cache")
    for clip in cache.clips():
        assert len(clip.clip_id.encode()) + len(".mp4") < 255 and cache.video_path(clip).is_file()
    assert read_manifest(tmp_path / "cache")  # the manifest (source column too) is valid UTF-8


def test_a_video_shorter_than_its_audio_is_warned_about(tmp_path):
    src = tmp_path / "src"
    frames = np.full((FPS, HEIGHT, WIDTH, 3), 90, np.uint8)  # 1 s of video
    audio = encode(np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1, 0.5, 0.1).numpy()
    io.write_av(src / "short.mp4", frames, FPS, audio=audio, sample_rate=SR)  # 2 s of audio
    with pytest.warns(UserWarning, match=r"short.mp4: the video lasts 1.00 s but its audio 2.0"):
        prepare(src, tmp_path / "cache", options=OPTIONS, progress=False)


def starss23_folder(tmp_path, labels: dict[str, str], *, with_audio=True):
    """A STARSS23 layout of 1-s recordings, one per label text."""
    root = tmp_path / "STARSS23"
    for name, text in labels.items():
        for folder in (starss23.AUDIO_DIR, starss23.VIDEO_DIR, starss23.METADATA_DIR):
            (root / folder / "dev-train-sony").mkdir(parents=True, exist_ok=True)
        make_source(root / starss23.VIDEO_DIR / "dev-train-sony" / f"{name}.mp4", duration_s=1.0)
        if with_audio:
            foa = encode(np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1, 0.3, 0.0).numpy()
            io.write_audio(root / starss23.AUDIO_DIR / "dev-train-sony" / f"{name}.wav", foa, SR)
        (root / starss23.METADATA_DIR / "dev-train-sony" / f"{name}.csv").write_text(text)
    return root


@pytest.mark.parametrize("text, message", [
    ("0,1,0,400,10,100\n", "line 1: azimuth 400° is outside"),
    ("0,1,0,-181,10,100\n", "azimuth -181°"),
    ("0,1,0,10,95,100\n", "elevation 95°"),
    ("0,1,0,10,0,100\n1,dog,0,10,0,100\n", "line 2: class 'dog' is not an integer"),
])
def test_label_values_out_of_range_are_refused_by_file_row_and_value(tmp_path, text, message):
    path = tmp_path / "fold3_room1_mix001.csv"
    path.write_text(text)
    with pytest.raises(MediaError, match=message) as err:
        starss23.read_labels(path)
    assert err.value.path == str(path)


def test_empty_label_file_is_warned_about(tmp_path):
    path = tmp_path / "fold3_room1_mix001.csv"
    path.write_text("")
    with pytest.warns(UserWarning, match="no labelled event"):
        assert starss23.read_labels(path) == []


def test_bad_label_file_is_reported_against_the_csv_and_prepare_goes_on(tmp_path):
    root = starss23_folder(tmp_path, {"fold3_room1_mix001": "0,cat,0,10,0,100\n",
                                      "fold3_room1_mix002": "0,1,0,10,0,100\n"})
    _, manifest, failures = prepare(root, tmp_path / "cache", options=OPTIONS, progress=False)
    assert [row["source"] for row in manifest] == ["video_dev/dev-train-sony/fold3_room1_mix002.mp4"]
    (failure,) = failures
    assert "metadata_dev/dev-train-sony/fold3_room1_mix001.csv: line 1: class 'cat'" in failure["problem"]


def test_starss23_recording_without_audio_is_warned_about(tmp_path):
    root = starss23_folder(tmp_path, {"fold3_room1_mix001": "0,1,0,10,0,100\n"}, with_audio=False)
    (root / starss23.VIDEO_DIR / "dev-train-sony" / "fold3_room1_mix001.mp4").unlink()
    make_source(root / starss23.VIDEO_DIR / "dev-train-sony" / "fold3_room1_mix002.mp4", duration_s=1.0)
    with pytest.warns(UserWarning) as caught:
        with pytest.raises(Exception):  # nothing usable is left
            find_sources(root)
    text = " ".join(str(w.message) for w in caught)
    assert "fold3_room1_mix002.mp4: no foa_dev/dev-train-sony/fold3_room1_mix002.wav" in text
    assert "fold3_room1_mix001.csv: no recording" in text


def test_sphere360_clips_missing_from_the_folder_are_counted(tmp_path):
    listed = {"abcdefghijk_10": "train", "abcdefghijk_20": "train", "ABCDEFGHIJK_0": "test", "abcdefghijk": "train"}
    with pytest.warns(UserWarning, match=r"2 clip\(s\) named in the split lists have no video file \(1 of test, 1 of train"):
        assert warn_missing(tmp_path, listed, {"abcdefghijk_10"}) == 2


# ------------------------------------------------------------- a camera's export, as docs/own-data.md does it

def camera_file(path, *, codec: str, seconds: float = 1.0, width: int = 64):
    """An equirect clip with 4-channel ambiX, as a consumer 360° camera exports it (tiny)."""
    fps, rate = 8, 48000
    frames = np.zeros((int(seconds * fps), width // 2, width, 3), np.uint8)
    frames[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)
    t = np.arange(int(seconds * rate)) / rate
    foa = encode((0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32), 0.8, 0.2).numpy()
    io.write_av(path, frames, fps, audio=foa, sample_rate=rate, audio_codec=codec)
    return path


def test_a_camera_export_folder_prepares_as_documented(tmp_path, capsys):
    export = tmp_path / "DCIM"
    export.mkdir()
    camera_file(export / "VID_20261207_101500_00_001.mp4", codec="aac")
    camera_file(export / "VID_20261207_101800_00_002.mp4", codec="aac", seconds=1.5)
    camera_file(export / "VID_20261207_102000_00_003.MOV", codec="pcm_s16le")
    (export / "VID_20261207_101500_00_001.json").write_text(json.dumps({"camera": "X4", "gps": [48.1, 11.5]}))
    cache = tmp_path / "cache"
    assert main(["check", str(export)]) == 0
    assert main(["prepare", str(export), "--out", str(cache), "--width", "64"]) == 0
    out = capsys.readouterr().out
    assert "not read as ground truth" in out  # the app's sidecar is left alone, and said so
    clips = {c.clip_id: c for c in Cache(cache).clips()}
    assert sorted(clips) == ["VID_20261207_101500_00_001_c000", "VID_20261207_101800_00_002_c000",
                             "VID_20261207_102000_00_003_c000"]
    assert all(not c.groundtruth for c in clips.values())
    assert clips["VID_20261207_101800_00_002_c000"].duration_s == pytest.approx(1.5)
    assert {c.split for c in clips.values()} <= {"train", "test"}
    assert main(["check", str(cache)]) == 0
    assert "VID_20261207_102000_00_003_c000" in capsys.readouterr().out
    # the same folder with --ground-truth: the camera's JSON is not an avsa ground truth, named as the problem
    assert main(["prepare", str(export), "--out", str(tmp_path / "cache-gt"), "--width", "64", "--ground-truth"]) == 0
    assert "VID_20261207_101500_00_001" in capsys.readouterr().out
