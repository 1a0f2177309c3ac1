"""`avsa prepare`: every audio layout ends as ambiX with the source where it was put;
resumable, idempotent, sharded. Inputs are written here with PyAV directly."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from avsa.media.cache import Cache
from avsa.media.prepare import PrepareOptions, prepare
from avsa.media.sources import find_sources, in_shard

SR = 24000
FPS = 16
WIDTH, HEIGHT = 128, 64
BRIGHTNESS_STEP = 5  # frame k of a source is grey level 5·k (the time, readable after H.264)
SOURCE_AZIMUTH, SOURCE_ELEVATION = math.radians(60.0), math.radians(20.0)
LAYOUT_NAMES = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 6: "5.1"}


def time_frames(n_frames: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """uint8 (T, H, W, 3): frame k is flat grey 5·k with a textured bottom row band."""
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for k in range(n_frames):
        frames[k] = BRIGHTNESS_STEP * k
    return frames


def frame_indices(frames: np.ndarray) -> np.ndarray:
    """Source frame index of each decoded frame (T, H, W, 3) or (T, 3, H, W)."""
    frames = np.asarray(frames, dtype=np.float64)
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / BRIGHTNESS_STEP).astype(int)


def plane_wave(n_samples: int, azimuth: float, elevation: float, *, seed: int = 0, level: float = 0.2) -> np.ndarray:
    """ambiX/SN3D (4, N) float32 of white noise from (azimuth, elevation)."""
    s = level * np.random.default_rng(seed).standard_normal(n_samples)
    g = [1.0, math.sin(azimuth) * math.cos(elevation), math.sin(elevation),
         math.cos(azimuth) * math.cos(elevation)]
    return (np.asarray(g)[:, None] * s).astype(np.float32)


def in_convention(foa: np.ndarray, layout: str) -> np.ndarray:
    """ambiX (4, N) written in ``layout`` (``docs/conventions.md`` §3)."""
    w, y, z, x = foa
    if layout == "ambix":
        return foa
    if layout == "fuma":
        return np.stack([w / math.sqrt(2.0), x, y, z])
    if layout == "n3d":
        return np.stack([w, y * math.sqrt(3.0), z * math.sqrt(3.0), x * math.sqrt(3.0)])
    zero = np.zeros_like(w)
    if layout == "youtube-aac":
        return np.stack([x, y, w, zero, z, zero])
    if layout == "ambix+headlocked":
        rng = np.random.default_rng(9)
        return np.concatenate([foa, 0.1 * rng.standard_normal((2, foa.shape[1])).astype(np.float32)])
    raise ValueError(layout)


def write_media(path: Path, frames: np.ndarray | None, audio: np.ndarray | None, *,
                fps: int = FPS, sample_rate: int = SR, codec: str = "flac") -> Path:
    """Write video (T, H, W, 3) and/or raw audio channels (C, N) with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = None
        if frames is not None:
            video = container.add_stream("libx264", rate=fps)
            video.height, video.width = frames.shape[1:3]
            video.pix_fmt = "yuv420p"
            video.options = {"crf": "10"}
        stream = None
        if audio is not None:
            stream = container.add_stream(codec, rate=sample_rate)
            stream.layout = LAYOUT_NAMES[audio.shape[0]]
        for frame in frames if frames is not None else []:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if video is not None:
            for packet in video.encode():
                container.mux(packet)
        if stream is not None:
            _encode_audio(container, stream, audio, sample_rate)
    return path


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    fmt = stream.codec_context.format.name
    for start in range(0, audio.shape[1], 1024):
        chunk = np.clip(audio[:, start:start + 1024], -1.0, 1.0)
        if fmt.startswith("s16"):
            chunk = (chunk * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            chunk = (chunk * (2**31 - 1)).astype(np.int32)
        else:
            chunk = chunk.astype(np.float32)
        data = chunk if fmt.endswith("p") else chunk.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=stream.layout.name)
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_source(path: Path, *, duration_s: float = 2.0, layout: str = "ambix", seed: int = 0,
                width: int = WIDTH, height: int = HEIGHT) -> Path:
    """A good 360° test video: time-coded frames + a plane wave at SOURCE_* in ``layout``."""
    audio = in_convention(plane_wave(int(duration_s * SR), SOURCE_AZIMUTH, SOURCE_ELEVATION, seed=seed), layout)
    return write_media(path, time_frames(int(duration_s * FPS), width, height), audio)


def intensity_direction(foa: np.ndarray) -> np.ndarray:
    """Unit vector (x, y, z) of the time-averaged intensity W·[X, Y, Z]."""
    w, y, z, x = np.asarray(foa, dtype=np.float64)
    v = np.array([np.mean(w * x), np.mean(w * y), np.mean(w * z)])
    return v / np.linalg.norm(v)


def expected_direction() -> np.ndarray:
    a, e = SOURCE_AZIMUTH, SOURCE_ELEVATION
    return np.array([math.cos(a) * math.cos(e), math.sin(a) * math.cos(e), math.sin(e)])


def read_manifest(cache: Path) -> list[dict[str, str]]:
    with open(cache / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


OPTIONS = PrepareOptions(width=WIDTH, clip_s=10.0, min_clip_s=1.0)


@pytest.mark.parametrize("layout", ["ambix", "fuma", "n3d", "ambix+headlocked"])
def test_every_layout_becomes_ambix_with_the_source_in_place(tmp_path, layout):
    src = tmp_path / "src"
    make_source(src / f"clip_{layout}.mp4", layout=layout)
    explicit = "auto" if layout in ("ambix", "ambix+headlocked") else layout
    _, manifest, failures = prepare(src, tmp_path / "cache", options=PrepareOptions(width=WIDTH, layout=explicit), progress=False)
    assert failures == [] and len(manifest) == 1 and manifest[0]["status"] == "ok"
    audio, rate = soundfile.read(tmp_path / "cache" / manifest[0]["audio"], always_2d=True)
    assert rate == SR and audio.shape == (2 * SR, 4)
    direction = intensity_direction(audio.T)
    assert np.degrees(np.arccos(np.clip(direction @ expected_direction(), -1, 1))) < 2.0
    # SN3D scaling: ρ ≈ 1 and W keeps the source level (white noise at 0.2 → W RMS 0.2)
    assert abs(float(manifest[0]["validity"]) - 1.0) < 0.05
    assert manifest[0]["convention"] == "ambix"
    assert abs(float(manifest[0]["loudness_db"]) - 20 * math.log10(0.2)) < 0.5


def test_youtube360_layout_with_6_channel_aac(tmp_path):
    src = tmp_path / "yt"
    ytid = "a-b_cdefghi"  # 11 chars, contains '-'
    audio = in_convention(plane_wave(2 * SR, SOURCE_AZIMUTH, SOURCE_ELEVATION), "youtube-aac")
    write_media(src / "video" / f"{ytid}-30.mp4", time_frames(2 * FPS), None)
    write_media(src / "audio" / f"{ytid}-30.m4a", None, audio, codec="aac")
    write_media(src / "video" / "unpairedxyz-0.mp4", time_frames(2 * FPS), None)  # no audio file: ignored
    (src / "test.txt").write_text(f"{ytid}\n")
    _, manifest, failures = prepare(src, tmp_path / "cache", options=OPTIONS, progress=False)
    assert failures == [] and len(manifest) == 1
    row = manifest[0]
    assert row["split"] == "test" and float(row["start_s"]) == 30.0
    assert row["source"] == f"video/{ytid}-30.mp4"
    foa, _ = soundfile.read(tmp_path / "cache" / row["audio"], always_2d=True)
    direction = intensity_direction(foa.T)
    assert np.degrees(np.arccos(np.clip(direction @ expected_direction(), -1, 1))) < 10.0
    assert abs(float(row["validity"]) - 1.0) < 0.15


@pytest.mark.parametrize("direct_yuv", [False, True], ids=["rgb-round-trip", "direct-yuv"])
def test_clip_video_is_equirect_16fps_time_aligned(tmp_path, monkeypatch, direct_yuv):
    """Both ways to the encoder (sources from DIRECT_YUV_MIN_PIXELS pixels go the direct one) pick the same frames."""
    from avsa.media import prepare as prepare_module

    if direct_yuv:
        monkeypatch.setattr(prepare_module, "DIRECT_YUV_MIN_PIXELS", WIDTH * HEIGHT)
    src = tmp_path / "src"
    make_source(src / "a.mp4", duration_s=2.5)
    _, manifest, _ = prepare(src, tmp_path / "cache", options=OPTIONS, progress=False)
    # 2.5 s < one 10-s clip → one clip of the whole length (whole frames)
    assert float(manifest[0]["duration_s"]) == 2.5
    with av.open(str(tmp_path / "cache" / manifest[0]["video"])) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (WIDTH, HEIGHT) and container.streams.audio == ()
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert len(frames) == 40
    np.testing.assert_array_equal(frame_indices(frames), np.arange(40))


def test_long_source_is_cut_into_clips_last_partial_dropped(tmp_path):
    src = tmp_path / "src"
    make_source(src / "long.mp4", duration_s=2.6)
    options = PrepareOptions(width=WIDTH, clip_s=1.0)
    _, manifest, _ = prepare(src, tmp_path / "cache", options=options, progress=False)
    assert [(r["clip_id"], float(r["start_s"])) for r in manifest] == [("long_c000", 0.0), ("long_c001", 1.0)]
    cache = Cache(tmp_path / "cache")
    with av.open(str(cache.video_path(cache.clip("long_c001")))) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    np.testing.assert_array_equal(frame_indices(frames), np.arange(16, 32))


def test_groundtruth_is_sliced_into_the_cache(tmp_path):
    from avsa.media.groundtruth import GroundTruth, ObjectTrack

    src = tmp_path / "src"
    make_source(src / "g.mp4", duration_s=2.0)
    times = np.arange(32) / FPS
    track = ObjectTrack(0, "cat", True, 0.5, np.linspace(0, 1, 32), np.zeros(32))
    GroundTruth(seed=1, scene="s", fps=FPS, duration_s=2.0, width=WIDTH, height=HEIGHT, sample_rate=SR,
                frame_times_s=times, objects=[track]).save(src / "g.json")
    options = PrepareOptions(width=WIDTH, clip_s=1.0, ground_truth=True)
    prepare(src, tmp_path / "cache", options=options, progress=False)
    cache = Cache(tmp_path / "cache")
    second = cache.groundtruth(cache.clip("g_c001"))
    np.testing.assert_allclose(second.frame_times_s, np.arange(16) / FPS)
    np.testing.assert_allclose(second.objects[0].azimuth, np.linspace(0, 1, 32)[16:])


def test_resumable_and_idempotent(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    for k in range(3):
        make_source(src / f"s{k}.mp4", seed=k)
    prepare(src, cache, options=OPTIONS, progress=False)
    first = (cache / "manifest.csv").read_bytes()
    # kill simulation: the manifest and one source's part vanish, a half-written temp file is left
    (cache / "manifest.csv").unlink()
    (cache / "parts" / "s1.csv").unlink()
    (cache / "clips" / "s1_c000.partial.mp4").write_bytes(b"half")
    mtime = (cache / "clips" / "s0_c000.mp4").stat().st_mtime_ns
    results, _, _ = prepare(src, cache, options=OPTIONS, progress=False)
    assert [r.skipped for r in results] == [True, False, True]
    assert (cache / "manifest.csv").read_bytes() == first
    assert (cache / "clips" / "s0_c000.mp4").stat().st_mtime_ns == mtime
    results, _, _ = prepare(src, cache, options=OPTIONS, progress=False)
    assert all(r.skipped for r in results)
    assert (cache / "manifest.csv").read_bytes() == first


def test_shards_partition_the_sources_and_merge(tmp_path):
    src = tmp_path / "src"
    for k in range(4):
        make_source(src / f"s{k}.mp4", duration_s=1.0, seed=k)
    names = [s.name for s in find_sources(src)]
    shards = [[n for n in names if in_shard(n, (i, 3))] for i in range(3)]
    assert sorted(sum(shards, [])) == names
    for i in range(3):
        prepare(src, tmp_path / "cache", options=OPTIONS, shard=(i, 3), progress=False)
    whole = tmp_path / "whole"
    prepare(src, whole, options=OPTIONS, jobs=2, progress=False)
    assert (tmp_path / "cache" / "manifest.csv").read_bytes() == (whole / "manifest.csv").read_bytes()
    assert len(read_manifest(whole)) == 4


def test_hash_split_and_split_lists(tmp_path):
    src = tmp_path / "src"
    for k in range(3):
        make_source(src / f"s{k}.mp4", duration_s=1.0, seed=k)
    (src / "test.txt").write_text("s1\n")
    (src / "train.txt").write_text("s0\ns2\n")
    assert {s.name: s.split for s in find_sources(src)} == {"s0": "train", "s1": "test", "s2": "train"}
    (src / "test.txt").unlink()
    (src / "train.txt").unlink()
    first = {s.name: s.split for s in find_sources(src)}
    assert first == {s.name: s.split for s in find_sources(src)} and set(first.values()) <= {"train", "test"}


def test_cli_exit_status(tmp_path, capsys):
    from avsa.cli import main

    src = tmp_path / "src"
    make_source(src / "a.mp4", duration_s=1.0)
    assert main(["prepare", str(src), "--out", str(tmp_path / "cache"), "--width", str(WIDTH)]) == 0
    assert "1 clip(s) ok" in capsys.readouterr().out
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.mp4").write_bytes(b"")
    assert main(["prepare", str(tmp_path / "bad"), "--out", str(tmp_path / "c2")]) != 0


def _pixel_directions(width: int, height: int) -> np.ndarray:
    """Unit vectors (H, W, 3) of equirect pixel centres (``docs/conventions.md`` §2)."""
    azimuth = math.pi * (1 - 2 * (np.arange(width) + 0.5) / width)
    elevation = (math.pi / 2) * (1 - 2 * (np.arange(height) + 0.5) / height)
    a, e = np.meshgrid(azimuth, elevation)
    return np.stack([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)], axis=-1)


def test_eac_input_is_reprojected_to_equirect(tmp_path):
    eac = pytest.importorskip("avsa.media.synth.eac")
    from avsa.media import io

    width, height = 256, 128
    rays = _pixel_directions(width, height)
    equirect = np.full((height, width, 3), 60, np.uint8)
    equirect[rays @ expected_direction() > math.cos(math.radians(12))] = (230, 20, 20)
    cubemap = eac.equirect_to_eac(np.repeat(equirect[None], FPS, axis=0))
    src = tmp_path / "src"
    src.mkdir()
    io.write_av(src / "eac.mp4", cubemap, FPS, audio=plane_wave(SR, SOURCE_AZIMUTH, SOURCE_ELEVATION),
                sample_rate=SR, projection="cubemap", crf=12)
    if io.probe(src / "eac.mp4").projection != "cubemap":
        pytest.skip("avsa.media.io does not yet write/read the spherical (cubemap) metadata")
    _, manifest, failures = prepare(src, tmp_path / "cache", options=PrepareOptions(width=width), progress=False)
    assert failures == []
    with av.open(str(tmp_path / "cache" / manifest[0]["video"])) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="rgb24").astype(int)
    red = (frame[..., 0] > 150) & (frame[..., 1] < 90)
    assert red.sum() > 0.5 * (equirect[..., 1] == 20).sum()
    found = rays[red].mean(axis=0)
    found /= np.linalg.norm(found)
    assert np.degrees(np.arccos(np.clip(found @ expected_direction(), -1, 1))) < 3.0
