"""The equi-angular cubemap (EAC), YouTube's 3×2 layout: which direction each pixel shows.

Layout of an EAC frame of face size F (frame 3F × 2F), following Google's EAC
as implemented by FFmpeg's ``v360`` filter (``eac``)::

    +--------+--------+--------+
    |  left  | front  | right  |     top row: upright, a continuous 270° strip
    +--------+--------+--------+
    |  down  |  back  |   up   |     bottom row: rotated 90°, a continuous strip
    +--------+--------+--------+     nadir → back → zenith

Directions follow ``docs/conventions.md`` (x front, y left, z up). Each tile
has a face normal n and two axes r (tile columns, left→right) and s (tile
rows, top→bottom); the tile pixel with equi-angular coordinates
(p, q) ∈ [−1, 1]² shows the direction n + tan(πp/4)·r + tan(πq/4)·s
(normalised). :data:`FACES` is that table:

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

Optional padding (FFmpeg's ``v360`` assumes 2 pixels, as in YouTube's
streams): ``padding`` pixels at the frame's left and right edges and at the
top and bottom of each row; none between tiles of a row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FACES", "eac_directions", "direction_to_eac"]

#: (name, normal n, column axis r, row axis s) per tile, row-major over the 3×2 grid
FACES: tuple[tuple[str, tuple, tuple, tuple], ...] = (
    ("left", (0, 1, 0), (1, 0, 0), (0, 0, -1)),
    ("front", (1, 0, 0), (0, -1, 0), (0, 0, -1)),
    ("right", (0, -1, 0), (-1, 0, 0), (0, 0, -1)),
    ("down", (0, 0, -1), (-1, 0, 0), (0, 1, 0)),
    ("back", (-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    ("up", (0, 0, 1), (1, 0, 0), (0, 1, 0)),
)


def _axis(vector: tuple) -> tuple[int, float]:
    """(index, sign) of a unit axis vector such as (0, −1, 0)."""
    (index,) = [k for k, c in enumerate(vector) if c]
    return index, float(vector[index])


def eac_directions(face_size: int) -> np.ndarray:
    """Unit direction of every EAC pixel centre (no padding).

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


def direction_to_eac(vectors: np.ndarray, width: int, height: int, *, padding: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous EAC pixel coordinates (u, v) of directions (the inverse of :func:`eac_directions`).

    A direction falls on the face of its largest component (ties go to x,
    then y; a zero component to the negative face), where
    tan(πp/4) = (d·r)/(d·n) and tan(πq/4) = (d·s)/(d·n).

    Parameters
    ----------
    vectors : np.ndarray, shape (..., 3)
        Directions (x front, y left, z up); need not be normalised.
    width, height : int
        EAC frame size W × H (3 × 2 tiles).
    padding : float, keyword-only
        Pixels of padding (see the module docstring).

    Returns
    -------
    u, v : np.ndarray, shape (...)
        Column and row coordinates; pixel j covers [j, j + 1).
    """
    c = [np.asarray(vectors, dtype=np.float64)[..., k] for k in range(3)]
    a = [np.abs(ck) for ck in c]
    largest = [(a[0] >= a[1]) & (a[0] >= a[2])]
    largest.append(~largest[0] & (a[1] >= a[2]))
    largest.append(~largest[0] & ~largest[1])
    conditions, tangents_r, tangents_s = [], [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for _, n, r, s in FACES:
            (kn, sn), (kr, sr), (ks, ss) = _axis(n), _axis(r), _axis(s)
            conditions.append(largest[kn] & ((c[kn] > 0) if sn > 0 else (c[kn] <= 0)))
            tangents_r.append(sr * c[kr] / (sn * c[kn]))
            tangents_s.append(ss * c[ks] / (sn * c[kn]))
    tiles = np.arange(len(FACES))
    tile = np.select(conditions, tiles)
    column, row = tile % 3, tile // 3
    tan_r = np.select(conditions, tangents_r)
    tan_s = np.select(conditions, tangents_s)
    p = (4 / np.pi) * np.arctan(np.clip(tan_r, -1, 1))  # equi-angular coordinate in [−1, 1]
    q = (4 / np.pi) * np.arctan(np.clip(tan_s, -1, 1))
    tile_w = (width - 2 * padding) / 3
    tile_h = height / 2 - 2 * padding
    u = padding + (column + (p + 1) / 2) * tile_w
    v = row * height / 2 + padding + (q + 1) / 2 * tile_h
    return u, v
