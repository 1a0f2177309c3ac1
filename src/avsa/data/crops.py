"""Crop selection: where on the sphere the video crops (and the rotated audio) look.

``docs/system.md`` §2. Three modes:

- ``random`` (the baseline): azimuth uniform over 360°, elevation uniform in
  ``elevation_range`` (±30°), field of view uniform in ``fov_range``
  (25°–76°, the baseline's range as ``docs/system.md`` gives it).
- ``objects`` (the paper): AVC — one detection of the window at random, a
  random crop when there is none; AVSA — one crop per azimuth quadrant, in the
  order of :data:`QUADRANTS`, centred on a detection of that quadrant chosen at
  random, or a random crop inside the quadrant when it has none. The paper
  gives only the detection's centre; its field of view here is
  ``clip(object_fov_scale × size, fov_range)`` (1.5 × the object's angular
  width), so the object fills about two thirds of the crop.
- ``audio`` (beyond the paper; needs no detector): a direction histogram of the
  FOA intensity vector over the window — every time-frequency bin votes for
  its IV direction with weight ``|iv|⁴ × energy of W in its frame`` (the
  power favours bins one source dominates: a mixture's IV is shorter and
  points between the sources) — smoothed
  along azimuth; local maxima above ``peak_threshold`` × the highest are
  sound directions. AVC samples one of them (probability ∝ height); AVSA takes
  the highest in each quadrant, a random crop in a quadrant without one. The
  elevation of a peak is that of the mean IV of the bins voting within ±15° of
  it. Audio crops draw their field of view from ``fov_range``.

``kind`` records per crop whether it is ``"object"``, ``"audio"`` or
``"random"`` (a fallback is ``"random"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from avsa.errors import InputError
from avsa.spatial import sphere

CROP_MODES = ("random", "objects", "audio")

QUADRANTS: tuple[tuple[float, float], ...] = (
    (math.pi / 2, math.pi),        # left-back   [90°, 180°]
    (0.0, math.pi / 2),            # left-front  [0°, 90°]
    (-math.pi / 2, 0.0),           # right-front [−90°, 0°]
    (-math.pi, -math.pi / 2),      # right-back  [−180°, −90°]
)
"""Azimuth sectors of the four AVSA crops, in crop order; a direction belongs
to the sector with ``low < azimuth <= high`` (so 0 is right-front, 90° left-front)."""

DEFAULT_FOV_RANGE = (math.radians(25.0), math.radians(76.0))
DEFAULT_ELEVATION_DEG = 30.0
"""Random crops draw their elevation uniformly in ± this many degrees unless told otherwise (the baseline's)."""
DEFAULT_ELEVATION_RANGE = (math.radians(-DEFAULT_ELEVATION_DEG), math.radians(DEFAULT_ELEVATION_DEG))


@dataclass(frozen=True)
class CropCentres:
    """Crop centres of one sample.

    Attributes
    ----------
    azimuth, elevation : ndarray, shape (K,)
        Radians (``docs/conventions.md``).
    fov : ndarray, shape (K,)
        Horizontal field of view, radians.
    kind : tuple of str, length K
        ``"object"``, ``"audio"`` or ``"random"`` per crop.
    """

    azimuth: np.ndarray
    elevation: np.ndarray
    fov: np.ndarray
    kind: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.kind)


def quadrant_of(azimuth) -> np.ndarray:
    """Index into :data:`QUADRANTS` of azimuths (radians, any shape)."""
    az = np.asarray(sphere.wrap_angle(np.asarray(azimuth, dtype=np.float64)), dtype=np.float64)
    q = np.full(az.shape, 3, dtype=np.int64)
    for i, (lo, hi) in enumerate(QUADRANTS[:3]):
        q[(az > lo) & (az <= hi)] = i
    return q


def _random_centre(rng: np.random.Generator, az_range: tuple[float, float],
                   elevation_range: tuple[float, float], fov_range: tuple[float, float]):
    return (float(rng.uniform(*az_range)), float(rng.uniform(*elevation_range)),
            float(rng.uniform(*fov_range)))


def _object_centre(det, fov_range, scale):
    fov = float(np.clip(scale * det.size, *fov_range))
    return float(det.azimuth), float(det.elevation), fov


def _check_ranges(n_crops, fov_range, elevation_range):
    if n_crops not in (1, 4):
        raise InputError(f"n_crops must be 1 (AVC) or 4 (AVSA, one per quadrant), got {n_crops}")
    lo, hi = fov_range
    if not 0 < lo <= hi < math.pi:
        raise InputError(f"fov_range must satisfy 0 < low <= high < π radians, got {fov_range}")
    lo, hi = elevation_range
    if not -math.pi / 2 <= lo <= hi <= math.pi / 2:
        raise InputError(f"elevation_range must lie in [−π/2, π/2] radians, got {elevation_range}")


def select_crops(mode: str, *, n_crops: int, rng: np.random.Generator,
                 detections: Sequence | None = None, foa: np.ndarray | None = None,
                 sample_rate: int | None = None,
                 fov_range: tuple[float, float] = DEFAULT_FOV_RANGE,
                 elevation_range: tuple[float, float] = DEFAULT_ELEVATION_RANGE,
                 object_fov_scale: float = 1.5, peak_threshold: float = 0.25, jitter: float = 0.0) -> CropCentres:
    """Choose the crop centres of one sample (see the module doc for each mode).

    Parameters
    ----------
    mode : {"random", "objects", "audio"}
    n_crops : int
        1 (AVC) or 4 (AVSA: one per quadrant, in the order of :data:`QUADRANTS`).
    rng : numpy.random.Generator
        The only source of randomness (same seed → same crops).
    detections : sequence of Detection, optional
        ``objects`` mode: the detections inside the sample's window (any
        object with ``azimuth``, ``elevation``, ``size`` in radians).
    foa : ndarray, shape (4, N), optional
        ``audio`` mode: ambiX/SN3D audio of the window.
    sample_rate : int, optional
        ``audio`` mode: rate of ``foa``, Hz.
    fov_range, elevation_range : (float, float)
        Radians.
    object_fov_scale : float
        Object crops: field of view = this × the detection's angular size, clipped to ``fov_range``.
    peak_threshold : float
        Audio crops: a peak counts when its height is at least this fraction of the highest.
    jitter : float
        Radians: move every object or audio crop centre by an angle ~|N(0, jitter)| towards a
        random heading (training augmentation: a crop exactly centred on its source is a shortcut
        no real detector offers). 0: centres as chosen.

    Returns
    -------
    CropCentres with K = ``n_crops``.
    """
    _check_ranges(n_crops, fov_range, elevation_range)
    if mode == "random":
        centres, kinds = _random_mode(n_crops, rng, elevation_range, fov_range)
    elif mode == "objects":
        centres, kinds = _objects_mode(n_crops, rng, list(detections or []), elevation_range,
                                       fov_range, object_fov_scale)
    elif mode == "audio":
        if foa is None or sample_rate is None:
            raise InputError("crop mode 'audio' needs foa (4, N) and sample_rate")
        peaks = audio_peaks(foa, sample_rate, peak_threshold=peak_threshold)
        centres, kinds = _audio_mode(n_crops, rng, peaks, elevation_range, fov_range)
    else:
        raise InputError(f"unknown crop mode {mode!r}; expected one of {CROP_MODES}")
    arr = np.asarray(centres, dtype=np.float64).reshape(n_crops, 3)
    if jitter > 0:
        moved = np.asarray([k != "random" for k in kinds])
        if moved.any():
            az, el = sphere.perturb_directions(arr[moved, 0], arr[moved, 1], jitter, rng)
            arr[moved, 0], arr[moved, 1] = az.numpy(), el.numpy()
    return CropCentres(azimuth=np.asarray(sphere.wrap_angle(arr[:, 0]), dtype=np.float64),
                       elevation=arr[:, 1].copy(), fov=arr[:, 2].copy(), kind=tuple(kinds))


def _random_mode(n_crops, rng, elevation_range, fov_range):
    if n_crops == 1:
        return [_random_centre(rng, (-math.pi, math.pi), elevation_range, fov_range)], ["random"]
    return ([_random_centre(rng, q, elevation_range, fov_range) for q in QUADRANTS],
            ["random"] * 4)


def _objects_mode(n_crops, rng, dets, elevation_range, fov_range, scale):
    if n_crops == 1:
        if not dets:
            return _random_mode(1, rng, elevation_range, fov_range)
        return [_object_centre(dets[int(rng.integers(len(dets)))], fov_range, scale)], ["object"]
    quads = quadrant_of([d.azimuth for d in dets]) if dets else np.zeros(0, dtype=np.int64)
    centres, kinds = [], []
    for i, q in enumerate(QUADRANTS):
        members = [d for d, k in zip(dets, quads) if k == i]
        if members:
            centres.append(_object_centre(members[int(rng.integers(len(members)))], fov_range, scale))
            kinds.append("object")
        else:
            centres.append(_random_centre(rng, q, elevation_range, fov_range))
            kinds.append("random")
    return centres, kinds


def _audio_mode(n_crops, rng, peaks, elevation_range, fov_range):
    az, el, height = peaks
    if n_crops == 1:
        if len(az) == 0:
            return _random_mode(1, rng, elevation_range, fov_range)
        i = int(rng.choice(len(az), p=height / height.sum()))
        return [(az[i], el[i], float(rng.uniform(*fov_range)))], ["audio"]
    quads = quadrant_of(az)
    centres, kinds = [], []
    for i, q in enumerate(QUADRANTS):
        idx = np.flatnonzero(quads == i)
        if len(idx):
            j = idx[np.argmax(height[idx])]
            centres.append((az[j], el[j], float(rng.uniform(*fov_range))))
            kinds.append("audio")
        else:
            centres.append(_random_centre(rng, q, elevation_range, fov_range))
            kinds.append("random")
    return centres, kinds


def audio_peaks(foa: np.ndarray, sample_rate: int, *, n_bins: int = 72, smooth_bins: float = 1.5,
                peak_threshold: float = 0.25, refine: float = math.radians(15.0)
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sound directions of a FOA window from its intensity-vector direction histogram.

    Parameters
    ----------
    foa : array, shape (4, N)
        ambiX/SN3D audio.
    sample_rate : int
        Hz.
    n_bins : int
        Azimuth histogram bins over 360°.
    smooth_bins : float
        Circular Gaussian smoothing of the histogram, in bins.
    peak_threshold : float
        Keep local maxima at least this fraction of the highest.
    refine : float
        Radians; a peak's direction is that of the weighted mean IV of the
        bins whose azimuth is within this of the peak.

    Returns
    -------
    azimuth, elevation, height : ndarray, shape (P,)
        Peaks sorted by decreasing height (empty for silence).
    """
    from avsa.spatial.features import foa_intensity

    x = np.asarray(foa, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != 4:
        raise InputError(f"foa must have shape (4, N), got {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("foa contains NaN or infinite samples")
    iv = np.asarray(foa_intensity(x, sample_rate), dtype=np.float64)  # (3, T, F), order x, y, z
    n_frames = iv.shape[-2]
    energy = np.array([np.mean(seg ** 2) if seg.size else 0.0
                       for seg in np.array_split(x[0].astype(np.float64), n_frames)])
    vec = iv.reshape(3, -1).T                                   # (T·F, 3)
    length = np.linalg.norm(vec, axis=1)
    weight = length ** 4 * np.repeat(energy, iv.shape[-1])
    empty = np.zeros(0)
    if not np.any(weight > 0):
        return empty, empty, empty
    az = np.arctan2(vec[:, 1], vec[:, 0])
    hist = np.bincount(((az + math.pi) / (2 * math.pi) * n_bins).astype(int) % n_bins,
                       weights=weight, minlength=n_bins)
    offsets = np.arange(-int(4 * smooth_bins) - 1, int(4 * smooth_bins) + 2)
    kernel = np.exp(-0.5 * (offsets / smooth_bins) ** 2)
    smooth = sum(k * np.roll(hist, o) for o, k in zip(offsets, kernel))
    is_peak = (smooth > np.roll(smooth, 1)) & (smooth >= np.roll(smooth, -1))
    is_peak &= smooth >= peak_threshold * smooth.max()
    out_az, out_el, out_h = [], [], []
    for b in np.flatnonzero(is_peak):
        centre = -math.pi + (b + 0.5) * 2 * math.pi / n_bins
        near = np.abs(np.angle(np.exp(1j * (az - centre)))) <= refine
        mean = (vec[near] / np.maximum(length[near, None], 1e-12) * weight[near, None]).sum(0)
        a, e = sphere.vector_direction(mean)
        out_az.append(float(a)); out_el.append(float(e)); out_h.append(float(smooth[b]))
    order = np.argsort(out_h)[::-1]
    return np.asarray(out_az)[order], np.asarray(out_el)[order], np.asarray(out_h)[order]
