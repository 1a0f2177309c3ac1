"""Equi-angular cubemap (EAC) → equirectangular re-projection.

YouTube stores many 360° streams as an EAC: a 3×2 grid of cube faces whose
pixels are uniform in angle, in the layout of FFmpeg's ``v360`` filter
(``eac``), with optional padding (2 pixels in YouTube's streams). The layout,
its face table and the direction of every pixel are in
:mod:`avsa.spatial.cubemap`; :mod:`avsa.media.synth.eac` is the forward
mapping.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avsa.errors import InputError
from avsa.spatial.cubemap import direction_to_eac
from avsa.spatial.pixels import bilinear, equirect_directions

__all__ = ["eac_to_equirect"]


@lru_cache(maxsize=8)
def _sampling_coordinates(height: int, width: int, out_w: int, out_h: int, padding: float):
    """Array coordinates (x, y) in the EAC frame of every equirect output pixel centre."""
    u, v = direction_to_eac(equirect_directions(out_w, out_h), width, height, padding=padding)
    return u - 0.5, v - 0.5


def eac_to_equirect(frame: np.ndarray, out_size: tuple[int, int], *, padding: float = 0.0) -> np.ndarray:
    """Re-project EAC frame(s) to equirectangular (pixel centres of ``docs/conventions.md`` §2).

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
    x, y = _sampling_coordinates(height, width, out_w, out_h, float(padding))
    out = bilinear(frame.astype(np.float32), x, y)
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(frame.dtype)
    return out.astype(frame.dtype)
