"""Equi-angular cubemap (EAC) → equirectangular re-projection.

YouTube stores many 360° streams as an EAC: a 3×2 grid of cube faces whose
pixels are uniform in angle. The layout is the one of FFmpeg's ``v360``
filter (``eac``) and of :mod:`avsa.media.synth.eac` (the forward mapping)::

    +--------+--------+--------+
    |  left  | front  | right  |     top row upright
    +--------+--------+--------+
    |  down  |  back  |   up   |     bottom row turned 90° (a continuous strip)
    +--------+--------+--------+

A tile with normal n, column axis r and row axis s shows at equi-angular
tile coordinates (p, q) ∈ [−1, 1]² the direction n + tan(πp/4)·r +
tan(πq/4)·s (conventions.md frame: x front, y left, z up):

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

Optional padding (FFmpeg's ``v360`` assumes 2 pixels, as in YouTube's
streams): ``padding`` pixels at the frame's left and right edges and at the
top and bottom of each row; none between tiles of a row.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avsa.errors import InputError

__all__ = ["eac_to_equirect", "direction_to_eac"]


def direction_to_eac(vectors: np.ndarray, width: int, height: int, *, padding: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous EAC pixel coordinates (u, v) of unit directions.

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
    x, y, z = (np.asarray(vectors, dtype=np.float64)[..., k] for k in range(3))
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    on_x = (ax >= ay) & (ax >= az)
    on_y = ~on_x & (ay >= az)
    on_z = ~on_x & ~on_y
    with np.errstate(divide="ignore", invalid="ignore"):
        # (tile column, tile row, tangent along r, tangent along s) per face; see the table.
        choices = [
            (on_y & (y > 0), 0, 0, x / y, -z / y),  # left
            (on_x & (x > 0), 1, 0, -y / x, -z / x),  # front
            (on_y & (y <= 0), 2, 0, x / y, z / y),  # right
            (on_z & (z <= 0), 0, 1, x / z, -y / z),  # down
            (on_x & (x <= 0), 1, 1, -z / x, -y / x),  # back
            (on_z & (z > 0), 2, 1, x / z, y / z),  # up
        ]
    column = np.select([c[0] for c in choices], [c[1] for c in choices])
    row = np.select([c[0] for c in choices], [c[2] for c in choices])
    tan_r = np.select([c[0] for c in choices], [c[3] for c in choices])
    tan_s = np.select([c[0] for c in choices], [c[4] for c in choices])
    p = (4 / np.pi) * np.arctan(np.clip(tan_r, -1, 1))  # equi-angular coordinate in [−1, 1]
    q = (4 / np.pi) * np.arctan(np.clip(tan_s, -1, 1))
    tile_w = (width - 2 * padding) / 3
    tile_h = height / 2 - 2 * padding
    u = padding + (column + (p + 1) / 2) * tile_w
    v = row * height / 2 + padding + (q + 1) / 2 * tile_h
    return u, v


@lru_cache(maxsize=8)
def _sampling_map(height: int, width: int, out_w: int, out_h: int, padding: float):
    """Bilinear taps (rows, columns, weights) of every equirect output pixel in the EAC frame."""
    theta = np.pi * (1 - 2 * (np.arange(out_w) + 0.5) / out_w)  # conventions §2 pixel centres
    phi = (np.pi / 2) * (1 - 2 * (np.arange(out_h) + 0.5) / out_h)
    th, ph = np.meshgrid(theta, phi)
    d = np.stack([np.cos(th) * np.cos(ph), np.sin(th) * np.cos(ph), np.sin(ph)], axis=-1)
    u, v = direction_to_eac(d, width, height, padding=padding)
    # Array coordinates of pixel centres, clamped to the frame.
    cu = np.clip(u - 0.5, 0, width - 1)
    cv = np.clip(v - 0.5, 0, height - 1)
    u0 = np.minimum(np.floor(cu).astype(np.intp), width - 2)
    v0 = np.minimum(np.floor(cv).astype(np.intp), height - 2)
    fu = (cu - u0).astype(np.float32)[..., None]
    fv = (cv - v0).astype(np.float32)[..., None]
    return u0, v0, fu, fv


def eac_to_equirect(frame: np.ndarray, out_size: tuple[int, int], *, padding: float = 0.0) -> np.ndarray:
    """Re-project EAC frame(s) to equirectangular (conventions.md §2).

    Bilinear sampling of the EAC frame at each output pixel centre's
    direction; coordinates clamp at the frame edges.

    Parameters
    ----------
    frame : np.ndarray, shape (H, W, C) or (T, H, W, C)
        EAC frame(s), W : H = 3 : 2 (any dtype).
    out_size : (int, int)
        Output ``(W_out, H_out)`` in pixels (normally W_out = 2·H_out).
    padding : float, keyword-only
        Pixels of tile padding (0 for :mod:`avsa.media.synth.eac`, 2 for
        FFmpeg's ``v360`` and YouTube).

    Returns
    -------
    np.ndarray, same dtype, shape (H_out, W_out, C) or (T, H_out, W_out, C)
    """
    frame = np.asarray(frame)
    if frame.ndim not in (3, 4):
        raise InputError(f"EAC frame must be (H, W, C) or (T, H, W, C), got shape {frame.shape}")
    height, width = frame.shape[-3], frame.shape[-2]
    if height < 2 or width < 3 or abs(2 * width - 3 * height) > 3:
        raise InputError(f"EAC frame must be 3:2 (3 × 2 tiles), got {width}×{height}")
    out_w, out_h = (int(s) for s in out_size)
    if out_w < 1 or out_h < 1:
        raise InputError(f"out_size must be positive, got {out_size!r}")
    u0, v0, fu, fv = _sampling_map(height, width, out_w, out_h, float(padding))
    src = frame.astype(np.float32)
    top = src[..., v0, u0, :] * (1 - fu) + src[..., v0, u0 + 1, :] * fu
    bottom = src[..., v0 + 1, u0, :] * (1 - fu) + src[..., v0 + 1, u0 + 1, :] * fu
    out = top * (1 - fv) + bottom * fv
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(frame.dtype)
    return out.astype(frame.dtype)
