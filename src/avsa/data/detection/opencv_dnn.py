"""An SSD-style detector run through OpenCV's DNN module, from user-supplied files.

No pip package found here ships SSD-MobileNet (or any COCO detector) weights
for OpenCV's DNN module, so this backend takes the model files the user has
(e.g. a TensorFlow ``frozen_inference_graph.pb`` + ``.pbtxt``, Caffe
``.caffemodel`` + ``.prototxt``, or ONNX) and never downloads anything. The
network must output SSD detections, shape ``(1, 1, N, 7)`` rows
``[image_id, class_id, score, x0, y0, x1, y1]`` with coordinates in [0, 1].
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from avsa.data.detection.base import Box2D
from avsa.data.detection.haar import import_cv2
from avsa.errors import ConfigError, InputError


def parse_ssd_output(out: np.ndarray, *, width: int, height: int, labels: Sequence[str] | None,
                     min_score: float) -> list[Box2D]:
    """SSD rows ``(…, 7)`` → boxes in pixels of a ``width × height`` image."""
    rows = np.asarray(out, dtype=np.float64).reshape(-1, 7)
    boxes = []
    for _, cls, score, x0, y0, x1, y1 in rows:
        if score < min_score:
            continue
        cls = int(cls)
        label = labels[cls] if labels is not None and 0 <= cls < len(labels) else str(cls)
        boxes.append(Box2D(float(np.clip(x0, 0, 1) * width), float(np.clip(y0, 0, 1) * height),
                           float(np.clip(x1, 0, 1) * width), float(np.clip(y1, 0, 1) * height),
                           label, float(score)))
    return boxes


class OpenCVDnnDetector:
    """An SSD detector loaded with ``cv2.dnn.readNet`` (see module doc).

    Parameters
    ----------
    model : path-like
        Weights file (``.pb``, ``.caffemodel``, ``.onnx``, ...).
    config : path-like, optional
        Network description (``.pbtxt``, ``.prototxt``) when the format needs one.
    labels : sequence of str, optional
        Class names indexed by class id.
    input_size : int
        Square network input side (300 for SSD-MobileNet).
    mean, scale, swap_rb
        ``cv2.dnn.blobFromImage`` pre-processing.
    min_score : float
    """

    name = "opencv-dnn"

    def __init__(self, model: str | os.PathLike, config: str | os.PathLike | None = None, *,
                 labels: Sequence[str] | None = None, input_size: int = 300,
                 mean: tuple[float, float, float] = (127.5, 127.5, 127.5), scale: float = 1 / 127.5,
                 swap_rb: bool = False, min_score: float = 0.3):
        cv2 = import_cv2()
        for p in (model, config):
            if p is not None and not os.path.isfile(p):
                raise ConfigError(f"model file {os.fspath(p)!r} not found (nothing is downloaded)")
        self._cv2 = cv2
        self.net = cv2.dnn.readNet(os.fspath(model), "" if config is None else os.fspath(config))
        self.labels = labels
        self.input_size, self.mean, self.scale, self.swap_rb = input_size, mean, scale, swap_rb
        self.min_score = min_score

    def detect_image(self, image: np.ndarray) -> list[Box2D]:
        """Boxes on ``image``, uint8 ``(H, W, 3)`` RGB."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an image of shape (H, W, 3), got {image.shape}")
        h, w = image.shape[:2]
        # blobFromImage expects BGR; swapRB=True would turn our RGB back into BGR order.
        blob = self._cv2.dnn.blobFromImage(np.ascontiguousarray(image[..., ::-1]), self.scale,
                                           (self.input_size, self.input_size), self.mean,
                                           swapRB=self.swap_rb, crop=False)
        self.net.setInput(blob)
        return parse_ssd_output(self.net.forward(), width=w, height=h, labels=self.labels,
                                min_score=self.min_score)
