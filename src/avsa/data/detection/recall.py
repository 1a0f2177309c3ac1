"""How many sounding objects a detector finds, on synthetic clips with ground truth.

A sounding ground-truth object at a frame time counts as found when a
detection of that frame lies within ``max_angle`` of its centre (labels are
ignored unless ``match_label``: detector vocabularies differ from the
synthetic world's classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from avsa.data.detection.base import Detection, angular_distance


@dataclass(frozen=True)
class Recall:
    """Found / total sounding object-frames, and false detections (far from every object)."""

    found: int
    total: int
    detections: int
    false_detections: int

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else float("nan")

    def __add__(self, other: "Recall") -> "Recall":
        return Recall(self.found + other.found, self.total + other.total,
                      self.detections + other.detections,
                      self.false_detections + other.false_detections)


def recall_of_sounding_objects(detections: Sequence[Detection], groundtruth,
                               times_s: Sequence[float] | None = None, *,
                               max_angle: float = math.radians(15.0),
                               match_label: bool = False) -> Recall:
    """Recall of sounding objects of one clip.

    Parameters
    ----------
    detections : sequence of Detection
        The clip's detections (clip-relative ``time_s``).
    groundtruth : avsa.media.groundtruth.GroundTruth
        The clip's ground truth (clip-relative times).
    times_s : sequence of float, optional
        Frame times the detector ran on; default the distinct detection times.
    max_angle : float
        Radians.
    match_label : bool
        Also require the detection's label to equal the object's.
    """
    by_time: dict[float, list[Detection]] = {}
    for d in detections:
        by_time.setdefault(round(d.time_s, 6), []).append(d)
    times = sorted(by_time) if times_s is None else [round(float(t), 6) for t in times_s]
    found = total = n_det = false = 0
    for t in times:
        objs = groundtruth.at(min(max(t, 0.0), groundtruth.duration_s))
        dets = by_time.get(t, [])
        n_det += len(dets)
        near = np.zeros((len(objs), len(dets)), dtype=bool)
        for i, o in enumerate(objs):
            for j, d in enumerate(dets):
                near[i, j] = (angular_distance(o.azimuth, o.elevation, d.azimuth, d.elevation) <= max_angle
                              and (not match_label or o.label == d.label))
        false += int((~near.any(axis=0)).sum()) if objs else len(dets)
        for i, o in enumerate(objs):
            if o.sounding:
                total += 1
                found += int(near[i].any())
    return Recall(found=found, total=total, detections=n_det, false_detections=false)
