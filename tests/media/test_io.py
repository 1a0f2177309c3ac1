"""Round trips through real files: write_av/write_audio → probe/read_frames/read_audio."""

from __future__ import annotations

import numpy as np
import pytest

from avsa.errors import InputError, MediaError
from avsa.media import io

SR = 48000
FREQS = (300.0, 700.0, 1100.0, 1900.0, 2700.0, 3500.0)


def tones(channels: int, n: int = SR, sample_rate: int = SR) -> np.ndarray:
    """A different sine frequency on each channel, (C, n) float32."""
    t = np.arange(n) / sample_rate
    return np.stack([0.3 * np.sin(2 * np.pi * FREQS[c] * t) for c in range(channels)]).astype(np.float32)


def peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


def gray_frames(n: int, height: int = 64, width: int = 128) -> np.ndarray:
    """Frame i is uniformly gray at level 8·i, i < 32 (the frame index, readable after H.264)."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 8)[:, None, None, None], height * width * 3).reshape(
        n, height, width, 3
    )


def frame_index(frames: np.ndarray) -> np.ndarray:
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / 8).astype(int)


@pytest.mark.parametrize(
    "codec, suffix, channels",
    [("flac", ".mp4", 4), ("opus", ".mp4", 4), ("pcm_s16le", ".mov", 4), ("pcm_s16le", ".mkv", 4), ("aac", ".mp4", 6)],
)
def test_write_av_keeps_channel_order(tmp_path, codec, suffix, channels):
    path = tmp_path / f"clip{suffix}"
    audio = tones(channels)
    io.write_av(path, gray_frames(16), 16.0, audio=audio, sample_rate=SR, audio_codec=codec)
    info = io.probe(path)
    assert info.has_video and info.has_audio and info.audio_channels == channels
    assert (info.width, info.height) == (128, 64)
    back = io.read_audio(path, layout="raw", duration_s=1.0)
    assert back.shape == (channels, SR)
    for c in range(channels):
        if codec == "aac" and c == 3:  # the 5.1 LFE slot is band-limited by AAC (zero in YouTube's layout)
            continue
        assert peak_hz(back[c], SR) == pytest.approx(FREQS[c], abs=2.0), f"channel {c}"
        assert np.std(back[c]) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".m4a", ".opus"])
def test_write_audio_round_trip(tmp_path, suffix):
    channels = 6 if suffix == ".m4a" else 4
    path = tmp_path / f"a{suffix}"
    io.write_audio(path, tones(channels), SR)
    back = io.read_audio(path, layout="raw")
    assert back.shape[0] == channels
    assert abs(back.shape[1] - SR) <= 2048
    for c in range(channels):
        if suffix == ".m4a" and c == 3:
            continue
        assert peak_hz(back[c, :SR // 2], SR) == pytest.approx(FREQS[c], abs=4.0)


def test_lossless_audio_is_sample_accurate_at_any_start(tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal((4, SR))).astype(np.float32)
    path = tmp_path / "noise.mp4"
    io.write_av(path, gray_frames(16), 16.0, audio=audio, sample_rate=SR, audio_codec="flac")
    back = io.read_audio(path, start_s=0.3127, duration_s=0.25, layout="raw")
    first = int(round(0.3127 * SR))
    np.testing.assert_allclose(back, audio[:, first : first + back.shape[1]], atol=1 / 16000)
    assert back.shape == (4, int(round(0.25 * SR)))


def test_write_rejects_bad_arguments(tmp_path):
    with pytest.raises(InputError):
        io.write_av(tmp_path / "x.mp4", np.zeros((2, 63, 128, 3), np.uint8), 16.0)
    with pytest.raises(InputError):
        io.write_av(tmp_path / "x.mp4", np.zeros((2, 64, 128, 3), np.float32), 16.0)
    with pytest.raises(InputError):
        io.write_av(tmp_path / "x.mp4", gray_frames(2), 16.0, audio=tones(4), sample_rate=44100, audio_codec="opus")


def test_write_av_encodes_an_iterable_of_frames_as_it_would_the_array(tmp_path):
    """prepare streams a clip's frames into the encoder: the file is the one the stacked array gives."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 64, 128, 3), dtype=np.uint8)
    io.write_av(tmp_path / "array.mp4", frames, 16.0, gop=4)
    io.write_av(tmp_path / "iterable.mp4", (f for f in frames), 16.0, gop=4)
    assert np.array_equal(io.read_frames(tmp_path / "iterable.mp4"), io.read_frames(tmp_path / "array.mp4"))
    with pytest.raises(InputError, match="frame 2 is uint8 \\(32, 128, 3\\)"):
        io.write_av(tmp_path / "mixed.mp4", iter([frames[0], frames[1], frames[2, :32]]), 16.0)
    assert not (tmp_path / "mixed.mp4").exists()
    with pytest.raises(InputError, match="no frame"):
        io.write_av(tmp_path / "empty.mp4", iter([]), 16.0)


def test_missing_audio_stream_is_a_media_error(tmp_path):
    path = tmp_path / "silent_movie.mp4"
    io.write_av(path, gray_frames(4), 16.0)
    with pytest.raises(MediaError, match="silent_movie.mp4.*no audio stream"):
        io.read_audio(path)


# --------------------------------------------------------------------------- readers


@pytest.fixture(scope="module")
def indexed_video(tmp_path_factory):
    """32 frames at 16 fps, frame i gray level 12·i, keyframe every 8 frames."""
    path = tmp_path_factory.mktemp("video") / "indexed.mp4"
    io.write_av(path, gray_frames(32), 16.0, gop=8, crf=10)
    return path


def test_frames_of_a_window_are_the_right_frames(indexed_video):
    frames = io.read_frames(indexed_video, start_s=0.75, duration_s=0.5)
    assert frames.shape == (8, 64, 128, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frame_index(frames), np.arange(12, 20))
    # Resampled to 8 fps: every other frame; resized.
    half = io.read_frames(indexed_video, start_s=1.0, duration_s=0.5, fps=8.0, size=(64, 32))
    assert half.shape == (4, 32, 64, 3)
    np.testing.assert_array_equal(frame_index(half), [16, 18, 20, 22])
    # Up-sampled to 32 fps: each frame twice (nearest frame to t = start + k/32).
    double = io.read_frames(indexed_video, start_s=0.5, duration_s=0.25, fps=32.0)
    np.testing.assert_array_equal(frame_index(double), [8, 8, 9, 9, 10, 10, 11, 11])
    np.testing.assert_array_equal(frame_index(io.read_frame_range(indexed_video, 29, 3, fps=16.0)), [29, 30, 31])


def test_frames_past_the_end_are_a_media_error(indexed_video):
    with pytest.raises(MediaError, match="indexed.mp4.*past the end"):
        io.read_frames(indexed_video, start_s=1.5, duration_s=1.0)
    with pytest.raises(MediaError, match="indexed.mp4.*after the end"):
        io.read_frames(indexed_video, start_s=5.0, duration_s=1.0)


def test_cubemap_file_is_reprojected_to_equirect(tmp_path):
    forward = pytest.importorskip("avsa.media.synth.eac")
    from tests.media.test_eac import angle_deg, marker_direction, marker_frame, unit

    eac = forward.equirect_to_eac(marker_frame(120, 30, radius_deg=10))  # 96×64 (face 32)
    path = tmp_path / "eac.mp4"
    io.write_av(path, np.stack([eac] * 4), 16.0, projection="cubemap", crf=10)
    assert io.probe(path).projection == "cubemap"
    frames = io.read_frames(path, size=(256, 128))
    assert frames.shape == (4, 128, 256, 3)
    assert angle_deg(marker_direction(frames[0]), unit(120, 30)) < 2.0
    # Told it is equirect, the frame is only resized (the marker lands elsewhere).
    flat = io.read_frames(path, size=(256, 128), projection="equirectangular")
    assert angle_deg(marker_direction(flat[0]), unit(120, 30)) > 10.0


def test_resampling_48k_to_24k_keeps_frequency_and_level(tmp_path):
    t = np.arange(2 * SR) / SR
    audio = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t)] * 4).astype(np.float32)
    path = tmp_path / "tone.flac"
    io.write_audio(path, audio, SR)
    out = io.read_audio(path, start_s=0.5, duration_s=1.0, sample_rate=24000, layout="raw")
    assert out.shape == (4, 24000)
    assert peak_hz(out[0], 24000) == pytest.approx(1000, abs=1.5)
    assert np.std(out[0]) == pytest.approx(0.5 / np.sqrt(2), rel=0.005)
    # Phase continuity: matches the analytic tone at the window's times (edges included).
    expected = 0.5 * np.sin(2 * np.pi * 1000 * (0.5 + np.arange(24000) / 24000))
    assert np.abs(out[0] - expected).max() < 0.01
    # 44.1 kHz → 24 kHz, an awkward ratio.
    io.write_audio(tmp_path / "cd.wav", audio[:, : 44100], 44100)
    cd = io.read_audio(tmp_path / "cd.wav", start_s=0.1, duration_s=0.5, sample_rate=24000, layout="raw")
    assert cd.shape == (4, 12000)
    assert peak_hz(cd[0], 24000) == pytest.approx(1000 * 44100 / SR, abs=2.0)  # same samples, new clock


def plane_wave(azimuth_deg: float, elevation_deg: float, n: int = SR) -> np.ndarray:
    """ambiX/SN3D (4, n) of band-limited noise from one direction (``docs/conventions.md`` §3, written out here)."""
    rng = np.random.default_rng(3)
    s = np.convolve(rng.standard_normal(n + 63), np.hanning(64) / 16, mode="valid")[:n] * 0.5
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    g = np.array([1, np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    return (g[:, None] * s[None]).astype(np.float32)


def intensity_direction(foa: np.ndarray) -> np.ndarray:
    """Unit vector of mean W·[X, Y, Z] (ambiX order W, Y, Z, X)."""
    w, y, z, x = foa
    v = np.array([np.mean(w * x), np.mean(w * y), np.mean(w * z)])
    return v / np.linalg.norm(v)


def test_youtube_aac_layout_recovers_the_direction(tmp_path):
    foa = plane_wave(60, 20)
    w, y, z, x = foa
    raw = np.stack([x, y, w, np.zeros_like(w), z, np.zeros_like(w)])  # YouTube's decoded AAC order
    path = tmp_path / "yt.m4a"
    io.write_audio(path, raw, SR)
    out = io.read_audio(path, duration_s=0.9, layout="youtube-aac", sample_rate=24000)
    assert out.shape == (4, 21600)
    d = intensity_direction(out)
    truth = np.array([np.cos(np.radians(60)) * np.cos(np.radians(20)), np.sin(np.radians(60)) * np.cos(np.radians(20)),
                      np.sin(np.radians(20))])
    assert np.degrees(np.arccos(d @ truth)) < 3.0
    assert np.std(out[0]) == pytest.approx(np.std(w), rel=0.1)
    # Read raw, the same file is 6 channels in the order written.
    assert io.read_audio(path, layout="raw").shape[0] == 6


@pytest.mark.parametrize("layout", ["fuma", "n3d", "ambix+headlocked"])
def test_other_presets_give_ambix(tmp_path, layout):
    foa = plane_wave(-100, -15, n=SR // 4)
    w, y, z, x = foa
    raw = {
        "fuma": np.stack([w / np.sqrt(2), x, y, z]),
        "n3d": np.stack([w, np.sqrt(3) * y, np.sqrt(3) * z, np.sqrt(3) * x]) / 2,
        "ambix+headlocked": np.stack([w, y, z, x, 0.1 * w, -0.1 * w]),
    }[layout]
    path = tmp_path / "foa.wav"
    io.write_audio(path, raw, SR)
    out = io.read_audio(path, layout=layout)
    expected = foa / 2 if layout == "n3d" else foa
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("channels", [2, 3])
def test_wrong_channel_count_names_the_file(tmp_path, channels):
    path = tmp_path / f"ch{channels}.flac"
    io.write_audio(path, tones(channels, n=4800), SR)
    with pytest.raises(MediaError, match=rf"ch{channels}\.flac: has {channels} audio channels; layout 'ambix' needs 4"):
        io.read_audio(path)


def test_audio_window_past_the_end(tmp_path):
    path = tmp_path / "short.flac"
    io.write_audio(path, tones(4, n=SR), SR)
    with pytest.raises(MediaError, match="short.flac.*past the end"):
        io.read_audio(path, start_s=0.5, duration_s=1.0)
    with pytest.raises(MediaError, match="short.flac.*outside"):
        io.read_audio(path, start_s=3.0, duration_s=1.0)
    # A shortfall under one codec frame is zero-padded.
    tail = io.read_audio(path, start_s=0.5, duration_s=0.5 + 100 / SR, layout="raw")
    assert tail.shape == (4, SR // 2 + 100) and np.all(tail[:, -100:] == 0)


def test_bad_files_are_media_errors_naming_the_file(tmp_path, indexed_video):
    cases = {}
    cases["missing.mp4"] = None
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    data = indexed_video.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    for name, match in [("missing.mp4", "no such file"), ("empty.mp4", "empty file"),
                        ("noise.mp4", "not a readable"), ("truncated.mp4", "")]:
        for reader in (io.read_frames, io.read_audio, io.probe):
            with pytest.raises(MediaError, match=f"{name}.*{match}"):
                reader(tmp_path / name)
    audio_only = tmp_path / "audio_only.flac"
    io.write_audio(audio_only, tones(4, n=4800), SR)
    with pytest.raises(MediaError, match="audio_only.flac: no video stream"):
        io.read_frames(audio_only)


def test_truncated_stream_mid_file(tmp_path):
    """A Matroska file cut mid-stream: the readable part decodes, the rest is a clear error."""
    path = tmp_path / "cut.mkv"
    io.write_av(path, gray_frames(32), 16.0, audio=tones(4, n=2 * SR), sample_rate=SR, audio_codec="pcm_s16le", gop=8)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    assert io.read_frames(path, duration_s=0.25).shape[0] == 4
    with pytest.raises(MediaError, match="cut.mkv"):
        io.read_audio(path, start_s=0.0, duration_s=2.0, layout="raw")
    with pytest.raises(MediaError, match="cut.mkv"):
        io.read_frames(path, start_s=1.5, duration_s=0.5)


def test_decode_error_with_a_conversion_thread_is_a_media_error(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "CONVERT_THREAD_MIN_PIXELS", 0)
    path = tmp_path / "cut.mkv"
    io.write_av(path, gray_frames(32), 16.0, audio=tones(4, n=2 * SR), sample_rate=SR, audio_codec="pcm_s16le", gop=8)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    np.testing.assert_array_equal(frame_index(io.read_frames(path, duration_s=0.25)), [0, 1, 2, 3])
    with pytest.raises(MediaError, match="cut.mkv"):
        io.read_frames(path, start_s=1.5, duration_s=0.5)


def colour_frames(n: int, height: int = 128, width: int = 256) -> np.ndarray:
    """Smooth colour patterns that move with the frame index, (n, H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([128 + 100 * np.sin(x / 9 + k), 128 + 100 * np.cos(y / 7),
                               128 + 100 * np.sin(x / 20 + k) * np.cos(y / 15)], -1) for k in range(n)]).astype(np.uint8)


def test_yuv420p_frames_make_a_cache_clip_as_faithful_as_the_rgb_round_trip(tmp_path):
    """prepare's path for large sources: the decoder's YUV resized straight to yuv420p and encoded as it is.

    Against the ideal picture (a 2×2 box average of the source's decoded RGB), the clip it writes is as
    close as the one the RGB round trip writes (YUV → RGB at the new size → YUV for the encoder).
    """
    import av

    source = tmp_path / "source.mp4"
    io.write_av(source, colour_frames(4), 16.0, crf=10)
    ideal = io.read_frames(source).astype(np.float64).reshape(4, 64, 2, 128, 2, 3).mean(axis=(2, 4))
    yuv = list(io.stream_frames(source, size=(128, 64), pixel_format="yuv420p"))
    assert [(f.shape, f.dtype) for f in yuv] == [((96, 128), np.uint8)] * 4  # Y rows, then U and V rows
    rgb_of_yuv = av.VideoFrame.from_ndarray(yuv[0], format="yuv420p").to_ndarray(format="rgb24")
    assert np.abs(rgb_of_yuv - ideal[0]).mean() < 10.0  # the same picture, chroma at half resolution
    io.write_av(tmp_path / "direct.mp4", iter(yuv), 16.0, pixel_format="yuv420p")
    io.write_av(tmp_path / "round_trip.mp4", io.stream_frames(source, size=(128, 64)), 16.0)
    errors = {name: np.abs(io.read_frames(tmp_path / f"{name}.mp4") - ideal).mean()
              for name in ("direct", "round_trip")}
    # measured: 8.2 (direct) and 8.3 (round trip) grey levels, most of it H.264 at CRF 23 on chroma detail
    assert errors["direct"] <= 1.05 * errors["round_trip"], errors
    # Without a resize the decoder's planes come out untouched.
    whole = next(io.stream_frames(source, pixel_format="yuv420p"))
    with av.open(str(source)) as container:
        np.testing.assert_array_equal(whole, next(container.decode(video=0)).to_ndarray())


def test_pixel_formats_are_checked(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(InputError, match="pixel_format.*'nv12'"):
        io.write_av(path, colour_frames(2), 16.0, pixel_format="nv12")
    with pytest.raises(InputError, match=r"uint8 \(T, 3·H/2, W\)"):
        io.write_av(path, colour_frames(2), 16.0, pixel_format="yuv420p")
    with pytest.raises(InputError, match="3·H/2 rows"):
        io.write_av(path, np.zeros((2, 97, 128), np.uint8), 16.0, pixel_format="yuv420p")
    assert not path.exists()
    io.write_av(path, colour_frames(2), 16.0)
    with pytest.raises(InputError, match="pixel_format.*'bgr24'"):
        next(io.stream_frames(path, pixel_format="bgr24"))


@pytest.mark.parametrize("pixel_format", io.PIXEL_FORMATS)
def test_a_left_right_stereo_frame_keeps_its_left_eye(tmp_path, monkeypatch, pixel_format):
    """Spherical metadata saying left-right stereo: the left half is the picture (as top-bottom keeps the top)."""
    import av

    from avsa.media import metadata

    frames = np.zeros((2, 64, 256, 3), np.uint8)
    frames[:, :, 128:] = 255  # right eye white, left eye black
    path = tmp_path / "stereo.mp4"
    io.write_av(path, frames, 16.0, crf=10)
    monkeypatch.setattr(metadata, "read_spherical",
                        lambda _: metadata.SphericalInfo(projection="equirectangular", stereo_mode="left-right"))
    frame = next(io.stream_frames(path, size=(64, 32), pixel_format=pixel_format))
    rgb = frame if pixel_format == "rgb24" else av.VideoFrame.from_ndarray(frame, format="yuv420p").to_ndarray(
        format="rgb24")
    assert rgb.shape == (32, 64, 3) and rgb.max() < 20


@pytest.fixture(scope="module")
def panned_video(tmp_path_factory):
    """2 s of a panning texture at 30 fps with x264's default B-frames (some not referenced)."""
    path = tmp_path_factory.mktemp("panned") / "panned.mp4"
    texture = np.random.default_rng(0).integers(0, 256, (16, 32, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    io.write_av(path, np.stack([np.roll(texture, 5 * t, axis=1) for t in range(60)]), 30.0)
    return path


def nearest_frames_by_full_decode(path, *, start_s, duration_s, fps, size):
    """An independent read_frames: decode every frame, pick the nearest (earlier on a tie), then resize."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [(float(frame.pts * stream.time_base), frame) for frame in container.decode(stream)]
        times = np.array([t for t, _ in decoded])
        targets = start_s + np.arange(int(round(duration_s * fps))) / fps
        picks = [int(np.argmin(np.abs(times - target))) for target in targets]
        return np.stack([decoded[i][1].reformat(width=size[0], height=size[1], format="rgb24",
                                                interpolation="AREA").to_ndarray() for i in picks])


@pytest.mark.parametrize("convert_thread", [False, True])
@pytest.mark.parametrize("start_s, duration_s, fps", [(0.0, 2.0, 16.0), (0.4, 1.0, 10.0), (0.25, 1.5, 24.0),
                                                      (0.0, 1.0, 30.0), (1.0, 1.0, 7.0), (0.5, 0.5, 60.0)])
def test_skipping_unpicked_frames_keeps_every_pick(panned_video, monkeypatch, start_s, duration_s, fps,
                                                   convert_thread):
    if convert_thread:  # convert this small video's frames as large ones are converted
        monkeypatch.setattr(io, "CONVERT_THREAD_MIN_PIXELS", 0)
    got = io.read_frames(panned_video, start_s=start_s, duration_s=duration_s, fps=fps, size=(128, 64))
    want = nearest_frames_by_full_decode(panned_video, start_s=start_s, duration_s=duration_s, fps=fps,
                                         size=(128, 64))
    np.testing.assert_array_equal(got, want)


def test_non_reference_frames_no_target_picks_are_not_decoded(panned_video):
    import av

    def decoded_count(fps: float) -> int:
        with av.open(str(panned_video)) as container:
            stream = container.streams.video[0]
            return sum(1 for _ in io._decode_for_targets(container, stream, np.arange(int(2 * fps)) / fps))

    assert decoded_count(30.0) == 60  # every frame is picked at the native rate
    assert 30 < decoded_count(16.0) < 60  # frames only between two picks and not referenced are left out


# --------------------------------------------------------------------------- read_ahead


def test_read_ahead_keeps_order_and_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield from range(20)
        raise MediaError("clip.mp4", "broken at frame 20")

    got = []
    with pytest.raises(MediaError, match="clip.mp4.*frame 20"):
        for item in io.read_ahead(items(), ahead=3):
            got.append(item)
    assert got == list(range(20))


def test_read_ahead_left_early_stops_the_producer_and_closes_the_source_on_its_thread():
    import threading

    produced, closed_on = [], []

    def items():
        try:
            for k in range(10_000):
                produced.append(k)
                yield k
        finally:
            closed_on.append(threading.current_thread().name)

    reader = io.read_ahead(items(), ahead=2)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()
    assert closed_on == ["avsa-read-ahead"]  # closed where it ran, before close() returned
    assert len(produced) <= 3 + 2 + 1  # taken + queued + the one waiting to be queued
    assert not any(t.name == "avsa-read-ahead" for t in threading.enumerate())


def test_read_ahead_refuses_a_lookahead_below_one():
    with pytest.raises(InputError, match="ahead"):
        list(io.read_ahead(iter([1]), ahead=0))


def test_read_ahead_starts_producing_before_the_first_item_is_asked_for():
    import threading

    started = threading.Event()

    def items():
        started.set()
        yield 1

    with io.read_ahead(items()) as reader:
        assert started.wait(5.0)  # the first items decode while the caller does other work
        assert list(reader) == [1]
