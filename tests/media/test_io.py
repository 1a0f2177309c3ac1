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
    """Frame i is uniformly gray at level 12·i (the frame index, readable after H.264)."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 12)[:, None, None, None], height * width * 3).reshape(
        n, height, width, 3
    )


def frame_index(frames: np.ndarray) -> np.ndarray:
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / 12).astype(int)


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


def test_missing_audio_stream_is_a_media_error(tmp_path):
    path = tmp_path / "silent_movie.mp4"
    io.write_av(path, gray_frames(4), 16.0)
    with pytest.raises(MediaError, match="silent_movie.mp4.*no audio stream"):
        io.read_audio(path)
