"""Detections read from the synthetic world's ground truth — the answer key.

:class:`GroundTruthOracle` does not look at pixels: it returns where the
synthetic objects *are*. It exists for experiments (an upper bound for object
crops, a reference for detector recall) and must never stand in for a detector
on real data.
"""

from __future__ import annotations

from typing import Sequence

from avsa.data.detection.base import Detection


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
