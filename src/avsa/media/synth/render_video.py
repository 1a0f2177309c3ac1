"""Drawing the synthetic world's frames: photos on the sphere, gnomonically.

For every equirectangular pixel near an object, its direction d
(:func:`avsa.spatial.pixels.equirect_directions`) is rotated into the object's
camera frame c = M·d with M = Ry(φ0)·Rz(−θ0) (:func:`avsa.spatial.sphere.front_rotation`,
``docs/conventions.md`` §4), and the inverse gnomonic projection a = −c_y/c_x,
b = −c_z/c_x (§7: image columns left→right, rows top→bottom) gives
the point of the photo seen there. A photo of angular width ``size`` spans
a ∈ [−tan(size/2), tan(size/2)]; its height keeps the photo's aspect. Only the
pixels inside the object's bounding spherical cap are touched.
"""

from __future__ import annotations

import math

import numpy as np

from avsa.media.synth.looks import Look, background, look
from avsa.media.synth.scenes import SceneLayout
from avsa.spatial.pixels import bilinear, equirect_directions, front_rotation_matrix


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
    dirs = equirect_directions(width, height, np.float32)[r0:r1][:, cols]  # (h', w', 3)
    c = dirs @ front_rotation_matrix(azimuth, elevation).T.astype(np.float32)
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
    alpha = bilinear(obj_look.alpha[..., None], x, y)
    colour = bilinear(obj_look.image, x, y)
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
