"""Equirectangular → equi-angular cubemap (EAC), YouTube's 3×2 layout (no padding).

The layout, its face table and the direction of every EAC pixel are in
:mod:`avsa.spatial.cubemap`; :mod:`avsa.media.eac` is the inverse mapping.
"""

from __future__ import annotations

import numpy as np

from avsa.errors import InputError
from avsa.spatial.cubemap import eac_directions
from avsa.spatial.pixels import bilinear

def equirect_to_eac(frame: np.ndarray, *, face_size: int | None = None) -> np.ndarray:
    """Re-project an equirectangular frame (or frames) to the EAC layout of :mod:`avsa.spatial.cubemap`.

    Bilinear sampling; columns wrap around the seam, rows clamp at the poles.

    Parameters
    ----------
    frame : np.ndarray, shape (H, W, C) or (T, H, W, C), W = 2H
        Equirectangular frame(s) (``docs/conventions.md`` §2), any dtype.
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
    u = width * (0.5 - az / (2 * np.pi)) - 0.5  # array coordinates (docs/conventions.md §2)
    v = np.clip(height * (0.5 - el / np.pi) - 0.5, 0, height - 1)
    out = bilinear(frame.astype(np.float32), u, v, wrap=True, weight_dtype=None)
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(frame.dtype)
    return out.astype(frame.dtype)
