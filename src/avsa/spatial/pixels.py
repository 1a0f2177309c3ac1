"""Equirectangular pixel directions and bilinear sampling, in NumPy, for the renderers and re-projections.

The synthetic world's renderers (:mod:`avsa.media.synth.render_video`,
:mod:`avsa.media.synth.render_audio`, :mod:`avsa.media.synth.scenes`), the EAC
re-projections (:mod:`avsa.media.eac`, :mod:`avsa.media.synth.eac`) and the
audio-visual check (:mod:`avsa.data.avcheck`) work on NumPy arrays; they take
direction vectors, the pixel grid and the sampling from here, and the
rotations from :mod:`avsa.spatial.sphere`.

Pixel centres (``docs/conventions.md`` §2): column j of a W-wide
equirectangular frame is at azimuth π(1 − 2(j + ½)/W), row i of an H-high one
at elevation (π/2)(1 − 2(i + ½)/H). Array coordinates (x, y) name pixel
centres: x = j is the centre of column j.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from avsa.spatial.sphere import front_rotation

__all__ = ["unit_vectors", "equirect_directions", "front_rotation_matrix", "bilinear"]


def unit_vectors(azimuth, elevation, *, axis: int = -1) -> np.ndarray:
    """Direction vectors (cos θ cos φ, sin θ cos φ, sin φ) of NumPy angles, stacked along ``axis``.

    The NumPy twin of :func:`avsa.spatial.sphere.direction_vector`: angles
    keep their dtype and broadcast against each other.
    """
    azimuth, elevation = np.asarray(azimuth), np.asarray(elevation)
    return np.stack(np.broadcast_arrays(np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
                                        np.sin(elevation)), axis=axis)


@functools.lru_cache(maxsize=8)
def equirect_directions(width: int, height: int, dtype: type = np.float64) -> np.ndarray:
    """Unit direction (x, y, z) of every pixel centre of a W × H equirectangular frame.

    Parameters
    ----------
    width, height : int
    dtype : NumPy float type
        Of the result (computed in float64, then cast).

    Returns
    -------
    np.ndarray, shape (H, W, 3), read-only (the array is cached)
    """
    az = np.pi * (1 - 2 * (np.arange(width) + 0.5) / width)
    el = (np.pi / 2) * (1 - 2 * (np.arange(height) + 0.5) / height)
    d = unit_vectors(*np.meshgrid(az, el)).astype(dtype)
    d.setflags(write=False)
    return d


def front_rotation_matrix(azimuth: float, elevation: float) -> np.ndarray:
    """:func:`~avsa.spatial.sphere.front_rotation` of one direction as a float64 NumPy (3, 3) matrix."""
    return front_rotation(torch.tensor(float(azimuth), dtype=torch.float64),
                          torch.tensor(float(elevation), dtype=torch.float64)).numpy()


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray, *, wrap: bool = False,
             weight_dtype: type | None = np.float32) -> np.ndarray:
    """Bilinear sample of ``image`` at array coordinates (``x`` column, ``y`` row).

    Rows clamp at the top and bottom edges; columns clamp too, or wrap around
    (``wrap``: the ±180° seam of an equirectangular frame).

    Parameters
    ----------
    image : np.ndarray, shape (..., H, W, C)
        Leading dimensions (frames) are sampled alike.
    x, y : np.ndarray, shape S
        Coordinates of the samples.
    wrap : bool, keyword-only
        Columns wrap instead of clamping.
    weight_dtype : NumPy float type or None, keyword-only
        Type the interpolation weights are cast to (None: the coordinates' own).

    Returns
    -------
    np.ndarray, shape (..., *S, C)
    """
    h, w = image.shape[-3], image.shape[-2]
    y = np.clip(y, 0, h - 1)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2)
    if wrap:
        x0 = np.floor(x).astype(np.intp)
        left, right = x0 % w, (x0 + 1) % w
    else:
        x = np.clip(x, 0, w - 1)
        x0 = np.minimum(np.floor(x).astype(np.intp), w - 2)
        left, right = x0, x0 + 1
    fx, fy = x - x0, y - y0
    if weight_dtype is not None:
        fx, fy = fx.astype(weight_dtype), fy.astype(weight_dtype)
    fx, fy = fx[..., None], fy[..., None]
    top = image[..., y0, left, :] * (1 - fx) + image[..., y0, right, :] * fx
    bottom = image[..., y0 + 1, left, :] * (1 - fx) + image[..., y0 + 1, right, :] * fx
    return top * (1 - fy) + bottom * fy
