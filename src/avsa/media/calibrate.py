"""Find the channel map of a platform's FOA re-encoding with one test video (``avsa calibrate write|read``).

::

    avsa calibrate write calibration.mp4          # upload it, download the platform's version, then
    avsa calibrate read downloaded.mp4            # prints the --channel-map for avsa prepare

``write`` renders a 360° video in which a burst of band-limited noise
(:data:`BAND_HZ`) visits the directions of
:data:`PATH` in turn (:data:`BURST_S` seconds each, silent for the last fifth
of each slot), encoded as ambiX/SN3D, and shows a white disc where the sound
is, so the file can also be checked by eye in any 360° player.

``read`` decodes the file's channels raw and first finds where the calibration
signal starts: it cross-correlates the known noise (:func:`reference_w`, the W
channel ``write`` renders) with every channel over lags within
±:data:`MAX_OFFSET_S` and removes the lag of the largest peak (a platform may
delay the audio track; bursts cut off by the delay at the end are left out,
:data:`MIN_BURSTS` must remain). Then, in the middle of every burst, it
measures each channel's gain relative to a candidate omnidirectional one: for
a first-order channel that gain is ``r · d_j`` with ``d_j`` one component of
the known direction, so a least-squares fit against the components x, y, z
names the component, its sign and ``|r|`` (1 for SN3D, √3 for N3D, √2 for
FuMa's W at −3 dB). The channels are assigned one to one (Hungarian algorithm
on the fit residuals); the omnidirectional channel is the one under which the
assignment fits best. A file with more than four channels is searched in its
first four, then in all (``--channels`` names a subset instead).

``read`` refuses, with the measured residual, when the best map's worst
relative fit residual exceeds :data:`MAX_RESIDUAL` or the three directional
gains differ by more than :data:`MAX_GAIN_SPREAD` (no first-order convention
does that): it never prints a skewed map. Otherwise the result is printed as
an ``avsa prepare --channel-map`` (the format of
:data:`avsa.media.layouts.CHANNEL_MAP_HELP`), and as ``--layout NAME`` when it
equals a named preset, with the offset it removed.
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
"""Largest relative fit residual of a channel before ``read`` refuses the file: the squared misfit of its
burst-by-burst gain against the known direction component, over its squared gains (0: exact; 1: unrelated)."""
MAX_GAIN_SPREAD = 0.1
"""Largest relative difference of a directional channel's gain from the mean of the three before ``read``
refuses (every first-order normalisation gives X, Y, Z one gain)."""
MAX_OFFSET_S = 1.0
"""``read`` looks for the calibration signal this many seconds either side of the file's start."""
MIN_CORRELATION = 0.3
"""Normalised cross-correlation below which no time offset is trusted (the fit is then made without one)."""
MIN_BURSTS = 6
"""Bursts ``read`` needs inside the file after the offset (the first six span ±x, ±y, ±z)."""
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
    offset_s : float
        How late the file's audio starts relative to the calibration signal (removed before the fit;
        negative: it starts early, e.g. cut).
    correlation : float
        Normalised cross-correlation of the calibration signal with the file at that offset (1: identical).
    channels : tuple of int
        The raw channels the map was searched among.
    notes : tuple of str
        What ``read`` decided on the way (which channels it tried), one line each.
    residual : float
        The worst fit residual of the map (see :data:`MAX_RESIDUAL`).
    """

    channel_map: str
    layout: str | None
    normalisation: str
    raw_channels: int
    assignment: list
    offset_s: float = 0.0
    correlation: float = float("nan")
    channels: tuple = ()
    notes: tuple = ()
    residual: float = 0.0


def _snap(gain: float) -> float:
    for value in SNAP_GAINS:
        if abs(abs(gain) / value - 1.0) <= SNAP_TOLERANCE:
            return math.copysign(value, gain)
    return float(f"{gain:.4g}")


def reference_w(*, burst_s: float = BURST_S, sample_rate: int = 48000, seed: int = 0) -> np.ndarray:
    """The W channel (N,) that :func:`render` writes for these arguments: the calibration signal ``read`` looks for."""
    slot = int(round(burst_s * sample_rate))
    n_on = int(slot * SOUNDING_FRACTION)
    rng = np.random.default_rng(seed)
    out = np.zeros(slot * len(PATH_DEG), np.float32)
    for k in range(len(PATH_DEG)):
        out[k * slot:k * slot + n_on] = _band_noise(rng, n_on, sample_rate)  # W of an SN3D plane wave is the signal
    return np.clip(out, -1.0, 1.0)


def find_offset(raw: np.ndarray, sample_rate: int, *, burst_s: float = BURST_S,
                max_offset_s: float = MAX_OFFSET_S) -> tuple[int, float]:
    """How many samples late the calibration signal starts in ``raw`` (C, N), and how well it matches.

    Cross-correlates :func:`reference_w` (rendered at the file's rate, and at the default 48 kHz resampled
    to it, in case the platform resampled) with every channel, over lags within ±``max_offset_s``; the
    lag of the largest normalised peak (|·|, so a sign-flipped W counts) wins.

    Returns
    -------
    lag : int
        Samples; positive when the file's audio is late.
    correlation : float
        The peak, normalised by both signals' norms over the whole file (1: the same signal).
    """
    from scipy.signal import correlate, resample_poly

    raw = np.asarray(raw, dtype=np.float64)
    max_lag = int(round(max_offset_s * sample_rate))
    best_lag, best_peak = 0, 0.0
    for written_rate in dict.fromkeys((int(sample_rate), 48000)):
        ref = reference_w(burst_s=burst_s, sample_rate=written_rate).astype(np.float64)
        if written_rate != sample_rate:
            divisor = math.gcd(int(sample_rate), written_rate)
            ref = resample_poly(ref, int(sample_rate) // divisor, written_rate // divisor)
        ref_norm = float(np.linalg.norm(ref))
        lags = np.arange(-(len(ref) - 1), raw.shape[1])
        window = np.abs(lags) <= max_lag
        for channel in raw:
            norm = ref_norm * float(np.linalg.norm(channel))
            if norm <= 1e-12:
                continue
            corr = np.abs(correlate(channel, ref, mode="full", method="fft")[window]) / norm
            k = int(np.argmax(corr))
            if corr[k] > best_peak:
                best_lag, best_peak = int(lags[window][k]), float(corr[k])
    return best_lag, best_peak


def _shift(raw: np.ndarray, lag: int) -> np.ndarray:
    """``raw`` (C, N) moved ``lag`` samples earlier (zeros in front where the lag is negative)."""
    if lag >= 0:
        return raw[:, lag:]
    return np.concatenate([np.zeros((raw.shape[0], -lag), raw.dtype), raw], axis=1)


@dataclass(frozen=True)
class _Fit:
    omni: int
    by_component: dict
    gains: np.ndarray  # (3,) signed gain vs W of the channels assigned to y, z, x
    residuals: np.ndarray  # (3,)
    worst: float
    spread: float  # largest relative difference of the three dipole gains from their mean


def _fit(segments: list[np.ndarray], g: np.ndarray) -> _Fit | None:
    """The best omni channel and one-to-one assignment of the others to y, z, x for channels (C, ·) per burst."""
    from scipy.optimize import linear_sum_assignment

    n_channels = segments[0].shape[0]
    energy = np.array([np.mean(s ** 2, axis=1) for s in segments])  # (K, C)
    loud = energy.mean(0) > 1e-6 * energy.mean(0).max()
    best = None
    for omni in np.flatnonzero(loud):  # every loud channel may be W: the one under which the path fits best
        ratio = np.array([s @ s[omni] / max(s[omni] @ s[omni], 1e-30) for s in segments])  # (K, C): gain vs omni
        gains = (ratio.T @ g) / (g ** 2).sum(0)  # (C, 3) least-squares gain of channel c on component j
        residual = np.array([[np.sum((ratio[:, c] - gains[c, j] * g[:, j]) ** 2)
                              / max(np.sum(ratio[:, c] ** 2), 1e-30) for j in range(3)] for c in range(n_channels)])
        residual[~loud] = 1e6  # a silent channel (the unused ones of a 6-channel AAC) fits nothing
        candidates = [c for c in range(n_channels) if c != omni]
        if len(candidates) < 3:
            continue
        rows, cols = linear_sum_assignment(residual[candidates])
        by_component = {int(j): candidates[int(r)] for r, j in zip(rows, cols)}
        relative = np.array([gains[by_component[j], j] for j in range(3)])
        residuals = np.array([residual[by_component[j], j] for j in range(3)])
        mean_gain = float(np.mean(np.abs(relative)))
        spread = float(np.max(np.abs(np.abs(relative) / max(mean_gain, 1e-30) - 1.0)))
        fit = _Fit(int(omni), by_component, relative, residuals, float(residuals.max()), spread)
        if best is None or (fit.worst, fit.spread) < (best.worst, best.spread):
            best = fit
    return best


def _fits(fit: _Fit | None) -> bool:
    return fit is not None and fit.worst <= MAX_RESIDUAL and fit.spread <= MAX_GAIN_SPREAD


def _refusal(fit: _Fit | None, searched: str, to_raw: tuple[int, ...], n_channels: int) -> str:
    if fit is None:
        return f"has fewer than three loud directional channels among {searched}"
    if fit.worst > MAX_RESIDUAL:
        worst = "a silent channel" if fit.worst >= 1e6 else f"{fit.worst:.2f}"
        return (f"its channels do not follow the calibration path: the best channel map of {searched} leaves a "
                f"relative fit residual of {worst} (refused above {MAX_RESIDUAL}; 0 is an exact fit). The residual "
                f"is the share of a channel's level, burst by burst, that the known directions do not explain: not "
                f"the calibration video, not first-order Ambisonics, or shifted by more than ±{MAX_OFFSET_S:g} s")
    gains = ", ".join(f"{abs(v):.3f} (raw {to_raw[fit.by_component[j]]})" for j, v in enumerate(fit.gains))
    on_lfe = n_channels == 6 and 3 in [to_raw[c] for c in fit.by_component.values()]
    lfe = (" In a 6-channel AAC file raw channel 3 is the LFE, which the encoder low-passes: write FOA there only "
           "as silence (YouTube's X, Y, W, 0, Z, 0)." if on_lfe else "")
    return (f"its directional channels have different gains relative to W ({gains} for Y, Z, X; refused when one "
            f"is more than {100 * MAX_GAIN_SPREAD:.0f}% from their mean): no first-order normalisation does that, "
            f"so the map would be skewed.{lfe}")


def estimate(raw: np.ndarray, sample_rate: int, *, burst_s: float = BURST_S, path: str | os.PathLike = "audio",
             channels: tuple[int, ...] | None = None) -> Calibration:
    """Channel map of raw decoded channels (C, N) of the calibration video (see module docstring).

    Parameters
    ----------
    raw : np.ndarray, shape (C, N)
        The file's channels, undecoded by any preset.
    sample_rate : int
        Hz.
    burst_s : float, keyword-only
        Seconds per direction the file was written with.
    path : str or os.PathLike, keyword-only
        Named in errors.
    channels : tuple of int, optional, keyword-only
        Search the map among these raw channels only (four or more). Default: all of a 4-channel file;
        with more, the first four, and all of them when the first four do not fit.

    Raises
    ------
    MediaError
        Naming ``path`` when the file is too short, or its channels do not fit the calibration path
        (with the measured residual; not the calibration video, or not first-order Ambisonics).
    """
    from avsa.media.layouts import LAYOUTS, format_channel_map, parse_channel_map

    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[0] < 4:
        raise MediaError(path, f"has {raw.shape[0] if raw.ndim == 2 else raw.shape} audio channels; FOA needs 4 "
                               f"or more")
    n_channels = raw.shape[0]
    if channels is not None:
        channels = tuple(int(c) for c in channels)
        bad = [c for c in channels if not 0 <= c < n_channels]
        if len(set(channels)) < 4 or bad or len(set(channels)) != len(channels):
            raise InputError(f"--channels {','.join(map(str, channels))}: need four or more distinct channels of "
                             f"the file's {n_channels} (0 to {n_channels - 1})")
        tries = [channels]
    elif n_channels > 4:
        tries = [(0, 1, 2, 3), tuple(range(n_channels))]
    else:
        tries = [tuple(range(n_channels))]
    slot = burst_s * sample_rate
    need = int(slot * (MIN_BURSTS - 1 + MEASURE[1]))
    if raw.shape[1] < need:
        raise MediaError(path, f"is {raw.shape[1] / sample_rate:.2f} s long; the calibration video lasts "
                               f"{burst_s * len(PATH_DEG):g} s (was it cut, or written with another --burst?)")
    notes = []
    for attempt, subset in enumerate(tries):
        searched = ("channels " + ",".join(map(str, subset))) if len(subset) < n_channels else "all channels"
        lag, correlation = find_offset(raw[list(subset)], sample_rate, burst_s=burst_s)
        if correlation < MIN_CORRELATION:
            lag = 0  # no clear match: fit as the file is; the residual decides
        shifted = _shift(raw[list(subset)], lag)
        n_bursts = sum(int((k + MEASURE[1]) * slot) <= shifted.shape[1] for k in range(len(PATH_DEG)))
        if n_bursts < MIN_BURSTS:
            raise MediaError(path, f"holds {n_bursts} of the {len(PATH_DEG)} calibration bursts after removing an "
                                   f"offset of {lag / sample_rate:+.3f} s; need {MIN_BURSTS} (was it cut?)")
        segments = [shifted[:, int((k + MEASURE[0]) * slot):int((k + MEASURE[1]) * slot)] for k in range(n_bursts)]
        if max(float(np.mean(s ** 2)) for s in segments) <= 1e-12:
            raise MediaError(path, "is silent where the calibration bursts should be")
        fit = _fit(segments, _path_vectors()[:n_bursts, 1:])
        if _fits(fit):
            break
        if attempt + 1 < len(tries):
            residual = ("no fit" if fit is None else "a silent channel" if fit.worst >= 1e6 else
                        f"fit residual {fit.worst:.2f}, gain spread {100 * fit.spread:.0f}%")
            notes.append(f"the first four channels are not FOA ({residual}); searched all {n_channels}")
    else:
        raise MediaError(path, _refusal(fit, searched, subset, n_channels))
    if len(subset) < n_channels and channels is None:
        notes.append(f"{n_channels} channels: read the first four as FOA (pass --channels to choose others)")
    if correlation < MIN_CORRELATION:
        notes.append(f"the calibration signal was not found (correlation {correlation:.2f} < {MIN_CORRELATION}); "
                     f"fitted without a time offset")
    to_raw = {i: c for i, c in enumerate(subset)}
    omni = to_raw[fit.omni]
    by_component = {j: to_raw[c] for j, c in fit.by_component.items()}
    relative = fit.gains
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
         "gain": float(abs(relative[j])), "residual": float(fit.residuals[j])} for j in range(3)]
    return Calibration(text, layout, normalisation, n_channels, assignment, lag / sample_rate, correlation,
                       tuple(subset), tuple(notes), fit.worst)


PRESET_MAPS = {
    "ambix": "0,1,2,3",
    "fuma": f"0*{math.sqrt(2.0):.6g},2,3,1",
    "n3d": f"0,1*{1 / math.sqrt(3.0):.6g},2*{1 / math.sqrt(3.0):.6g},3*{1 / math.sqrt(3.0):.6g}",
    "youtube-aac": "2,1,4,0",
    "ambix+headlocked": "0,1,2,3",
}
"""The named layouts of :mod:`avsa.media.layouts` as channel maps."""


def read(path: str | os.PathLike, *, burst_s: float = BURST_S, channels: tuple[int, ...] | None = None
         ) -> Calibration:
    """Decode ``path`` (the calibration video after any re-encoding) and estimate its channel map (:func:`estimate`)."""
    from avsa.media import io

    info = io.probe(path)
    if not info.has_audio:
        raise MediaError(path, "no audio stream")
    raw = io.read_audio(path, layout="raw")
    return estimate(raw, int(info.audio_rate), burst_s=burst_s, path=path, channels=channels)
