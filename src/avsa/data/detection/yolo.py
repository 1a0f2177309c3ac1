"""Ultralytics YOLO, the paper's detector, as an optional backend.

``ultralytics`` is not a dependency of avsa: installing it pulls its own torch
and torchvision builds (and CUDA wheels), which this project's CPU torch does
not need. Install it yourself where a compatible torchvision exists; this
module imports it only when a :class:`YoloDetector` is made. Weights come from
a path you give; a missing file is an error (ultralytics would otherwise try to
download a model of that name).
"""

from __future__ import annotations

import os

import numpy as np

from avsa.data.detection.base import Box2D
from avsa.errors import ConfigError, InputError


def import_yolo():
    """``ultralytics.YOLO`` or a :class:`ConfigError` saying why it is unavailable."""
    try:
        from ultralytics import YOLO
    except Exception as exc:  # ImportError, or torchvision failing to load inside it
        raise ConfigError(f"the yolo detector needs the 'ultralytics' package, which could not be "
                          f"imported ({type(exc).__name__}: {exc})") from None
    return YOLO


class YoloDetector:
    """A YOLO model as an image detector.

    Parameters
    ----------
    weights : path-like
        A ``.pt`` checkpoint, or a model ``.yaml`` (an untrained network built
        from its config, for tests). Must exist locally.
    min_score : float
        Confidence threshold.
    image_size : int
        Inference size (ultralytics ``imgsz``).
    device : str
    """

    name = "yolo"

    def __init__(self, weights: str | os.PathLike, *, min_score: float = 0.25, image_size: int = 640,
                 device: str = "cpu"):
        if not os.path.isfile(weights):
            raise ConfigError(f"YOLO weights {os.fspath(weights)!r} not found; give a local file "
                              "(nothing is downloaded)")
        yolo = import_yolo()
        self.model = yolo(os.fspath(weights))
        self.min_score, self.image_size, self.device = min_score, image_size, device

    def detect_image(self, image: np.ndarray) -> list[Box2D]:
        """Boxes on ``image``, uint8 ``(H, W, 3)`` RGB."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an image of shape (H, W, 3), got {image.shape}")
        # ultralytics treats numpy input as BGR (OpenCV order)
        result = self.model.predict(np.ascontiguousarray(image[..., ::-1]), conf=self.min_score,
                                    imgsz=self.image_size, device=self.device, verbose=False)[0]
        names = result.names
        xyxy = result.boxes.xyxy.cpu().numpy().reshape(-1, 4)
        conf = result.boxes.conf.cpu().numpy().reshape(-1)
        cls = result.boxes.cls.cpu().numpy().reshape(-1).astype(int)
        return [Box2D(float(a), float(b), float(c), float(d), str(names.get(k, k)), float(s))
                for (a, b, c, d), s, k in zip(xyxy, conf, cls)]
