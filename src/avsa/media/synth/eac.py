"""Equirectangular → equi-angular cubemap (EAC), YouTube's 3×2 layout.

Layout of an EAC frame of face size F (frame 3F × 2F, no padding), following
Google's EAC as implemented by FFmpeg's ``v360`` filter (``eac``)::

    +--------+--------+--------+
    |  left  | front  | right  |     top row: upright, a continuous 270° strip
    +--------+--------+--------+
    |  down  |  back  |   up   |     bottom row: rotated 90°, a continuous strip
    +--------+--------+--------+     nadir → back → zenith

Directions follow ``conventions.md`` (x front, y left, z up). Each tile has a
face normal n and two axes r (tile columns, left→right) and s (tile rows,
top→bottom); the tile pixel with equi-angular coordinates (p, q) ∈ [−1, 1]²
shows the direction n + tan(πp/4)·r + tan(πq/4)·s (normalised):

=========  =====  =====  =====
tile       n      r      s
=========  =====  =====  =====
left       +y     +x     −z
front      +x     −y     −z
right      −y     −x     −z
down       −z     −x     +y
back       −x     +z     +y
up         +z     +x     +y
=========  =====  =====  =====

The top row is what a viewer sees turning from left through front to right
with the head upright. In the bottom row the back face is turned 90°
clockwise (its sky is on the right, next to the "up" tile), and down and up
continue that strip: the floor under the viewer's feet, the back, the sky.
The **equi-angular warp**: a tile's pixel centres are uniform in the angle
πp/4 ∈ [−45°, 45°] rather than in the tangent-plane coordinate tan(πp/4),
so pixel density is nearly uniform over the face.
"""

from __future__ import annotations

import numpy as np

from avsa.errors import InputError

#: (name, normal n, column axis r, row axis s) per tile, row-major over the 3×2 grid
FACES: tuple[tuple[str, tuple, tuple, tuple], ...] = (
    ("left", (0, 1, 0), (1, 0, 0), (0, 0, -1)),
    ("front", (1, 0, 0), (0, -1, 0), (0, 0, -1)),
    ("right", (0, -1, 0), (-1, 0, 0), (0, 0, -1)),
    ("down", (0, 0, -1), (-1, 0, 0), (0, 1, 0)),
    ("back", (-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    ("up", (0, 0, 1), (1, 0, 0), (0, 1, 0)),
)


def eac_directions(face_size: int) -> np.ndarray:
    """Unit direction of every EAC pixel centre.

    Parameters
    ----------
    face_size : int
        F, pixels per tile side.

    Returns
    -------
    np.ndarray, float64, shape (2F, 3F, 3)
        (x, y, z) per pixel of the 3F-wide, 2F-high EAC frame.
    """
    f = int(face_size)
    p = (np.arange(f) + 0.5) / f * 2 - 1  # equi-angular coordinate of pixel centres
    g = np.tan(np.pi / 4 * p)
    out = np.empty((2 * f, 3 * f, 3))
    for k, (_, n, r, s) in enumerate(FACES):
        row, col = divmod(k, 3)
        d = (np.asarray(n, float)[None, None, :] + g[None, :, None] * np.asarray(r, float)
             + g[:, None, None] * np.asarray(s, float))
        out[row * f:(row + 1) * f, col * f:(col + 1) * f] = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def equirect_to_eac(frame: np.ndarray, *, face_size: int | None = None) -> np.ndarray:
    """Re-project an equirectangular frame (or frames) to the EAC layout above.

    Bilinear sampling; columns wrap around the seam, rows clamp at the poles.

    Parameters
    ----------
    frame : np.ndarray, shape (H, W, C) or (T, H, W, C), W = 2H
        Equirectangular frame(s) (conventions §2), any dtype.
    face_size : int, optional, keyword-only
        F; default W/4 (the EAC frame is then 3W/4 × W/2).

    Returns
    -------
    np.ndarray, same dtype, shape (2F, 3F, C) or (T, 2F, 3F, C)
    """
    frame = np.asarray(frame)
    if frame.ndim not in (3, 4):
        raise InputError(f"frame must be (H, W, C) or (T, H, W, C), got shape {frame.shape}")
    height, width = frame.shape[-3], frame.shape[-2]
    if width != 2 * height:
        raise InputError(f"equirectangular frame must be 2:1, got {width}×{height}")
    f = int(face_size or width // 4)
    d = eac_directions(f)
    az = np.arctan2(d[..., 1], d[..., 0])
    el = np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    u = width * (0.5 - az / (2 * np.pi)) - 0.5  # array coordinates (conventions §2)
    v = np.clip(height * (0.5 - el / np.pi) - 0.5, 0, height - 1)
    u0 = np.floor(u).astype(np.intp)
    v0 = np.minimum(np.floor(v).astype(np.intp), height - 2)
    fu = (u - u0)[..., None]
    fv = (v - v0)[..., None]
    ua, ub = u0 % width, (u0 + 1) % width
    src = frame.astype(np.float32)
    top = src[..., v0, ua, :] * (1 - fu) + src[..., v0, ub, :] * fu
    bottom = src[..., v0 + 1, ua, :] * (1 - fu) + src[..., v0 + 1, ub, :] * fu
    out = top * (1 - fv) + bottom * fv
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(frame.dtype)
    return out.astype(frame.dtype)
