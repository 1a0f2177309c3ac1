"""Run an object detector over a prepared cache (``avsa detect``), and the recall of what it found.

Writes ``CACHE/detections/<name>/<clip_id>.json`` (format in
:mod:`avsa.data.detection.base`), one frame in ``every_n_frames``. Reruns
skip clips already done (files are written atomically); ``shard`` splits
the clips over machines; a clip that fails is reported and skipped.

Detectors: ``oracle`` / ``oracle-sounding`` (the synthetic ground truth — the
answer, for experiments only), ``precomputed`` (``file``), ``blob``
(weight-free saliency blobs), ``haar`` (OpenCV's shipped face/cat cascades),
``opencv-dnn`` (an SSD model from ``weights``/``config``), ``yolo``
(ultralytics, ``weights``). Image detectors run ``mode="equirect"`` (the
paper) or ``mode="tiles"`` (perspective tiles). The folder name defaults to
the detector (``oracle``, ``precomputed``) or ``<detector>-<mode>``::

    done, skipped, failures = detect_cache("demo_out/cache", DetectOptions(detector="oracle"))

:func:`recall_table` gives, for every detections folder of a cache, the
recall of sounding ground-truth objects on the synthetic clips.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from avsa.data.detection.base import load_detections, save_detections
from avsa.data.detection.recall import Recall, recall_of_sounding_objects
from avsa.errors import AvsaError, ConfigError

IMAGE_DETECTORS = ("blob", "haar", "opencv-dnn", "yolo")
DETECTORS = ("oracle", "oracle-sounding", "precomputed") + IMAGE_DETECTORS
MODES = ("equirect", "tiles")
TILINGS = ("cube", "overlap")


@dataclass(frozen=True)
class DetectOptions:
    """What :func:`detect_cache` runs; the defaults are those of ``avsa detect``.

    Attributes
    ----------
    detector : str
        One of :data:`DETECTORS`.
    mode : {"equirect", "tiles"}
        Image detectors: on the equirect frame or on perspective tiles.
    tiles : {"cube", "overlap"}
        Tiles mode: 6 cube faces or 16 overlapping views.
    tile_fov_deg : float
    tile_size : int
        Tile side, pixels.
    weights, config, labels : Path or None
        yolo / opencv-dnn: local model file; opencv-dnn: network description
        and class names (one per line). Nothing is downloaded.
    min_score : float
    blob_k : float
        blob: saliency threshold, mean + k·std of the saliency map (lower finds more).
    file : Path or None
        precomputed: detections JSON/CSV.
    name : str or None
        Detections folder name (default :func:`default_name`).
    every_n_frames : int
        Detect on one frame in N.
    fps : float
        Frame rate the clips are read at.
    split : str or None
        Only clips of this split.
    shard : str
        ``i/N``: only this part of the clips.
    overwrite : bool
        Redo clips already done.
    """

    detector: str
    mode: str = "equirect"
    tiles: str = "overlap"
    tile_fov_deg: float = 90.0
    tile_size: int = 256
    weights: Path | None = None
    config: Path | None = None
    labels: Path | None = None
    min_score: float = 0.25
    blob_k: float = 3.0
    file: Path | None = None
    name: str | None = None
    every_n_frames: int = 4
    fps: float = 16.0
    split: str | None = None
    shard: str = "0/1"
    overwrite: bool = False


class DetectCounts(NamedTuple):
    """What :func:`detect_cache` did: clips done, clips already done, and the failures (clip id, problem)."""

    done: int
    skipped: int
    failures: list[tuple[str, str]]

    @property
    def nothing_detected(self) -> bool:
        """Every clip tried failed and none was done before (``avsa detect`` then exits with status 1)."""
        return bool(self.failures) and not self.done and not self.skipped


def default_name(detector: str, mode: str) -> str:
    return f"{detector}-{mode}" if detector in IMAGE_DETECTORS else detector


def build_image_detector(options: DetectOptions):
    """The 2-D detector named by ``options.detector`` (imports optional packages lazily)."""
    if options.detector == "blob":
        from avsa.data.detection.blob import SaliencyBlobDetector
        return SaliencyBlobDetector(k=options.blob_k)
    if options.detector == "haar":
        from avsa.data.detection.haar import HaarCascadeDetector
        return HaarCascadeDetector()
    if options.weights is None:
        raise ConfigError(f"--detector {options.detector} needs --weights PATH (nothing is downloaded)")
    if options.detector == "yolo":
        from avsa.data.detection.yolo import YoloDetector
        return YoloDetector(options.weights, min_score=options.min_score)
    from avsa.data.detection.opencv_dnn import OpenCVDnnDetector
    labels = None
    if options.labels is not None:
        try:
            labels = [line.strip() for line in options.labels.read_text().splitlines()]
        except OSError as exc:
            raise ConfigError(f"--labels {options.labels}: {exc}") from None
    return OpenCVDnnDetector(options.weights, options.config, labels=labels, min_score=options.min_score)


def build_runner(options: DetectOptions):
    """The 360° runner around the image detector (``options.mode``)."""
    detector = build_image_detector(options)
    if options.mode == "tiles":
        from avsa.data.detection.tiles import TileRunner
        return TileRunner(detector, tiles=options.tiles, fov=math.radians(options.tile_fov_deg),
                          size=options.tile_size)
    from avsa.data.detection.equirect import EquirectRunner
    return EquirectRunner(detector)


def sample_times(duration_s: float, *, fps: float, every: int) -> np.ndarray:
    """Times of the frames detected on: every ``every``-th frame at ``fps``."""
    n = int(math.floor(duration_s * fps + 1e-6))
    return np.arange(0, n, every) / fps


class ClipDetector:
    """Detections of one cache clip, for the detector the options name."""

    def __init__(self, options: DetectOptions, cache):
        self.options, self.cache = options, cache
        self.oracle = self.precomputed = self.runner = None
        if options.detector.startswith("oracle"):
            from avsa.data.detection.oracle import GroundTruthOracle
            self.oracle = GroundTruthOracle(sounding_only=options.detector == "oracle-sounding")
            self.mode = self.oracle.mode
        elif options.detector == "precomputed":
            if options.file is None:
                raise ConfigError("--detector precomputed needs --file PATH (JSON or CSV)")
            from avsa.data.detection.precomputed import PrecomputedDetections
            self.precomputed = PrecomputedDetections(options.file)
            self.mode = self.precomputed.mode
        else:
            self.runner = build_runner(options)
            self.mode = self.runner.mode

    def __call__(self, clip) -> tuple[list, np.ndarray]:
        options = self.options
        if self.precomputed is not None:
            dets = self.precomputed.for_clip(clip.clip_id)
            return dets, np.array(sorted({d.time_s for d in dets}))
        if self.oracle is not None:
            gt = self.cache.groundtruth(clip)
            if gt is None:
                raise ConfigError(f"clip {clip.clip_id} has no ground truth (the oracle needs a synthetic cache)")
            times = sample_times(gt.duration_s, fps=options.fps, every=options.every_n_frames)
            return self.oracle.detect_times(gt, times), times
        from avsa.media.io import read_frames
        frames = read_frames(self.cache.video_path(clip), fps=options.fps)
        idx = np.arange(0, len(frames), options.every_n_frames)
        times = idx / options.fps
        dets = []
        for i, t in zip(idx, times):
            dets.extend(self.runner.detect_frame(frames[i], time_s=float(t)))
        return dets, times


def detect_cache(cache_root: str | os.PathLike, options: DetectOptions) -> DetectCounts:
    """Run the detector of ``options`` over the clips of a prepared cache.

    Writes ``CACHE/detections/<name>/<clip_id>.json``; clips already done are
    skipped unless ``options.overwrite``; a clip that fails is reported and skipped.

    Returns
    -------
    DetectCounts
    """
    from avsa.media.cache import Cache, check_clip_id
    from avsa.media.sources import in_shard, parse_shard

    if options.every_n_frames < 1:
        raise ConfigError(f"--every-n-frames must be at least 1, got {options.every_n_frames}")
    if options.fps <= 0:
        raise ConfigError(f"--fps must be positive, got {options.fps}")
    shard = parse_shard(options.shard)
    cache = Cache(cache_root)
    name = options.name or default_name(options.detector, options.mode)
    out_dir = cache.detections_dir(name)
    clips = [c for c in cache.clips(options.split) if in_shard(c.clip_id, shard)]
    detect = ClipDetector(options, cache)
    done = skipped = 0
    failures: list[tuple[str, str]] = []
    for clip in tqdm(clips, desc=f"detect {name}", unit="clip", disable=None):
        path = out_dir / f"{check_clip_id(clip.clip_id, where=str(cache.root / 'manifest.csv'))}.json"
        if path.exists() and not options.overwrite:
            skipped += 1
            continue
        try:
            dets, times = detect(clip)
        except (AvsaError, OSError, ValueError, RuntimeError) as exc:
            failures.append((clip.clip_id, f"{type(exc).__name__}: {exc}"))
            continue
        save_detections(path, dets, detector=options.detector, mode=detect.mode, frame_times_s=times)
        done += 1
    return DetectCounts(done, skipped, failures)


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


def detect(cache_root: str | os.PathLike, options: DetectOptions, *, report_recall: bool = False,
           max_angle_deg: float = 15.0) -> DetectCounts:
    """``avsa detect``: :func:`detect_cache`, its counts printed (each failure on stderr), then the recall table.

    Parameters
    ----------
    cache_root : path
    options : DetectOptions
    report_recall : bool
        Then print the recall of sounding objects of every detections folder (:func:`recall_table`).
    max_angle_deg : float
        Recall: a detection this close to an object finds it.

    Returns
    -------
    As :func:`detect_cache`.
    """
    counts = detect_cache(cache_root, options)
    done, skipped, failures = counts
    print(f"detect: {done} clips done, {skipped} already done, {len(failures)} failed")
    for clip_id, problem in failures:
        print(f"  failed {clip_id}: {problem}", file=sys.stderr)
    if report_recall:
        print_recall(recall_table(cache_root, max_angle=math.radians(max_angle_deg), split=options.split),
                     max_angle_deg)
    return counts
