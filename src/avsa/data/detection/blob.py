"""A class-agnostic saliency blob detector that needs no weights.

Spectral-residual saliency (Hou & Zhang, CVPR 2007), summed over an
intensity and two colour-opponent channels (R − G, B − Y) of the downsampled
image, thresholded at ``mean + k·std``; each connected region becomes a box
labelled ``"object"``. It finds things that stand out of their surroundings —
in the synthetic world, the photographs pasted over a textured background —
and knows nothing of classes. A stand-in for a real detector where no weights
are available, not a replacement for one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avsa.data.detection.base import Box2D
from avsa.errors import InputError


def spectral_residual_saliency(grey: np.ndarray, *, smooth: float = 2.0) -> np.ndarray:
    """Saliency map of a float image ``(H, W)``, same shape, in [0, 1]."""
    f = np.fft.fft2(grey)
    log_amp = np.log(np.abs(f) + 1e-8)
    residual = log_amp - ndimage.uniform_filter(log_amp, size=3, mode="wrap")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    sal = ndimage.gaussian_filter(sal, smooth, mode="wrap")
    top = sal.max()
    return sal / top if top > 0 else sal


class SaliencyBlobDetector:
    """Salient regions as boxes (see module doc).

    Parameters
    ----------
    work_height : int
        Height the image is downsampled to before the saliency map.
    k : float
        Threshold = mean + k·std of the saliency map.
    min_area : float
        Smallest region kept, as a fraction of the image area.
    max_boxes : int
        At most this many boxes, the most salient first.
    """

    name = "blob"

    def __init__(self, *, work_height: int = 64, k: float = 3.0, min_area: float = 0.0005,
                 max_boxes: int = 10):
        if work_height < 8:
            raise InputError(f"work_height must be at least 8, got {work_height}")
        if not np.isfinite(k):
            raise InputError(f"blob threshold k must be a finite number, got {k}")
        self.work_height, self.k, self.min_area, self.max_boxes = work_height, k, min_area, max_boxes

    def detect_image(self, image: np.ndarray) -> list[Box2D]:
        """Boxes on ``image``, uint8 ``(H, W, 3)``."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an image of shape (H, W, 3), got {image.shape}")
        h, w = image.shape[:2]
        scale = min(1.0, self.work_height / h)
        rgb = image.astype(np.float32) / 255.0
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        sal = None
        for channel in ((r + g + b) / 3, r - g, b - (r + g) / 2):
            small = ndimage.zoom(channel, scale, order=1) if scale < 1.0 else channel
            s = spectral_residual_saliency(small)
            sal = s if sal is None else sal + s
        sal = sal / sal.max() if sal.max() > 0 else sal
        mask = sal > sal.mean() + self.k * sal.std()
        labels, n = ndimage.label(mask)
        if n == 0:
            return []
        sy, sx = h / small.shape[0], w / small.shape[1]
        peaks = ndimage.maximum(sal, labels, index=np.arange(1, n + 1))
        boxes = []
        for i, sl in enumerate(ndimage.find_objects(labels)):
            ys, xs = sl
            area = (ys.stop - ys.start) * (xs.stop - xs.start) / (small.shape[0] * small.shape[1])
            if area < self.min_area:
                continue
            boxes.append(Box2D(x0=xs.start * sx, y0=ys.start * sy, x1=xs.stop * sx, y1=ys.stop * sy,
                               label="object", score=float(peaks[i])))
        boxes.sort(key=lambda b: -b.score)
        return boxes[: self.max_boxes]
