"""Run a 2-D detector on the equirectangular frame directly, as the paper did.

The frame is padded circularly in width before detection, so an object cut by
the ±180° seam is seen whole once; a box is kept when its centre falls in the
original frame, and what is seen twice is merged (:func:`.base.spherical_nms`).
The box centre becomes the direction (``docs/conventions.md`` §2); the angular size
is the larger of the box's angular width on the sphere, Δu·(2π/W)·cos φ, and
its angular height Δv·(π/H). (The paper's Δu·2π/W is the same at the horizon;
off the horizon the equirect frame stretches widths by 1/cos φ.)
"""

from __future__ import annotations

import math

import numpy as np

from avsa.data.detection.base import Box2D, Detection, ImageDetector, spherical_nms
from avsa.errors import InputError
from avsa.spatial.sphere import equirect_to_direction


def check_frame(frame: np.ndarray, *, equirect: bool = True) -> np.ndarray:
    """Validate a uint8 ``(H, W, 3)`` frame (``W = 2H`` when ``equirect``)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"expected a frame of shape (H, W, 3), got {frame.shape}")
    if frame.dtype != np.uint8:
        raise InputError(f"expected a uint8 frame, got {frame.dtype}")
    if equirect and frame.shape[1] != 2 * frame.shape[0]:
        raise InputError(f"an equirect frame has W = 2H, got H={frame.shape[0]}, W={frame.shape[1]}")
    return frame


class EquirectRunner:
    """A 2-D detector applied to the whole equirect frame.

    Parameters
    ----------
    detector : ImageDetector
    seam_pad : float
        Fraction of the width copied from the other side onto each side before
        detection (0.125 = 45°), so seam-straddling objects are seen whole.
    """

    mode = "equirect"

    def __init__(self, detector: ImageDetector, *, seam_pad: float = 0.125):
        if not 0.0 <= seam_pad <= 0.5:
            raise InputError(f"seam_pad must be in [0, 0.5], got {seam_pad}")
        self.detector = detector
        self.seam_pad = seam_pad

    def detect_frame(self, frame: np.ndarray, *, time_s: float) -> list[Detection]:
        """Detections on one equirect frame, uint8 ``(H, W, 3)``, at ``time_s`` seconds."""
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        pad = int(round(self.seam_pad * w))
        padded = np.concatenate([frame[:, w - pad:], frame, frame[:, :pad]], axis=1) if pad else frame
        return self.boxes_to_detections(self.detector.detect_image(np.ascontiguousarray(padded)),
                                        width=w, height=h, pad=pad, time_s=time_s)

    @staticmethod
    def boxes_to_detections(boxes: list[Box2D], *, width: int, height: int, pad: int = 0,
                            time_s: float) -> list[Detection]:
        """Map boxes on a frame padded by ``pad`` columns each side to directions."""
        dets = []
        for b in boxes:
            cu = 0.5 * (b.x0 + b.x1) - pad
            if not 0.0 <= cu < width:
                continue  # its copy whose centre is inside the frame is kept instead
            cv = float(np.clip(0.5 * (b.y0 + b.y1), 0.0, height))
            az, el = equirect_to_direction(np.array([cu]), np.array([cv]), width, height)
            az, el = float(np.asarray(az).reshape(-1)[0]), float(np.asarray(el).reshape(-1)[0])
            ang_w = (b.x1 - b.x0) * 2 * math.pi / width * math.cos(el)
            ang_h = (b.y1 - b.y0) * math.pi / height
            dets.append(Detection(azimuth=az, elevation=el, size=float(max(ang_w, ang_h)),
                                  label=b.label, score=float(b.score), time_s=float(time_s)))
        return spherical_nms(dets)
