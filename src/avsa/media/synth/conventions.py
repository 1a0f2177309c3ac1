"""Writing the synthetic world's audio in the channel conventions met in the wild.

``ambix`` (W, Y, Z, X, SN3D), ``fuma`` (W/√2, X, Y, Z), ``n3d`` (W, √3·Y,
√3·Z, √3·X) and ``youtube-aac`` (6 raw channels [X, Y, W, 0, Z, 0]) are the
spatial core's :func:`avsa.spatial.ambisonics.from_ambix`. Two broken ones
exist to exercise the checks:

- ``stereo-upmix``: a stereo track (the two ±90° hypercardioids, paper Eq. 9)
  up-mixed into 4 channels as W = (L + R)/2, Y = 0.1·(L − R)/2, Z = X = 0 —
  validity ratio ρ ≈ 0, which ``avsa check`` must flag;
- ``swapped``: ambiX with the X and Y channels exchanged (W, X, Z, Y) — ρ is
  still 1, only the content (intensity vs. video) can reveal it.
"""

from __future__ import annotations

import numpy as np

from avsa.errors import InputError
from avsa.media.synth.config import CONVENTIONS, FOA_CONVENTIONS
from avsa.spatial.ambisonics import from_ambix, to_stereo

UPMIX_SIDE_GAIN = 0.1


def to_convention(foa: np.ndarray, convention: str) -> np.ndarray:
    """Re-lay-out ambiX audio into a named output convention.

    Parameters
    ----------
    foa : np.ndarray, shape (4, N)
        ambiX / SN3D.
    convention : str
        One of :data:`avsa.media.synth.config.CONVENTIONS`.

    Returns
    -------
    np.ndarray, float32, shape (C, N)
        C = 6 for ``youtube-aac``, else 4.
    """
    foa = np.asarray(foa, dtype=np.float32)
    if foa.ndim != 2 or foa.shape[0] != 4:
        raise InputError(f"foa must be (4, N) ambiX, got shape {foa.shape}")
    if convention in FOA_CONVENTIONS:
        return from_ambix(foa, convention).numpy().astype(np.float32)
    if convention == "stereo-upmix":
        left, right = to_stereo(foa).numpy()
        zero = np.zeros_like(left)
        return np.stack([(left + right) / 2, UPMIX_SIDE_GAIN * (left - right) / 2, zero, zero]).astype(np.float32)
    if convention == "swapped":
        return foa[[0, 3, 2, 1]].copy()
    raise InputError(f"unknown output convention {convention!r}; expected one of {CONVENTIONS}")
