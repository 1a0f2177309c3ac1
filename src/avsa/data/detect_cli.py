"""``avsa detect CACHE --detector NAME``: detections for every clip of a prepared cache.

Writes ``CACHE/detections/<name>/<clip_id>.json`` (format in
:mod:`avsa.data.detection.base`), one frame in ``--every-n-frames``. Reruns
skip clips already done (files are written atomically); ``--shard i/N``
splits the clips over machines; a clip that fails is reported and skipped.

Detectors: ``oracle`` / ``oracle-sounding`` (the synthetic ground truth — the
answer, for experiments only), ``precomputed`` (``--file``), ``blob``
(weight-free saliency blobs), ``haar`` (OpenCV's shipped face/cat cascades),
``opencv-dnn`` (an SSD model from ``--weights``/``--config``), ``yolo``
(ultralytics, ``--weights``). Image detectors run ``--mode equirect`` (the
paper) or ``--mode tiles`` (perspective tiles). The folder name defaults to
the detector (``oracle``, ``precomputed``) or ``<detector>-<mode>``.

``--report-recall`` then prints, for every detections folder of the cache,
the recall of sounding ground-truth objects on the synthetic clips.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avsa.data.detection.base import load_detections, save_detections
from avsa.data.detection.recall import Recall, recall_of_sounding_objects
from avsa.errors import AvsaError, ConfigError

IMAGE_DETECTORS = ("blob", "haar", "opencv-dnn", "yolo")
DETECTORS = ("oracle", "oracle-sounding", "precomputed") + IMAGE_DETECTORS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", type=Path, help="a cache written by avsa prepare")
    parser.add_argument("--detector", required=True, choices=DETECTORS)
    parser.add_argument("--mode", default="equirect", choices=("equirect", "tiles"),
                        help="image detectors: on the equirect frame or on perspective tiles")
    parser.add_argument("--tiles", default="overlap", choices=("cube", "overlap"),
                        help="tiles mode: 6 cube faces or 16 overlapping views")
    parser.add_argument("--tile-fov-deg", type=float, default=90.0)
    parser.add_argument("--tile-size", type=int, default=256, help="tile side, pixels")
    parser.add_argument("--weights", type=Path, help="yolo / opencv-dnn: local model file")
    parser.add_argument("--config", type=Path, help="opencv-dnn: network description file")
    parser.add_argument("--labels", type=Path, help="opencv-dnn: class names, one per line")
    parser.add_argument("--min-score", type=float, default=0.25)
    parser.add_argument("--file", type=Path, help="precomputed: detections JSON/CSV")
    parser.add_argument("--name", help="detections folder name (default: see above)")
    parser.add_argument("--every-n-frames", type=int, default=4, help="detect on one frame in N")
    parser.add_argument("--fps", type=float, default=16.0, help="frame rate the clips are read at")
    parser.add_argument("--split", help="only clips of this split")
    parser.add_argument("--shard", default="0/1", help="i/N: only this part of the clips")
    parser.add_argument("--overwrite", action="store_true", help="redo clips already done")
    parser.add_argument("--report-recall", action="store_true",
                        help="print recall of sounding objects for every detections folder")
    parser.add_argument("--max-angle-deg", type=float, default=15.0,
                        help="recall: a detection this close to an object finds it")


def default_name(detector: str, mode: str) -> str:
    return f"{detector}-{mode}" if detector in IMAGE_DETECTORS else detector


def build_image_detector(args: argparse.Namespace):
    """The 2-D detector named by ``args.detector`` (imports optional packages lazily)."""
    if args.detector == "blob":
        from avsa.data.detection.blob import SaliencyBlobDetector
        return SaliencyBlobDetector()
    if args.detector == "haar":
        from avsa.data.detection.haar import HaarCascadeDetector
        return HaarCascadeDetector()
    if args.weights is None:
        raise ConfigError(f"--detector {args.detector} needs --weights PATH (nothing is downloaded)")
    if args.detector == "yolo":
        from avsa.data.detection.yolo import YoloDetector
        return YoloDetector(args.weights, min_score=args.min_score)
    from avsa.data.detection.opencv_dnn import OpenCVDnnDetector
    labels = None
    if args.labels is not None:
        try:
            labels = [line.strip() for line in args.labels.read_text().splitlines()]
        except OSError as exc:
            raise ConfigError(f"--labels {args.labels}: {exc}") from None
    return OpenCVDnnDetector(args.weights, args.config, labels=labels, min_score=args.min_score)


def build_runner(args: argparse.Namespace):
    """The 360° runner around the image detector (``--mode``)."""
    detector = build_image_detector(args)
    if args.mode == "tiles":
        from avsa.data.detection.tiles import TileRunner
        return TileRunner(detector, tiles=args.tiles, fov=math.radians(args.tile_fov_deg),
                          size=args.tile_size)
    from avsa.data.detection.equirect import EquirectRunner
    return EquirectRunner(detector)


def sample_times(duration_s: float, *, fps: float, every: int) -> np.ndarray:
    """Times of the frames detected on: every ``every``-th frame at ``fps``."""
    n = int(math.floor(duration_s * fps + 1e-6))
    return np.arange(0, n, every) / fps


class ClipDetector:
    """Detections of one cache clip, for the detector the arguments name."""

    def __init__(self, args: argparse.Namespace, cache):
        self.args, self.cache = args, cache
        self.oracle = self.precomputed = self.runner = None
        if args.detector.startswith("oracle"):
            from avsa.data.detection.oracle import GroundTruthOracle
            self.oracle = GroundTruthOracle(sounding_only=args.detector == "oracle-sounding")
            self.mode = self.oracle.mode
        elif args.detector == "precomputed":
            if args.file is None:
                raise ConfigError("--detector precomputed needs --file PATH (JSON or CSV)")
            from avsa.data.detection.precomputed import PrecomputedDetections
            self.precomputed = PrecomputedDetections(args.file)
            self.mode = self.precomputed.mode
        else:
            self.runner = build_runner(args)
            self.mode = self.runner.mode

    def __call__(self, clip) -> tuple[list, np.ndarray]:
        args = self.args
        if self.precomputed is not None:
            dets = self.precomputed.for_clip(clip.clip_id)
            return dets, np.array(sorted({d.time_s for d in dets}))
        if self.oracle is not None:
            gt = self.cache.groundtruth(clip)
            if gt is None:
                raise ConfigError(f"clip {clip.clip_id} has no ground truth (the oracle needs a synthetic cache)")
            times = sample_times(gt.duration_s, fps=args.fps, every=args.every_n_frames)
            return self.oracle.detect_times(gt, times), times
        from avsa.media.io import read_frames
        frames = read_frames(self.cache.video_path(clip), fps=args.fps)
        idx = np.arange(0, len(frames), args.every_n_frames)
        times = idx / args.fps
        dets = []
        for i, t in zip(idx, times):
            dets.extend(self.runner.detect_frame(frames[i], time_s=float(t)))
        return dets, times


def detect_cache(args: argparse.Namespace) -> tuple[int, int, list[tuple[str, str]]]:
    """Run the detector over the cache's clips; returns (done, skipped, failures)."""
    from avsa.media.cache import Cache, check_clip_id
    from avsa.media.sources import in_shard, parse_shard

    if args.every_n_frames < 1:
        raise ConfigError(f"--every-n-frames must be at least 1, got {args.every_n_frames}")
    if args.fps <= 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    shard = parse_shard(args.shard)
    cache = Cache(args.cache)
    name = args.name or default_name(args.detector, args.mode)
    out_dir = cache.detections_dir(name)
    clips = [c for c in cache.clips(args.split) if in_shard(c.clip_id, shard)]
    detect = ClipDetector(args, cache)
    done = skipped = 0
    failures: list[tuple[str, str]] = []
    for clip in tqdm(clips, desc=f"detect {name}", unit="clip", disable=None):
        path = out_dir / f"{check_clip_id(clip.clip_id, where=str(cache.root / 'manifest.csv'))}.json"
        if path.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            dets, times = detect(clip)
        except (AvsaError, OSError, ValueError, RuntimeError) as exc:
            failures.append((clip.clip_id, f"{type(exc).__name__}: {exc}"))
            continue
        save_detections(path, dets, detector=args.detector, mode=detect.mode, frame_times_s=times)
        done += 1
    return done, skipped, failures


def recall_table(cache_root: Path, *, max_angle: float, split: str | None = None) -> dict[str, Recall]:
    """Recall of sounding objects per detections folder, over clips with ground truth."""
    from avsa.media.cache import Cache

    cache = Cache(cache_root)
    root = cache.root / "detections"
    table: dict[str, Recall] = {}
    if not root.is_dir():
        return table
    clips = [c for c in cache.clips(split) if c.groundtruth]
    gts = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        total = Recall(0, 0, 0, 0)
        for clip in clips:
            path = folder / f"{clip.clip_id}.json"
            if not path.exists():
                continue
            if clip.clip_id not in gts:
                gts[clip.clip_id] = cache.groundtruth(clip)
            f = load_detections(path)
            total = total + recall_of_sounding_objects(f.detections, gts[clip.clip_id], f.frame_times_s,
                                                       max_angle=max_angle)
        if total.total:
            table[folder.name] = total
    return table


def print_recall(table: dict[str, Recall], max_angle_deg: float, file=None) -> None:
    file = file if file is not None else sys.stdout  # read at call time (a default would freeze the stream)
    print(f"recall of sounding objects (a detection within {max_angle_deg:g}°)", file=file)
    print(f"{'detections':<24} {'found':>7} {'total':>7} {'recall':>7} {'det/frame-obj':>14} {'false':>7}",
          file=file)
    for name, r in table.items():
        print(f"{name:<24} {r.found:>7d} {r.total:>7d} {r.recall:>7.3f} "
              f"{r.detections / max(r.total, 1):>14.2f} {r.false_detections:>7d}", file=file)


def run(args: argparse.Namespace) -> int:
    done, skipped, failures = detect_cache(args)
    print(f"detect: {done} clips done, {skipped} already done, {len(failures)} failed")
    for clip_id, problem in failures:
        print(f"  failed {clip_id}: {problem}", file=sys.stderr)
    if args.report_recall:
        print_recall(recall_table(args.cache, max_angle=math.radians(args.max_angle_deg), split=args.split),
                     args.max_angle_deg)
    return 1 if failures and not done and not skipped else 0
