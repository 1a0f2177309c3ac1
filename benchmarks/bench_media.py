"""Training windows (8 frames + 1 s of FOA) decoded per second: cache vs sources.

Writes a few source videos like real downloads (1024×512 at 25 fps, x264's
long default keyframe interval, 48 kHz 4-ch FLAC), prepares them into a cache
(512×256, 16 fps, GOP 8, 24 kHz), then times the same random windows

* from the cache (``ClipWindows``: keyframe seek + sample-exact FLAC seek),
* from the source files (``io.read_frames`` + ``io.read_audio`` with
  resampling, as a loader without a cache would),
* the limit: decoding the cache's clips start to end (every frame, all audio),
  expressed as windows' worth per second,

and prints the ratios (medians of three interleaved runs). Goal: cache windows
≥ 0.8 of decode-only. A window pays a keyframe seek, the frames before it in
its GOP and the FLAC seek, and opening the video (≈ 4–7 ms at 512×256, about
as much as decoding the window). Run: ``python benchmarks/bench_media.py`` (< 3 min).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import math
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile
import torch

from avsa.media import io
from avsa.media.cache import Cache
from avsa.media.clips import ClipWindows, windows_for_eval
from avsa.media.prepare import PrepareOptions, prepare

N_SOURCES = 3
SOURCE_SECONDS = 10.0
SOURCE_SIZE = (1024, 512)
SOURCE_FPS = 25
SOURCE_RATE = 48000
WINDOWS_PER_CLIP = 12
REPEATS = 3


def write_sources(folder: Path) -> None:
    """Moving textured equirect frames + a 4-ch plane-wave FOA track per source."""
    width, height = SOURCE_SIZE
    folder.mkdir(parents=True, exist_ok=True)
    n_frames = int(SOURCE_SECONDS * SOURCE_FPS)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    for k in range(N_SOURCES):
        frames = np.stack([np.roll(texture, 3 * t + k, axis=1) for t in range(n_frames)])
        s = 0.2 * rng.standard_normal(int(SOURCE_SECONDS * SOURCE_RATE))
        g = np.array([1.0, math.sin(0.5), 0.0, math.cos(0.5)])
        io.write_av(folder / f"src{k}.mp4", frames, SOURCE_FPS, audio=(g[:, None] * s).astype(np.float32),
                    sample_rate=SOURCE_RATE, crf=28)


def time_cache(dataset: ClipWindows) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return len(dataset) / (time.perf_counter() - start)


def time_sources(cache: Cache, dataset: ClipWindows, src: Path) -> float:
    """The same windows read from the source files (seek + decode + resize + resample)."""
    start = time.perf_counter()
    for window in dataset.windows:
        clip = cache.clip(window.clip_id)
        audio_start = clip.start_s + window.first_frame / 16.0 - 0.25
        frames = io.read_frames(src / clip.source, start_s=audio_start + 0.25, duration_s=0.5, fps=16.0,
                                size=(512, 256))
        audio = io.read_audio(src / clip.source, start_s=audio_start, duration_s=1.0, sample_rate=24000)
        assert frames.shape == (8, 256, 512, 3) and audio.shape == (4, 24000)
    return len(dataset.windows) / (time.perf_counter() - start)


def time_decode_only(cache: Cache) -> float:
    """Windows' worth (8 frames + 24000 samples) per second, decoding clips end to end."""
    n_frames = n_samples = 0
    start = time.perf_counter()
    for clip in cache.clips():
        with av.open(str(cache.video_path(clip))) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format="rgb24")
                n_frames += 1
        n_samples += soundfile.read(cache.audio_path(clip), dtype="float32")[0].shape[0]
    elapsed = time.perf_counter() - start
    return min(n_frames / 8, n_samples / 24000) / elapsed


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_sources(root / "src")
        t1 = time.perf_counter()
        prepare(root / "src", root / "cache", options=PrepareOptions(width=512), progress=False)
        t2 = time.perf_counter()
        cache = Cache(root / "cache")
        windows = windows_for_eval(cache, None, WINDOWS_PER_CLIP, seed=0)
        dataset = ClipWindows(cache, split=None, windows=windows)
        runs = [(time_cache(dataset), time_sources(cache, dataset, root / "src"), time_decode_only(cache))
                for _ in range(REPEATS)]  # interleaved, so all three see the same load on a shared machine
        cached, direct, limit = (float(np.median(column)) for column in zip(*runs))
    print(f"{N_SOURCES} sources of {SOURCE_SECONDS:g} s {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} @ {SOURCE_FPS} fps; "
          f"written in {t1 - t0:.1f} s, prepared (512x256, 16 fps, GOP 8) in {t2 - t1:.1f} s "
          f"({N_SOURCES * SOURCE_SECONDS / (t2 - t1):.1f}x real time, 1 process)")
    print(f"{len(windows)} windows (8 frames 512x256 + 1 s 4-ch audio at 24 kHz), one core:")
    print(f"  from the cache        {cached:7.1f} windows/s")
    print(f"  from the sources      {direct:7.1f} windows/s   cache / sources = {cached / direct:.2f}x")
    print(f"  decode-only of cache  {limit:7.1f} windows/s   cache / limit   = {cached / limit:.2f} (goal >= 0.8)")
    print(f"  (medians of {REPEATS} interleaved runs; cache / limit per run: "
          + ", ".join(f"{c / l:.2f}" for c, _, l in runs) + ")")


if __name__ == "__main__":
    main()
