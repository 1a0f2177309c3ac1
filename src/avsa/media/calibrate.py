"""Find the channel map of a platform's FOA re-encoding with one test video (``avsa calibrate write|read``).

::

    avsa calibrate write calibration.mp4          # upload it, download the platform's version, then
    avsa calibrate read downloaded.mp4            # prints the --channel-map for avsa prepare

``write`` renders a 360° video in which a burst of band-limited noise
(:data:`BAND_HZ`) visits the directions of
:data:`PATH` in turn (:data:`BURST_S` seconds each, silent for the last fifth
of each slot), encoded as ambiX/SN3D, and shows a white disc where the sound
is, so the file can also be checked by eye in any 360° player.

``read`` decodes the file's channels raw and, in the middle of every burst,
measures each channel's gain relative to the omnidirectional one (the channel
whose level stays the same for every direction): for a first-order channel
that gain is ``r · d_j`` with ``d_j`` one component of the known direction, so
a least-squares fit against the components x, y, z names the component, its
sign and ``|r|`` (1 for SN3D, √3 for N3D, √2 for FuMa's W at −3 dB). The
channels are assigned one to one (Hungarian algorithm on the fit residuals).
The result is printed as an ``avsa prepare --channel-map`` (the format of
:data:`avsa.media.layouts.CHANNEL_MAP_HELP`), and as ``--layout NAME`` when it
equals a named preset.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.errors import InputError, MediaError

PATH_DEG = ((0, 0), (90, 0), (180, 0), (-90, 0), (45, 45), (-135, -45), (135, 30), (-45, -30))
"""Directions (azimuth, elevation in degrees) the burst visits, in order; they span ±x, ±y, ±z."""
BURST_S = 0.5
"""Seconds per direction (sound in the first 80 %, silence after)."""
SOUNDING_FRACTION = 0.8
MEASURE = (0.15, 0.65)
"""Part of each slot measured by ``read`` (fractions of the slot): inside the burst, clear of codec delays."""
MAX_RESIDUAL = 0.1
"""Largest relative fit residual of a channel before ``read`` refuses the file."""
SNAP_GAINS = (1.0, math.sqrt(2.0), 1 / math.sqrt(2.0), math.sqrt(3.0), 1 / math.sqrt(3.0))
"""Gains a measured one is rounded to when within :data:`SNAP_TOLERANCE`."""
SNAP_TOLERANCE = 0.05
NORMALISATIONS = {"sn3d": 1.0, "fuma": math.sqrt(2.0), "n3d": math.sqrt(3.0)}
"""Gain of the first-order channels relative to W in each normalisation."""
AMBIX_NAMES = ("W", "Y", "Z", "X")


def _path_vectors() -> np.ndarray:
    """(K, 4) ambiX gains [1, y, z, x] of the directions of :data:`PATH_DEG`."""
    rows = []
    for az, el in PATH_DEG:
        a, e = math.radians(az), math.radians(el)
        rows.append([1.0, math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])
    return np.array(rows)


BAND_HZ = (150.0, 3000.0)
"""Band of the calibration noise: where lossy codecs keep the waveform (above it they may fill in
decorrelated noise, which would bias the measured gains)."""


def _band_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """White noise limited to :data:`BAND_HZ` (ideal band-pass by FFT), RMS 0.1 so N3D (×√3) does not clip."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum[(freqs < BAND_HZ[0]) | (freqs > BAND_HZ[1])] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return (0.1 * noise / max(float(np.std(noise)), 1e-12)).astype(np.float32)


def render(*, burst_s: float = BURST_S, width: int = 512, fps: float = 16.0, sample_rate: int = 48000,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The calibration video: frames uint8 (T, W/2, W, 3) and ambiX/SN3D audio float32 (4, N)."""
    from avsa.spatial.ambisonics import encode
    from avsa.spatial.sphere import equirect_to_direction, angular_distance

    if not burst_s > 0 or width < 8 or width % 4:
        raise InputError(f"burst {burst_s} s, width {width}: need a positive burst and a width that is a multiple of 4")
    height = width // 2
    slot = int(round(burst_s * sample_rate))
    rng = np.random.default_rng(seed)
    audio = np.zeros((4, slot * len(PATH_DEG)), np.float32)
    n_frames = int(round(burst_s * len(PATH_DEG) * fps))
    frames = np.full((n_frames, height, width, 3), 40, np.uint8)
    frames[:, height // 2] = 90  # the horizon
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixel_az, pixel_el = equirect_to_direction(jj, ii, width, height)
    for k, (az, el) in enumerate(PATH_DEG):
        n_on = int(slot * SOUNDING_FRACTION)
        noise = _band_noise(rng, n_on, sample_rate)
        audio[:, k * slot:k * slot + n_on] = encode(noise, math.radians(az), math.radians(el)).numpy()
        disc = (angular_distance(pixel_az, pixel_el, math.radians(az), math.radians(el)) < math.radians(8)).numpy()
        first, last = int(k * burst_s * fps), int((k + SOUNDING_FRACTION) * burst_s * fps)
        frames[first:max(last, first + 1), disc] = 255
    return frames, np.clip(audio, -1.0, 1.0)


def write(out: str | os.PathLike, *, burst_s: float = BURST_S, width: int = 512, fps: float = 16.0,
          sample_rate: int = 48000, audio_codec: str = "aac") -> Path:
    """Write the calibration video (360° metadata, 4-channel ambiX audio) to ``out``."""
    from avsa.media import io

    frames, audio = render(burst_s=burst_s, width=width, fps=fps, sample_rate=sample_rate)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    io.write_av(out, frames, fps, audio=audio, sample_rate=sample_rate, audio_codec=audio_codec, spherical=True)
    return out


@dataclass(frozen=True)
class Calibration:
    """What :func:`read` found.

    Attributes
    ----------
    channel_map : str
        For ``avsa prepare --channel-map`` (ambiX W, Y, Z, X from the raw channels).
    layout : str or None
        The named preset equal to the map (``ambix``, ``fuma``, ...), if any.
    normalisation : str
        ``sn3d``, ``n3d``, ``fuma`` (W at −3 dB) or ``unknown``.
    raw_channels : int
    assignment : list of dict
        Per ambiX channel: ``raw`` index, ``sign``, ``gain`` relative to W, ``residual`` of its fit.
    """

    channel_map: str
    layout: str | None
    normalisation: str
    raw_channels: int
    assignment: list


def _snap(gain: float) -> float:
    for value in SNAP_GAINS:
        if abs(abs(gain) / value - 1.0) <= SNAP_TOLERANCE:
            return math.copysign(value, gain)
    return float(f"{gain:.4g}")


def estimate(raw: np.ndarray, sample_rate: int, *, burst_s: float = BURST_S, path: str | os.PathLike = "audio"
             ) -> Calibration:
    """Channel map of raw decoded channels (C, N) of the calibration video (see module docstring).

    Raises
    ------
    MediaError
        Naming ``path`` when the file is too short, or its channels do not fit the calibration path
        (not the calibration video, or not first-order Ambisonics).
    """
    from scipy.optimize import linear_sum_assignment

    from avsa.media.layouts import LAYOUTS, format_channel_map, parse_channel_map

    raw = np.asarray(raw, dtype=np.float64)
    n_channels = raw.shape[0]
    slot = burst_s * sample_rate
    if raw.ndim != 2 or n_channels < 4:
        raise MediaError(path, f"has {n_channels if raw.ndim == 2 else raw.shape} audio channels; FOA needs 4 or more")
    if raw.shape[1] < int(slot * (len(PATH_DEG) - 1 + MEASURE[1])):
        raise MediaError(path, f"is {raw.shape[1] / sample_rate:.2f} s long; the calibration video lasts "
                               f"{burst_s * len(PATH_DEG):g} s (was it cut, or written with another --burst?)")
    segments = [raw[:, int((k + MEASURE[0]) * slot):int((k + MEASURE[1]) * slot)] for k in range(len(PATH_DEG))]
    energy = np.array([np.mean(s ** 2, axis=1) for s in segments])  # (K, C)
    if energy.max() <= 1e-12:
        raise MediaError(path, "is silent where the calibration bursts should be")
    loud = energy.mean(0) > 1e-6 * energy.mean(0).max()
    spread = np.where(loud, energy.std(0) / np.maximum(energy.mean(0), 1e-30), np.inf)
    omni = int(np.argmin(spread))  # the channel whose level does not depend on the direction
    ratio = np.array([s @ s[omni] / max(s[omni] @ s[omni], 1e-30) for s in segments])  # (K, C): gain vs omni
    g = _path_vectors()[:, 1:]  # (K, 3): components y, z, x per direction
    gains = (ratio.T @ g) / (g ** 2).sum(0)  # (C, 3) least-squares gain of channel c on component j
    residual = np.array([[np.sum((ratio[:, c] - gains[c, j] * g[:, j]) ** 2) / max(np.sum(ratio[:, c] ** 2), 1e-30)
                          for j in range(3)] for c in range(n_channels)])
    residual[~loud] = 1e6  # a silent channel (the unused ones of a 6-channel AAC) fits nothing
    candidates = [c for c in range(n_channels) if c != omni]
    rows, cols = linear_sum_assignment(residual[candidates])
    by_component = {int(j): candidates[int(r)] for r, j in zip(rows, cols)}
    if len(by_component) < 3:
        raise MediaError(path, "has fewer than three directional channels")
    worst = max(residual[by_component[j], j] for j in range(3))
    if worst > MAX_RESIDUAL:
        raise MediaError(path, f"its channels do not follow the calibration path (worst fit residual {worst:.2f} > "
                               f"{MAX_RESIDUAL}): not the calibration video, or not first-order Ambisonics")
    relative = np.array([gains[by_component[j], j] for j in range(3)])
    mean_gain = float(np.mean(np.abs(relative)))
    normalisation = next((name for name, value in NORMALISATIONS.items()
                          if abs(mean_gain / value - 1.0) <= SNAP_TOLERANCE), "unknown")
    w_gain = math.sqrt(2.0) if normalisation == "fuma" else 1.0
    mapping = [(omni, w_gain)] + [(by_component[j], _snap(w_gain / relative[j])) for j in range(3)]
    text = format_channel_map(mapping)
    layout = None
    for name, count in LAYOUTS.items():
        preset = PRESET_MAPS.get(name)
        if preset is not None and count == n_channels and np.allclose(
                np.array(parse_channel_map(preset)), np.array(parse_channel_map(text)), atol=1e-4):
            layout = name
    assignment = [{"ambix": AMBIX_NAMES[0], "raw": omni, "sign": 1, "gain": 1.0, "residual": 0.0}] + [
        {"ambix": AMBIX_NAMES[j + 1], "raw": by_component[j], "sign": int(np.sign(relative[j])),
         "gain": float(abs(relative[j])), "residual": float(residual[by_component[j], j])} for j in range(3)]
    return Calibration(text, layout, normalisation, n_channels, assignment)


PRESET_MAPS = {
    "ambix": "0,1,2,3",
    "fuma": f"0*{math.sqrt(2.0):.6g},2,3,1",
    "n3d": f"0,1*{1 / math.sqrt(3.0):.6g},2*{1 / math.sqrt(3.0):.6g},3*{1 / math.sqrt(3.0):.6g}",
    "youtube-aac": "2,1,4,0",
    "ambix+headlocked": "0,1,2,3",
}
"""The named layouts of :mod:`avsa.media.layouts` as channel maps."""


def read(path: str | os.PathLike, *, burst_s: float = BURST_S) -> Calibration:
    """Decode ``path`` (the calibration video after any re-encoding) and estimate its channel map."""
    from avsa.media import io

    info = io.probe(path)
    if not info.has_audio:
        raise MediaError(path, "no audio stream")
    raw = io.read_audio(path, layout="raw")
    return estimate(raw, int(info.audio_rate), burst_s=burst_s, path=path)
