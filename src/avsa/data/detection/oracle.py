"""Detections read from the synthetic world's ground truth — the answer key.

:class:`GroundTruthOracle` does not look at pixels: it returns where the
synthetic objects *are*. It exists for experiments (an upper bound for object
crops, a reference for detector recall) and must never stand in for a detector
on real data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from avsa.data.detection.base import Detection, load_detections, save_detections
from avsa.spatial import sphere


class GroundTruthOracle:
    """Every (or every sounding) ground-truth object at the asked times.

    Parameters
    ----------
    sounding_only : bool
        Report only objects that emit sound (a perfect "sound-source detector").
    """

    mode = "groundtruth"

    def __init__(self, *, sounding_only: bool = False):
        self.sounding_only = sounding_only

    @property
    def name(self) -> str:
        return "oracle-sounding" if self.sounding_only else "oracle"

    def detect_times(self, groundtruth, times_s: Sequence[float]) -> list[Detection]:
        """Detections of ``groundtruth`` (an ``avsa.media.groundtruth.GroundTruth``) at ``times_s``.

        Score is 1 for every object; times are as given (clip-relative when the
        ground truth is the clip's slice).
        """
        out = []
        for t in times_s:
            for obj in groundtruth.at(float(t)):
                if self.sounding_only and not obj.sounding:
                    continue
                out.append(Detection(azimuth=float(obj.azimuth), elevation=float(obj.elevation),
                                     size=float(obj.size), label=str(obj.label), score=1.0,
                                     time_s=float(t)))
        return out


def jitter_detections(cache: Path | str, *, sigma_deg: float, seed: int = 0, source: str = "oracle") -> str:
    """Copy ``CACHE/detections/<source>`` with every detection moved like a real detector's error.

    Each detection is rotated away from its centre by an angle ~|N(0, σ)| in a
    uniformly random direction on the sphere. Returns the new detector name.
    """
    cache = Path(cache)
    name = f"{source}-jitter{sigma_deg:g}"
    src, dst = cache / "detections" / source, cache / "detections" / name
    rng = np.random.default_rng(seed)
    for path in sorted(src.glob("*.json")):
        target = dst / path.name
        if target.exists():
            continue
        f = load_detections(path)
        moved = []
        if f.detections:
            az, el = sphere.perturb_directions([d.azimuth for d in f.detections],
                                               [d.elevation for d in f.detections], math.radians(sigma_deg), rng)
            moved = [Detection(float(a), float(e), d.size, d.label, d.score, d.time_s)
                     for d, a, e in zip(f.detections, az.tolist(), el.tolist())]
        save_detections(target, moved, detector=name, mode=f.mode, frame_times_s=f.frame_times_s)
    return name
