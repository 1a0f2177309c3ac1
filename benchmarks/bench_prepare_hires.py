"""``avsa prepare`` on 4K–6K sources against its decode limit.

Writes two sources like real 360° downloads (H.264 High profile with CABAC,
x264's long default keyframe interval, 4-ch ambiX AAC at 48 kHz):
3840×1920 at 30 fps and 5760×2880 at 29.97 fps (30000/1001), each a little
longer than one clip. Then, per source and round, interleaved so that both
see the same load on a shared machine, it times

* **decode-only** (the limit): open the file with PyAV and decode every
  frame of its video and audio streams from the start to the end, converting
  nothing, with the decoder's thread settings that ``avsa.media.io`` uses
  (PyAV's defaults: slice threading, which H.264 files cut in one slice per
  frame do not use, so one core);
* **prepare**: ``prepare`` of that one source into a new cache (one clip of
  10 s: 160 frames at 512×256 and 16 fps, 24 kHz FLAC), one job, after a
  first ``prepare`` of a small source has paid the one-time imports.

It prints, from the medians over the rounds:

* ``decode/prepare`` = decode-only time ÷ prepare time, of the wall clock
  and of CPU time (this process, all its threads: what a machine running
  one job per core pays, and steadier than the wall clock on a shared
  machine). Goal ≥ 0.8: prepare takes at most 1.25× the time of decoding
  the file;
* clips per second per core (1 ÷ prepare's CPU seconds per clip) and the
  core-hours that 100 000 such clips take.

``prepare`` decodes fewer frames than decode-only: an H.264 frame between two
picked frames that no other frame refers to is not decoded (see
``io._decode_for_targets``), so the ratio can exceed 1. It converts the
picked frames (the decoder's YUV to the encoder's yuv420p at 512×256 in one
libswscale pass, ``prepare.DIRECT_YUV_MIN_PIXELS``) on a second thread while
the next ones decode, and decodes on a thread of its own while
the frames before encode (``io.read_ahead``), so with a free core its
wall-clock time is below its CPU time.

Run: ``python benchmarks/bench_prepare_hires.py`` (a few minutes, most of it
writing the sources into a temporary folder; ``--keep DIR`` keeps them there
for the next run). ``--rounds``, ``--seconds`` and ``--sizes`` shorten or
lengthen it.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsa.media import io
from avsa.media.prepare import PrepareOptions, prepare

SIZES = {"4k": (3840, 1920, Fraction(30)), "6k": (5760, 2880, Fraction(30000, 1001))}
AUDIO_RATE = 48000
CLIPS_FOR_PROJECTION = 100_000


def write_source(path: Path, width: int, height: int, fps: Fraction, seconds: float) -> None:
    """A panning textured equirect (yuv420p, H.264 CRF 23) and a 4-ch plane-wave AAC track.

    Frames are written plane by plane, so a 6K source never holds more than
    one frame in memory.
    """
    rng = np.random.default_rng(0)
    block = 16
    # Luma: smooth large-scale shading plus blocky detail, so the bit rate is that of a busy scene.
    y, x = np.mgrid[0:height, 0:width]
    shade = 96 + 64 * np.sin(2 * np.pi * x / width) * np.cos(np.pi * (y / height - 0.5))
    detail = rng.integers(-40, 41, (height // block, width // block)).repeat(block, 0).repeat(block, 1)
    luma = np.clip(shade + detail, 16, 235).astype(np.uint8)
    chroma = (128 + 40 * np.sin(2 * np.pi * x[::2, ::2] / width)).astype(np.uint8)
    n_frames = int(math.ceil(seconds * fps))
    step = max(2, width // 480) & ~1  # pan a few pixels per frame
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "superfast", "crf": "23"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=AUDIO_RATE, options={"b": str(4 * 96000)})
        audio.codec_context.layout = "quad"
        for t in range(n_frames):
            plane_u = np.roll(chroma, t * step // 2, axis=1)
            planes = np.concatenate([np.roll(luma, t * step, axis=1),
                                     np.concatenate([plane_u, plane_u[:, ::-1]], axis=1).reshape(height // 2, width)])
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = t
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        n_samples = int(round(n_frames / fps * AUDIO_RATE))
        signal = 0.2 * rng.standard_normal(n_samples).astype(np.float32)
        gains = np.array([1.0, math.sin(0.5), 0.0, math.cos(0.5)], np.float32)
        block_size = audio.codec_context.frame_size or 1024
        for offset in range(0, n_samples, block_size):
            chunk = np.ascontiguousarray(gains[:, None] * signal[None, offset: offset + block_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="quad")
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, offset, Fraction(1, AUDIO_RATE)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)


def decode_only(path: Path) -> int:
    """Decode every video and audio frame of ``path``, converting nothing; returns the video frame count."""
    n_frames = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0, audio=0):
            n_frames += isinstance(frame, av.VideoFrame)
    return n_frames


def cpu_seconds() -> float:
    """CPU time of this process, every thread included."""
    times = os.times()
    return times.user + times.system


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def write_warmup_source(folder: Path) -> None:
    """1.5 s at 512×256: preparing it first pays the imports that ``prepare`` makes on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    io.write_av(folder / "warmup.mp4", rng.integers(0, 256, (24, 256, 512, 3), dtype=np.uint8), 16.0,
                audio=(0.1 * rng.standard_normal((4, AUDIO_RATE * 3 // 2))).astype(np.float32),
                sample_rate=AUDIO_RATE, audio_codec="aac")


def run_prepare(source_dir: Path, cache: Path) -> None:
    _, manifest, failures = prepare(source_dir, cache, options=PrepareOptions(), progress=False)
    assert not failures and [row["status"] for row in manifest] == ["ok"], (manifest, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.4, help="source length (one 10-s clip each)")
    parser.add_argument("--sizes", default="4k,6k", help="comma-separated subset of " + ",".join(SIZES))
    parser.add_argument("--keep", type=Path, default=None, help="write the sources here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="avsa-bench-hires-") as tmp:
        root = args.keep or Path(tmp)
        rows = []
        write_warmup_source(Path(tmp) / "warmup")
        run_prepare(Path(tmp) / "warmup", Path(tmp) / "cache_warmup")
        for name in args.sizes.split(","):
            width, height, fps = SIZES[name]
            source_dir = root / name
            source_dir.mkdir(parents=True, exist_ok=True)
            source = source_dir / f"src_{name}.mp4"
            if not source.is_file():
                start = time.perf_counter()
                write_source(source, width, height, fps, args.seconds)
                mbit_s = source.stat().st_size * 8 / args.seconds / 1e6
                print(f"wrote {source.name}: {width}x{height} @ {float(fps):.3f} fps, {args.seconds:g} s, "
                      f"{mbit_s:.0f} Mb/s, in {time.perf_counter() - start:.0f} s", flush=True)
            decode_runs, prepare_runs = [], []
            for round_index in range(args.rounds):
                cache = Path(tmp) / f"cache_{name}_{round_index}"
                decode_runs.append(timed(lambda: decode_only(source)))
                prepare_runs.append(timed(lambda: run_prepare(source_dir, cache)))
            decode_wall, decode_cpu = np.median(decode_runs, axis=0)
            prepare_wall, prepare_cpu = np.median(prepare_runs, axis=0)
            rows.append((name, width, height, fps, decode_wall, decode_cpu, prepare_wall, prepare_cpu,
                         [(d[0] / p[0], d[1] / p[1]) for d, p in zip(decode_runs, prepare_runs)]))
    print(f"\nprepare of one 10-s clip (512x256, 16 fps) per source, 1 job, "
          f"{os.cpu_count()} CPUs; medians of {args.rounds} interleaved rounds")
    print("source              decode-only s (wall/cpu)  prepare s (wall/cpu)  decode/prepare wall  cpu   "
          "clips/s/core  100k clips")
    for name, width, height, fps, dw, dc, pw, pc, per_round in rows:
        print(f"{width}x{height} @ {float(fps):5.2f}  {dw:8.2f} / {dc:6.2f}        {pw:7.2f} / {pc:6.2f}      "
              f"{dw / pw:5.2f}             {dc / pc:4.2f}  {1 / pc:8.3f}      "
              f"{CLIPS_FOR_PROJECTION * pc / 3600:6.0f} core-h")
        print("  decode/prepare per round (wall/cpu): " + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in per_round))
    print("goal: decode/prepare >= 0.8 (decode-only time / prepare time)")


if __name__ == "__main__":
    main()
