"""How reliable ``avsa check --av`` and ``avsa calibrate read`` are on known-broken material.

    python benchmarks/bench_checks.py av [--videos 10 --seed 0 --duration 2]   # builds a synthetic world
    python benchmarks/bench_checks.py av --cache CACHE [--detections oracle]
    python benchmarks/bench_checks.py calibrate [--burst 0.5 --sample-rate 48000]

``av``: every clip of a prepared cache with detections (by default a synthetic world made here with
``avsa synth`` (256 px) → ``avsa prepare`` (128 px) → ``avsa detect --detector oracle``; the defaults
are the world of the tests) has its cached channels broken
by each named convention of :data:`avsa.data.avcheck.BROKEN` (and left as is), and turned by ways
outside the candidate set (a 30° yaw of the field, a random 4 × 4 channel mix); it prints, per
condition, how many clip verdicts are right / ambiguous with the right one among the tied / "no
convention fits" / wrong, the cache verdict, and the best agreement and margin (min, median, max) —
the figures the thresholds of :mod:`avsa.data.avcheck` were chosen from.

``calibrate``: writes the calibration video once, re-encodes its audio (AAC) under each named
convention, under Y↔Z and X↔Z swaps, with the audio delayed by 0.1–0.5 s, with two extra channels, and
as channels that are not FOA, and prints what ``read`` makes of each: the right map, a refusal, or a
wrong map.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _yaw(foa: np.ndarray, degrees: float) -> np.ndarray:
    from avsa.spatial.ambisonics import rotate
    from avsa.spatial.sphere import yaw

    return np.asarray(rotate(foa, yaw(math.radians(degrees))), dtype=np.float32)


def _mix(foa: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((4, 4)) @ foa).astype(np.float32) / 2


def _tally(verdicts: list, condition: str) -> Counter:
    """Right / tied (the right one among them) / nofit / wrong, of clip or cache verdicts under ``condition``."""
    from avsa.data import avcheck

    tally = Counter()
    for v in verdicts:
        if v.verdict == avcheck.NO_FIT:
            tally["nofit"] += 1
        elif len(v.ties) > 1:
            tally["tied" if condition in v.ties else "wrong"] += 1
        else:
            tally["right" if v.verdict == condition else "wrong"] += 1
    return tally


def bench_av(cache_path: Path, detections: str, group: int) -> None:
    import soundfile

    from avsa.data import avcheck
    from avsa.data.detection.base import load_detections
    from avsa.media.cache import Cache

    cache = Cache(cache_path)
    clips = []
    for clip in cache.clips():
        audio, rate = soundfile.read(cache.audio_path(clip), dtype="float32", always_2d=True)
        clips.append((clip.clip_id, audio.T, rate,
                      load_detections(cache.detections_dir(detections) / f"{clip.clip_id}.json").detections))
    conditions = {name: (lambda a, i, n=name: avcheck.break_channels(a, n)) for name in ("as is",) + avcheck.BROKEN}
    conditions["yaw 30° (outside the set)"] = lambda a, i: _yaw(a, 30.0)
    conditions["random 4x4 mix (outside the set)"] = lambda a, i: _mix(a, i)
    print(f"{cache_path}: {len(clips)} clips; agreement within {math.degrees(avcheck.AGREE_ANGLE):.0f}°, "
          f"fits from {avcheck.MIN_AGREEMENT:.2f}, ties within {avcheck.TIE_MARGIN:.2f}")
    print(f"per clip: right / tied (right among them) / no fit / wrong; best agreement and margin (min med max); "
          f"caches of {group} clips: the same counts and the best agreement (min max); the whole cache's verdict")
    for condition, breaker in conditions.items():
        inside = "outside" not in condition
        verdicts = [v for i, (cid, audio, rate, dets) in enumerate(clips)
                    if (v := avcheck.judge_clip(breaker(audio, i), rate, dets, clip_id=cid)) is not None]
        tally = _tally(verdicts, condition)
        groups = [avcheck.summary(verdicts[k:k + group]) for k in range(0, len(verdicts) - group + 1, group)]
        g = _tally(groups, condition)
        g_best = [s.agreement[s.best] for s in groups]
        best = np.array([v.agreement[v.best] for v in verdicts])
        margin = np.array([v.margin for v in verdicts])
        s = avcheck.summary(verdicts)
        right = "" if not inside else (" (right)" if s.verdict == condition else
                                       " (right among tied)" if condition in s.ties and len(s.ties) > 1 else "")
        counts = "/".join(str(tally[k]) for k in ("right", "tied", "nofit", "wrong"))
        g_counts = "/".join(str(g[k]) for k in ("right", "tied", "nofit", "wrong"))
        print(f"{condition:<34} clips {counts:<11} {best.min():.2f} {np.median(best):.2f} {best.max():.2f}  "
              f"{margin.min():.2f} {np.median(margin):.2f} {margin.max():.2f} | {len(groups)} caches {g_counts:<9} "
              f"{min(g_best):.2f} {max(g_best):.2f} | {s.verdict}{right} "
              f"[{100 * s.agreement[s.best]:.0f}%, margin {100 * s.margin:.0f} points]")


def _delay(audio: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """The audio ``seconds`` late, cut to its length (a copy whose audio track lags the video)."""
    n = int(round(seconds * rate))
    return np.concatenate([np.zeros((audio.shape[0], n), audio.dtype), audio[:, :audio.shape[1] - n]], axis=1)


def bench_calibrate(burst_s: float, rate: int) -> None:
    from avsa.data import avcheck
    from avsa.errors import MediaError
    from avsa.media import calibrate, io
    from avsa.media.layouts import parse_channel_map

    s3 = math.sqrt(3.0)
    conventions = {name: (lambda a, n=name: avcheck.break_channels(a, n), avcheck.channel_map(name))
                   for name in ("as is",) + avcheck.BROKEN}
    conventions["X, W/√2, -Y, Z (FuMa gain)"] = (lambda a: np.stack([a[3], a[0] / math.sqrt(2), -a[1], a[2]]),
                                                 "1*1.41421,-2,3,0")
    conventions["N3D"] = (lambda a: np.concatenate([a[:1], s3 * a[1:]]), calibrate.PRESET_MAPS["n3d"])
    conventions["YouTube AAC X, Y, W, 0, Z, 0"] = (
        lambda a: np.stack([a[3], a[1], a[0], 0 * a[0], a[2], 0 * a[0]]), "2,1,4,0")
    cases = {f"convention {name}": case for name, case in conventions.items()}
    for name in ("as is", "X, W/√2, -Y, Z (FuMa gain)"):
        breaker, expected = conventions[name]
        for delay in (0.1, 0.2, 0.3, 0.4, 0.5):
            cases[f"{name}, audio {delay:.1f} s late"] = (
                lambda a, b=breaker, d=delay: _delay(b(a), d, rate), expected, delay)
    noise = lambda a, seed: 0.05 * np.random.default_rng(seed).standard_normal((2, a.shape[1])).astype(np.float32)
    # six channels in FLAC: a 6-channel AAC is 5.1, whose channel 3 (the LFE) the encoder low-passes
    cases["ambiX + 2 head-locked (stereo decode), FLAC"] = (
        lambda a: np.concatenate([a, [0.25 * a[0] + 0.75 * a[1], 0.25 * a[0] - 0.75 * a[1]]]), "0,1,2,3")
    cases["ambiX + 2 head-locked (other sound), FLAC"] = (lambda a: np.concatenate([a, noise(a, 1)]), "0,1,2,3")
    cases["ambiX + 2 head-locked, 0.3 s late, FLAC"] = (
        lambda a: _delay(np.concatenate([a, noise(a, 2)]), 0.3, rate), "0,1,2,3", 0.3)
    cases["ambiX + 2 head-locked in 6-channel AAC"] = (lambda a: np.concatenate([a, noise(a, 1)]), None)
    cases["not FOA: yaw 30°"] = (lambda a: _yaw(a, 30.0), None)
    cases["not FOA: random 4x4 mix"] = (lambda a: _mix(a, 0), None)
    cases["not FOA: stereo up-mix L, R, L, R"] = (
        lambda a: np.stack([a[0] + a[1], a[0] - a[1]] * 2) / 2, None)
    tally = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        source = calibrate.write(Path(tmp) / "calibration.mp4", burst_s=burst_s, width=64, sample_rate=rate)
        frames, ambix = io.read_frames(source), io.read_audio(source, layout="raw")
        print(f"calibration video: burst {burst_s:g} s, {rate} Hz; each case re-encoded in AAC unless named")
        for name, (breaker, expected, *delay) in cases.items():
            path = Path(tmp) / "case.mp4"
            codec = "flac" if name.endswith("FLAC") else "aac"
            io.write_av(path, frames, 16.0, audio=np.clip(breaker(ambix), -1, 1), sample_rate=rate, audio_codec=codec)
            try:
                c = calibrate.read(path, burst_s=burst_s)
            except MediaError as error:
                outcome = "refused (right)" if expected is None else "refused"
                found = re.search(r"residual of (\S+)|different gains relative to W \(([^;]+);", str(error))
                detail = (f"fit residual {found[1]}" if found and found[1] else
                          f"dipole gains {found[2]}" if found else str(error)[:100])
            else:
                same = expected is not None and np.allclose(np.array(parse_channel_map(c.channel_map)),
                                                            np.array(parse_channel_map(expected)), atol=1e-3)
                outcome = "right" if same else "WRONG"
                detail = (f"{c.channel_map}  offset {c.offset_s:+.3f} s"
                          + (f" (true {delay[0]:+.3f})" if delay else "") + f", residual {c.residual:.3f}"
                          + "".join(f"; {n}" for n in c.notes))
            tally[outcome.split()[0]] += 1
            print(f"{name:<42} {outcome:<16} {detail}")
    print(", ".join(f"{k} {n}" for k, n in tally.items()) + f" of {len(cases)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    av = sub.add_parser("av")
    av.add_argument("--cache", type=Path, default=None, help="a prepared cache (default: make a synthetic one)")
    av.add_argument("--videos", type=int, default=10)
    av.add_argument("--seed", type=int, default=0)
    av.add_argument("--duration", type=float, default=2.0)
    av.add_argument("--detections", default="oracle")
    av.add_argument("--group", type=int, default=5, help="clips per sub-cache judged as one")
    cal = sub.add_parser("calibrate")
    cal.add_argument("--burst", type=float, default=0.5, help="as `avsa calibrate write --burst`")
    cal.add_argument("--sample-rate", type=int, default=48000)
    args = parser.parse_args()
    if args.what == "av" and args.cache is None:
        from avsa.cli import main as avsa

        with tempfile.TemporaryDirectory() as tmp:
            src, cache = Path(tmp) / "synth", Path(tmp) / "cache"
            for argv in (["synth", "--out", str(src), "--videos", str(args.videos), "--seed", str(args.seed),
                          "--duration", str(args.duration), "--width", "256"],
                         ["prepare", str(src), "--out", str(cache), "--width", "128", "--ground-truth"],
                         ["detect", str(cache), "--detector", "oracle"]):
                assert avsa(argv) == 0, argv
            bench_av(cache, "oracle", args.group)
    elif args.what == "av":
        bench_av(args.cache, args.detections, args.group)
    else:
        bench_calibrate(args.burst, args.sample_rate)


if __name__ == "__main__":
    main()
