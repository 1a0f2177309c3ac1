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

The work is :func:`avsa.data.detection.run.detect`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from avsa.data.detection.run import DETECTORS, MODES, TILINGS, DetectOptions, detect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", type=Path, help="a cache written by avsa prepare")
    parser.add_argument("--detector", required=True, choices=DETECTORS)
    parser.add_argument("--mode", default="equirect", choices=MODES,
                        help="image detectors: on the equirect frame or on perspective tiles")
    parser.add_argument("--tiles", default="overlap", choices=TILINGS,
                        help="tiles mode: 6 cube faces or 16 overlapping views")
    parser.add_argument("--tile-fov-deg", type=float, default=90.0)
    parser.add_argument("--tile-size", type=int, default=256, help="tile side, pixels")
    parser.add_argument("--weights", type=Path, help="yolo / opencv-dnn: local model file")
    parser.add_argument("--config", type=Path, help="opencv-dnn: network description file")
    parser.add_argument("--labels", type=Path, help="opencv-dnn: class names, one per line")
    parser.add_argument("--min-score", type=float, default=0.25)
    parser.add_argument("--blob-k", type=float, default=3.0,
                        help="blob: saliency threshold mean + k·std (lower finds more, and more texture)")
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


def run(args: argparse.Namespace) -> int:
    options = DetectOptions(**{f.name: getattr(args, f.name) for f in fields(DetectOptions)})
    counts = detect(args.cache, options, report_recall=args.report_recall, max_angle_deg=args.max_angle_deg)
    return 1 if counts.nothing_detected else 0
