"""Drawing the synthetic world's frames: photos on the sphere, gnomonically.

For every equirectangular pixel near an object, its direction d is rotated into
the object's camera frame c = M·d with M = Ry(φ0)·Rz(−θ0) (``front_rotation``,
conventions §4), and the inverse gnomonic projection a = −c_y/c_x,
b = −c_z/c_x (conventions §7: image columns left→right, rows top→bottom) gives
the point of the photo seen there. A photo of angular width ``size`` spans
a ∈ [−tan(size/2), tan(size/2)]; its height keeps the photo's aspect. Only the
pixels inside the object's bounding spherical cap are touched.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from avsa.media.synth.looks import Look, background, look
from avsa.media.synth.scenes import SceneLayout


@functools.lru_cache(maxsize=8)
def pixel_directions(width: int, height: int) -> np.ndarray:
    """Unit direction of every equirect pixel centre, float32 (H, W, 3) = (x, y, z)."""
    az = np.pi * (1 - 2 * (np.arange(width) + 0.5) / width)
    el = (np.pi / 2) * (1 - 2 * (np.arange(height) + 0.5) / height)
    az, el = np.meshgrid(az, el)
    d = np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=-1)
    d.setflags(write=False)
    return d.astype(np.float32)


def _front_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """M = Ry(φ0)·Rz(−θ0), brings (θ0, φ0) to the front (conventions §4)."""
    ca, sa, ce, se = math.cos(azimuth), math.sin(azimuth), math.cos(elevation), math.sin(elevation)
    rz = np.array([[ca, sa, 0.0], [-sa, ca, 0.0], [0.0, 0.0, 1.0]])  # Rz(−θ0)
    ry = np.array([[ce, 0.0, se], [0.0, 1.0, 0.0], [-se, 0.0, ce]])  # Ry(φ0)
    return ry @ rz


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of image (h, w, ...) at array coordinates x (column), y (row)."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def object_half_extent(size: float, aspect: float) -> tuple[float, float]:
    """Half-width and half-height of an object's image plane, tan units.

    Parameters
    ----------
    size : float
        Angular width, radians.
    aspect : float
        Photo height / width.
    """
    t = math.tan(size / 2)
    return t, t * aspect


def draw_object(frame: np.ndarray, obj_look: Look, azimuth: float, elevation: float, size: float) -> None:
    """Draw one photo onto an equirect frame, in place.

    Parameters
    ----------
    frame : np.ndarray, float32, shape (H, W, 3), values in [0, 1]
    obj_look : Look
    azimuth, elevation : float
        Centre direction of the photo, radians.
    size : float
        Angular width of the photo, radians.
    """
    height, width = frame.shape[:2]
    h_img, w_img = obj_look.alpha.shape
    t, tv = object_half_extent(size, h_img / w_img)
    radius = math.atan(math.hypot(t, tv)) + 2 * math.pi / width  # bounding cap, plus a pixel
    top, bottom = elevation + radius, elevation - radius
    r0 = max(0, int(math.floor(height * (0.5 - top / math.pi))))
    r1 = min(height, int(math.ceil(height * (0.5 - bottom / math.pi))) + 1)
    if top >= math.pi / 2 or bottom <= -math.pi / 2 or radius >= math.pi / 2 - abs(elevation):
        cols = np.arange(width)
    else:
        half = math.asin(min(1.0, math.sin(radius) / math.cos(elevation)))
        u0 = width * (0.5 - azimuth / (2 * math.pi))
        n = int(math.ceil(half / (2 * math.pi) * width)) + 1
        cols = np.arange(int(math.floor(u0)) - n, int(math.floor(u0)) + n + 1) % width
        cols = np.unique(cols)
    dirs = pixel_directions(width, height)[r0:r1][:, cols]  # (h', w', 3)
    c = dirs @ _front_rotation(azimuth, elevation).T.astype(np.float32)
    cx = c[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = -c[..., 1] / cx
        b = -c[..., 2] / cx
    inside = (cx > 1e-6) & (np.abs(a) <= t) & (np.abs(b) <= tv)
    if not inside.any():
        return
    rows_i, cols_i = np.nonzero(inside)
    x = (a[inside] / t + 1) / 2 * w_img - 0.5
    y = (b[inside] / tv + 1) / 2 * h_img - 0.5
    alpha = _bilinear(obj_look.alpha, x, y)[:, None]
    colour = _bilinear(obj_look.image, x, y)
    rr, cc = r0 + rows_i, cols[cols_i]
    frame[rr, cc] = frame[rr, cc] * (1 - alpha) + colour * alpha


def render_frames(layout: SceneLayout, *, width: int, height: int) -> np.ndarray:
    """All frames of a scene, equirectangular.

    Static objects are drawn once into the background; moving ones per frame.

    Parameters
    ----------
    layout : SceneLayout
    width, height : int
        Frame size W × H (W = 2H).

    Returns
    -------
    np.ndarray, uint8, shape (T, H, W, 3)
    """
    base = background(layout.scene, width, height)
    moving = []
    for obj in layout.objects:
        obj_look = look(obj.label, obj.variant)
        if np.ptp(obj.azimuth) == 0 and np.ptp(obj.elevation) == 0:
            draw_object(base, obj_look, float(obj.azimuth[0]), float(obj.elevation[0]), obj.size)
        else:
            moving.append((obj, obj_look))
    n_frames = layout.frame_times_s.size
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for k in range(n_frames):
        frame = base.copy() if moving else base
        for obj, obj_look in moving:
            draw_object(frame, obj_look, float(obj.azimuth[k]), float(obj.elevation[k]), obj.size)
        frames[k] = (frame * 255 + 0.5).astype(np.uint8) if moving or k == 0 else frames[0]
    return frames
