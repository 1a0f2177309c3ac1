"""Pretrained Haar-cascade detectors shipped inside ``opencv-python-headless`` 4.x.

The 4.x wheels carry ``cv2/data/haarcascade_*.xml`` (frontal human faces —
Intel License Agreement; cat faces — J. Howse; upper/full bodies — Kruppa &
Schiele / Intel; all BSD-style licences stated in each file's header), so this
detector works offline with no download. OpenCV 5 wheels no longer ship them.
It finds faces and bodies only: a real pretrained detector for a few classes,
far weaker than YOLO. Optional: needs ``pip install "opencv-python-headless<5"``.
"""

from __future__ import annotations

import os

import numpy as np

from avsa.data.detection.base import Box2D
from avsa.errors import ConfigError, InputError

DEFAULT_CASCADES = {
    "person": "haarcascade_frontalface_default.xml",
    "cat": "haarcascade_frontalcatface.xml",
}
"""Label → cascade file name in ``cv2.data.haarcascades``."""


def import_cv2():
    """Import OpenCV or raise a :class:`ConfigError` saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise ConfigError("this detector needs OpenCV: pip install 'opencv-python-headless<5'") from None
    return cv2


class HaarCascadeDetector:
    """OpenCV Haar cascades as an image detector.

    Parameters
    ----------
    cascades : dict[str, str], optional
        Label → cascade file (a name in ``cv2.data.haarcascades`` or a path).
    scale_factor, min_neighbors : float, int
        ``CascadeClassifier.detectMultiScale`` options.
    min_size : int
        Smallest box side in pixels.
    """

    name = "haar"

    def __init__(self, cascades: dict[str, str] | None = None, *, scale_factor: float = 1.1,
                 min_neighbors: int = 4, min_size: int = 12):
        cv2 = import_cv2()
        self._cv2 = cv2
        data_dir = getattr(getattr(cv2, "data", None), "haarcascades", "")
        self.classifiers = {}
        for label, file in (cascades or DEFAULT_CASCADES).items():
            path = file if os.path.isfile(file) else os.path.join(data_dir, file)
            clf = cv2.CascadeClassifier(path) if os.path.isfile(path) else None
            if clf is None or clf.empty():
                raise ConfigError(f"Haar cascade {file!r} for {label!r} not found "
                                  "(OpenCV 5 wheels do not ship them; use opencv-python-headless<5)")
            self.classifiers[label] = clf
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def detect_image(self, image: np.ndarray) -> list[Box2D]:
        """Boxes on ``image``, uint8 ``(H, W, 3)`` RGB; score from the cascade's level weight."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"expected a uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        grey = self._cv2.cvtColor(np.ascontiguousarray(image), self._cv2.COLOR_RGB2GRAY)
        boxes = []
        for label, clf in self.classifiers.items():
            rects, _, weights = clf.detectMultiScale3(
                grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_size, self.min_size), outputRejectLevels=True)
            for (x, y, w, h), wt in zip(np.reshape(rects, (-1, 4)), np.reshape(weights, (-1,))):
                score = float(1.0 / (1.0 + np.exp(-float(wt))))  # level weight → (0, 1)
                boxes.append(Box2D(float(x), float(y), float(x + w), float(y + h), label, score))
        return boxes
