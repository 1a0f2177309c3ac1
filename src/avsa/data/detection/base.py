"""Detections on the sphere: the record, the detector interfaces, the file format.

A 2-D detector (YOLO, an OpenCV model, a saliency blob finder, ...) sees an
ordinary image and returns pixel boxes (:class:`Box2D`). A 360° *runner*
(:mod:`.equirect`, :mod:`.tiles`) feeds it a frame and turns its boxes into
directions on the sphere (:class:`Detection`, radians, frame of
``docs/conventions.md``: azimuth positive to the left, elevation up).

Per clip the detections are stored as ``CACHE/detections/<name>/<clip_id>.json``::

    {"detector": "blob", "mode": "equirect",
     "detections": [{"azimuth": 0.1, "elevation": 0.0, "size": 0.4,
                     "label": "object", "score": 0.9, "time_s": 0.25}, ...]}

with ``time_s`` relative to the clip start (``avsa detect`` also stores the
``frame_times_s`` it ran on).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from avsa.errors import InputError, MediaError
from avsa.spatial import sphere

MODES = ("equirect", "tiles", "groundtruth", "precomputed")
"""Values of the ``mode`` field: how the detections were obtained."""


@dataclass(frozen=True)
class Box2D:
    """An axis-aligned box on an image, in continuous pixel coordinates.

    Pixel ``j`` covers ``[j, j + 1)``; ``x`` grows to the right, ``y`` down.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    score: float


@dataclass(frozen=True)
class Detection:
    """One object seen at one time, as a direction on the sphere.

    Attributes
    ----------
    azimuth, elevation : float
        Centre direction, radians (azimuth in (−π, π], positive left).
    size : float
        Angular width of the object, radians.
    label : str
        Class name (the detector's vocabulary).
    score : float
        Confidence in [0, 1].
    time_s : float
        Time of the frame, seconds from the clip start.
    """

    azimuth: float
    elevation: float
    size: float
    label: str
    score: float
    time_s: float

    def to_dict(self) -> dict:
        return {k: (v if isinstance(v, str) else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "detection") -> "Detection":
        try:
            det = cls(azimuth=float(d["azimuth"]), elevation=float(d["elevation"]),
                      size=float(d["size"]), label=str(d["label"]),
                      score=float(d["score"]), time_s=float(d["time_s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad detection {d!r} ({exc})") from None
        if not all(math.isfinite(x) for x in (det.azimuth, det.elevation, det.size, det.score, det.time_s)):
            raise InputError(f"{where}: non-finite value in detection {d!r}")
        return det


class ImageDetector(Protocol):
    """A 2-D detector on ordinary (perspective or equirect) images."""

    name: str

    def detect_image(self, image: np.ndarray) -> list[Box2D]:
        """Boxes on ``image``, uint8 ``(H, W, 3)`` RGB."""
        ...


class FrameRunner(Protocol):
    """Runs an :class:`ImageDetector` on a 360° equirect frame."""

    mode: str

    def detect_frame(self, frame: np.ndarray, *, time_s: float) -> list[Detection]:
        """Detections on ``frame``, uint8 equirect ``(H, W, 3)``, taken at ``time_s``."""
        ...


def angular_distance(az1: float, el1: float, az2: float, el2: float) -> float:
    """Great-circle angle between two directions, radians."""
    return float(sphere.angular_distance(float(az1), float(el1), float(az2), float(el2)))


def spherical_nms(detections: Sequence[Detection], *, overlap: float = 0.5,
                  min_distance: float = math.radians(3.0),
                  demoted: Sequence[bool] | None = None) -> list[Detection]:
    """Merge duplicates of one object seen twice (tile borders, the seam).

    Greedy non-maximum suppression on the sphere: detections are visited by
    decreasing score (those flagged in ``demoted``, e.g. cut by a tile border,
    after all others); one is dropped when a kept detection of the same label
    and time lies within ``max(min_distance, overlap × larger size)`` radians.

    Parameters
    ----------
    detections : sequence of Detection
    overlap : float
        Fraction of the larger angular size within which two centres are the
        same object.
    min_distance : float
        Radians; centres closer than this always merge.
    demoted : sequence of bool, optional
        Same length as ``detections``; True visits that one last.
    """
    dets = list(detections)
    flags = [False] * len(dets) if demoted is None else list(demoted)
    if len(flags) != len(dets):
        raise InputError(f"spherical_nms: {len(flags)} flags for {len(dets)} detections")
    order = sorted(range(len(dets)), key=lambda i: (flags[i], -dets[i].score))
    kept: list[Detection] = []
    for i in order:
        d = dets[i]
        duplicate = False
        for k in kept:
            if k.label != d.label or abs(k.time_s - d.time_s) > 1e-6:
                continue
            radius = max(min_distance, overlap * max(k.size, d.size))
            if angular_distance(k.azimuth, k.elevation, d.azimuth, d.elevation) < radius:
                duplicate = True
                break
        if not duplicate:
            kept.append(d)
    return kept


def in_window(detections: Iterable[Detection], start_s: float, duration_s: float) -> list[Detection]:
    """The detections with ``start_s <= time_s < start_s + duration_s``."""
    return [d for d in detections if start_s <= d.time_s < start_s + duration_s]


def save_detections(path: str | os.PathLike, detections: Sequence[Detection], *,
                    detector: str, mode: str, frame_times_s: Sequence[float] | None = None) -> None:
    """Write one clip's detections atomically (temporary file, then rename).

    ``frame_times_s`` (optional, stored as an extra field) lists the frame
    times the detector ran on, so frames without any detection are known.
    """
    if mode not in MODES:
        raise InputError(f"unknown detection mode {mode!r}; expected one of {MODES}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"detector": detector, "mode": mode,
           "detections": [d.to_dict() for d in detections]}
    if frame_times_s is not None:
        doc["frame_times_s"] = [float(t) for t in frame_times_s]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class DetectionFile:
    """The content of one ``detections/<name>/<clip_id>.json``."""

    detector: str
    mode: str
    detections: tuple[Detection, ...]
    frame_times_s: tuple[float, ...] | None = None


def load_detections(path: str | os.PathLike) -> DetectionFile:
    """Read one clip's detections; a malformed file raises :class:`MediaError`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise MediaError(path, "no such detections file (run `avsa detect` first)") from None
    except (OSError, ValueError) as exc:
        raise MediaError(path, f"unreadable detections file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("detections"), list):
        raise MediaError(path, "not a detections file: expected an object with a 'detections' list")
    try:
        dets = tuple(Detection.from_dict(d, where=str(path)) for d in doc["detections"])
    except InputError as exc:
        raise MediaError(path, str(exc)) from None
    times = doc.get("frame_times_s")
    return DetectionFile(detector=str(doc.get("detector", "")), mode=str(doc.get("mode", "")),
                         detections=dets,
                         frame_times_s=None if times is None else tuple(float(t) for t in times))
