"""The synthetic world's sound field: ambiX/SN3D FOA of a scene layout.

Per sounding object: its class sound (``sounds.py``) encoded as a plane wave
at its direction, sample by sample (the per-frame track interpolated linearly
to audio rate, azimuth unwrapped), so moving objects move in the audio too.
Added, with levels relative to the direct sound (``SynthConfig``):

- early reflections: delayed (3–25 ms), attenuated and scattered (convolved
  with 8 ms of decaying noise) copies from mirrored directions (floor: φ → −φ; side wall: θ → −θ; front/back wall: θ → π − θ);
- a reverberant tail: the dry mix convolved with an exponentially decaying
  diffuse impulse response (independent noise per channel; W at full, X, Y, Z
  at 1/√3 so E[X² + Y² + Z²] = E[W²], the SN3D diffuse field);
- diffuse ambience: 16 decorrelated coloured noises from evenly spread
  directions (scene-specific spectral slope and hum);
- sensor noise: independent white noise per channel.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from avsa.media.synth.config import SynthConfig
from avsa.media.synth.scenes import SceneLayout
from avsa.media.synth.sounds import class_sound
from avsa.spatial.pixels import unit_vectors

_N_AMBIENCE = 16


def per_sample_track(frame_times_s: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray,
                     n_samples: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate a per-frame direction track to every audio sample.

    Parameters
    ----------
    frame_times_s : np.ndarray, shape (T,)
    azimuth, elevation : np.ndarray, shape (T,), radians
    n_samples : int
    sample_rate : int

    Returns
    -------
    azimuth, elevation : np.ndarray, float64, shape (N,), radians
        (azimuth unwrapped, not wrapped back: encoding only needs sin/cos).
    """
    t = np.arange(n_samples) / sample_rate
    return (np.interp(t, frame_times_s, np.unwrap(azimuth)),
            np.interp(t, frame_times_s, elevation))


def plane_wave(signal: np.ndarray, azimuth, elevation) -> np.ndarray:
    """ambiX/SN3D plane wave(s): s·[1, sin θ cos φ, sin φ, cos θ cos φ] (``docs/conventions.md`` §3).

    The NumPy twin of :func:`avsa.spatial.ambisonics.encode` (tested equal to
    it) without its per-call input validation, which dominates the cost of
    rendering long signals.

    Parameters
    ----------
    signal : np.ndarray, shape (..., N)
    azimuth, elevation : array_like, radians
        Broadcasting against ``signal`` (one per sample: shape (..., N); one
        per signal: shape (..., 1)).

    Returns
    -------
    np.ndarray, float32, shape (..., 4, N)
    """
    s = np.asarray(signal, dtype=np.float32)
    az = np.asarray(azimuth, dtype=np.float32)
    el = np.asarray(elevation, dtype=np.float32)
    x, y, z = unit_vectors(az, el, axis=0)
    gains = np.stack(np.broadcast_arrays(np.ones_like(az), y, z, x), axis=-2)
    return gains * s[..., None, :]


def _delay(x: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros_like(x)
    if samples < x.shape[-1]:
        out[..., samples:] = x[..., : x.shape[-1] - samples]
    return out


def _scatter(x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A wall's rough scattering: x convolved with a short decaying noise of unit energy.

    Decorrelates a reflection from the direct sound (so the mix keeps the
    validity ratio ρ ≈ 1 of uncorrelated SN3D components) at equal energy.
    """
    length = int(0.008 * sample_rate)
    h = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.002 * sample_rate))
    return fftconvolve(x, h / np.linalg.norm(h))[: x.size]


def _energy(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def _scale_to(x: np.ndarray, target_energy: float) -> np.ndarray:
    e = _energy(x[0])
    return x * np.sqrt(target_energy / e) if e > 0 else x


def _fibonacci_directions(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(n) + 0.5
    el = np.arcsin(1 - 2 * k / n)
    az = np.mod(np.pi * (1 + 5**0.5) * k + rng.uniform(0, 2 * np.pi), 2 * np.pi) - np.pi
    return az, el


def _ambience(layout: SceneLayout, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal((_N_AMBIENCE, n))
    spectrum = np.fft.rfft(white, axis=-1)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    shape = (np.maximum(freqs, 20.0) / 1000.0) ** (layout.scene.ambience_slope_db / 6.02)
    noise = np.fft.irfft(spectrum * shape, n=n, axis=-1)
    hum_hz = layout.scene.ambience_hum_hz
    if hum_hz > 0:
        t = np.arange(n) / sample_rate
        for k in (1, 2, 3):
            noise += (0.5 / k) * np.sin(2 * np.pi * k * hum_hz * t + rng.uniform(0, 2 * np.pi, (_N_AMBIENCE, 1)))
    az, el = _fibonacci_directions(_N_AMBIENCE, rng)
    return plane_wave(noise, az[:, None], el[:, None]).sum(axis=0)


def _reverb_tail(dry: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    length = int(1.2 * rt60_s * sample_rate)
    t = np.arange(length) / sample_rate
    envelope = np.exp(-6.91 * t / rt60_s) * np.clip((t - 0.01) / 0.01, 0, 1)  # 10-ms pre-delay ramp
    ir = rng.standard_normal((4, length)) * envelope
    ir[1:] /= np.sqrt(3.0)
    return fftconvolve(dry[None, :], ir, axes=-1)[:, : dry.size]


def render_foa(layout: SceneLayout, config: SynthConfig, *, dry_only: bool = False) -> np.ndarray:
    """The scene's sound field.

    Parameters
    ----------
    layout : SceneLayout
    config : SynthConfig
        Duration, sample rate and levels.
    dry_only : bool, keyword-only
        Only the direct sound of the sounding objects (no reflections,
        reverberation, ambience or noise), still at ``config.peak``.

    Returns
    -------
    np.ndarray, float32, shape (4, N)
        ambiX (W, Y, Z, X, SN3D), peak absolute value ``config.peak``
        (silent when nothing sounds and ``dry_only``).
    """
    n, sr = config.n_samples, config.sample_rate
    rng = np.random.default_rng([layout.seed, 0xA0D10])
    direct = np.zeros((4, n))
    early = np.zeros((4, n))
    dry_mix = np.zeros(n)
    for obj in layout.objects:
        if not obj.sounding:
            continue
        s = class_sound(obj.label, n, sr, seed=obj.seed, speech=config.speech) * 10 ** (rng.uniform(-3, 3) / 20)
        az, el = per_sample_track(layout.frame_times_s, obj.azimuth, obj.elevation, n, sr)
        direct += plane_wave(s, az, el)
        dry_mix += s
        mirrors = [(az, -el), (-az, el), (np.pi - az, el)]
        for k in range(config.reflections):
            m_az, m_el = mirrors[k % len(mirrors)]
            gain = config.reflection_gain * 0.75**k * rng.uniform(0.8, 1.0)
            delay = int(rng.uniform(0.003, 0.025) * sr)
            early += gain * _delay(plane_wave(_scatter(s, sr, rng), m_az, m_el), delay)
    e_direct = _energy(direct[0])
    mix = direct.copy()
    if not dry_only:
        mix += early
        if e_direct > 0 and config.rt60_s > 0:
            tail = _reverb_tail(dry_mix, config.rt60_s * layout.scene.rt60_scale, sr, rng)
            mix += _scale_to(tail, e_direct * 10 ** (config.reverb_db / 10))
        reference = e_direct if e_direct > 0 else 1e-2
        mix += _scale_to(_ambience(layout, n, sr, rng), reference * 10 ** (config.ambience_db / 10))
        mix += rng.standard_normal((4, n)) * np.sqrt(reference * 10 ** (config.noise_db / 10))
    peak = float(np.abs(mix).max())
    if peak > 0:
        mix *= config.peak / peak
    return mix.astype(np.float32)
