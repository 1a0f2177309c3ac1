"""Object detection on 360° frames: 2-D detectors, 360° runners, stored detections.

See :mod:`.base` for the record and file format, :mod:`.equirect` and
:mod:`.tiles` for the two ways to run a 2-D detector on the sphere.
"""

from avsa.data.detection.base import (Box2D, Detection, DetectionFile, ImageDetector, FrameRunner,
                                      in_window, load_detections, save_detections, spherical_nms)

__all__ = ["Box2D", "Detection", "DetectionFile", "ImageDetector", "FrameRunner", "in_window",
           "load_detections", "save_detections", "spherical_nms"]
