"""Video embeddings in bounded memory: streamed decoding, sliding windows, the default 360° view."""

import math
import weakref

import numpy as np
import pytest
import torch

import avsa
from avsa.inference.video import embed_windows, file_frames, sliding_windows
from avsa.media import io


class CountingFrames:
    """A stream of frames that records how many frames it made are still alive whenever it makes one."""

    def __init__(self, n: int, shape=(32, 64, 3)):
        self.n, self.shape = n, shape
        self.alive: list[weakref.ref] = []
        self.most_alive = 0

    def __iter__(self):
        rng = np.random.default_rng(0)
        for _ in range(self.n):
            self.alive = [r for r in self.alive if r() is not None]
            self.most_alive = max(self.most_alive, len(self.alive))
            frame = rng.integers(0, 255, self.shape, dtype=np.uint8)
            self.alive.append(weakref.ref(frame))
            yield frame
            del frame


def test_sliding_windows_hold_at_most_one_window_of_frames():
    stream = CountingFrames(200)
    windows = [(first, window.shape) for first, window in sliding_windows(stream, n_frames=8, hop_frames=3)]
    assert stream.most_alive <= 8
    assert [first for first, _ in windows] == list(range(0, 200 - 8 + 1, 3))
    assert all(shape == (8, 32, 64, 3) for _, shape in windows)


def test_a_short_stream_gives_one_padded_window():
    frames = [np.full((2, 4, 3), i, np.uint8) for i in range(3)]
    (first, window), = sliding_windows(iter(frames), n_frames=8, hop_frames=8)
    assert first == 0 and window.shape == (8, 2, 4, 3) and (window[3:] == 2).all()


def test_embedding_a_long_stream_never_holds_more_than_a_window(tiny_run):
    p = avsa.load(tiny_run, device="cpu").pretrained
    stream = CountingFrames(160)
    emb, times = embed_windows(p, stream, hop_s=0.25, batch_size=4)
    assert stream.most_alive <= p.n_frames
    assert emb.shape == (len(times), p.dim) and np.allclose(np.diff(times), 0.25)
    assert times[0] == pytest.approx(p.n_frames / 2 / p.config.data.fps)


def test_files_are_decoded_a_frame_at_a_time_at_the_model_width(tiny_run, tmp_path):
    p = avsa.load(tiny_run, device="cpu").pretrained
    frames = np.random.default_rng(0).integers(0, 255, (48, 256, 512, 3), dtype=np.uint8)
    path = tmp_path / "wide.mp4"
    io.write_av(path, frames, 24.0)
    stream = io.stream_frames(path, fps=16.0, size=(64, 32))
    assert next(stream).shape == (32, 64, 3)  # lazily: one frame decoded and resized
    stream.close()
    decoded = list(file_frames(p, path))
    assert p.equirect_width < 512
    assert len(decoded) == 32 and decoded[0].shape == (p.equirect_width // 2, p.equirect_width, 3)
    model = avsa.load(tiny_run, device="cpu")
    emb, times = model.embed_video(path)
    assert emb.shape == (len(times), p.dim) and len(times) == 4


def test_the_default_view_is_the_mean_of_four_crops_around_the_horizon(tiny_run, monkeypatch):
    model = avsa.load(tiny_run, device="cpu")
    p = model.pretrained
    frames = np.random.default_rng(1).integers(0, 255, (16, 64, 128, 3), dtype=np.uint8)
    window = torch.from_numpy(frames[:8])
    around = p.video_views(window)
    for k, az in enumerate((0, 90, 180, -90)):
        torch.testing.assert_close(around[k], p.video_views(window, view="crop", azimuth=math.radians(az))[0])
    assert around.shape == (4, 3, 8, p.crop_size, p.crop_size)
    # with an encoder that keeps what it sees, the default embedding is the mean over the four crops
    monkeypatch.setattr(p, "encode", lambda video, audio, batch_size=0: (video.flatten(1)[:, ::97], None))
    default, _ = model.embed_video(frames, 16.0)
    crops = [model.embed_video(frames, 16.0, view="crop", azimuth_deg=az)[0] for az in (0, 90, 180, -90)]
    np.testing.assert_allclose(default, np.mean(crops, axis=0), rtol=1e-5, atol=1e-5)
    centre, _ = model.embed_video(frames, 16.0, view="perspective")
    assert not np.allclose(default, centre)
    with pytest.raises(avsa.InputError, match="view must be one of"):
        model.embed_video(frames, 16.0, view="sideways")
