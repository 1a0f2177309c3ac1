"""Characteristic sounds of the object classes, synthesised procedurally.

Each class has its own recognisable texture, varied per object by its seed:

- person: voiced babble — a glottal pulse train (f0 100–230 Hz, jittered
  intonation) through vowel formant resonators, in syllables and phrases; or
  real speech from the ``espeak-ng`` binary when it is installed (optional).
- cat: meows — harmonic tones whose pitch rises and falls (≈ 450–950 Hz).
- cup: clinks — short sums of inharmonic decaying partials (2–7 kHz).
- motorcycle: engine — a sawtooth firing pulse at 25–45 Hz with revving and
  amplitude modulation, plus exhaust noise.
- rocket: roar — low-passed noise with a slow swell and crackle.
- clock: tick-tock — regular band-passed clicks, alternating pitch.
- horse: hooves — triplets of low resonant knocks in a gallop rhythm.

Every function returns float32 (N,) with unit RMS.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal as sps

from avsa.errors import InputError


def _normalise(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return (x / rms).astype(np.float32) if rms > 0 else x.astype(np.float32)


def _resonator(x: np.ndarray, freq_hz: float, bandwidth_hz: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonance at ``freq_hz`` (an IIR filter)."""
    r = np.exp(-np.pi * bandwidth_hz / sample_rate)
    theta = 2 * np.pi * freq_hz / sample_rate
    return sps.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)


def _events(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Sample indices of a Poisson process of ``rate_hz`` events per second."""
    count = rng.poisson(rate_hz * n / sample_rate) + 1
    return np.sort(rng.integers(0, n, size=count))


def _person_synth(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    formants = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                         [530, 1840, 2480], [570, 840, 2410], [440, 1020, 2240]], dtype=float)
    f0_base = rng.uniform(100, 230)
    t = np.arange(n) / sample_rate
    f0 = f0_base * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 6.3)))
    phase = np.cumsum(f0 / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
    source = sps.lfilter([1.0], [1, -0.95], pulses) + 0.02 * rng.standard_normal(n)
    out = np.zeros(n)
    env = np.zeros(n)
    pos = 0
    while pos < n:  # phrases of syllables separated by pauses
        for _ in range(rng.integers(3, 9)):
            length = int(rng.uniform(0.12, 0.3) * sample_rate)
            seg = slice(pos, min(n, pos + length))
            vowel = formants[rng.integers(len(formants))] * rng.uniform(0.9, 1.15)
            piece = sum(_resonator(source[seg], f, 80 + 0.05 * f, sample_rate) * g
                        for f, g in zip(vowel, (1.0, 0.6, 0.3)))
            out[seg] = piece
            env[seg] = np.hanning(seg.stop - seg.start) if seg.stop > seg.start else 0
            pos += length
            if pos >= n:
                break
        pos += int(rng.uniform(0.2, 0.7) * sample_rate)
    return out * env


def _person_espeak(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    words = ["hello", "over", "there", "look", "at", "this", "morning", "station", "seven",
             "yes", "quite", "nice", "weather", "today", "come", "here", "where", "train"]
    text = " ".join(rng.choice(words, size=int(n / sample_rate * 2.5) + 1))
    voice = ["en", "en-us", "en-gb"][int(rng.integers(3))]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        done = subprocess.run([exe, "-v", voice, "-s", str(int(rng.integers(140, 190))),
                               "-p", str(int(rng.integers(30, 70))), "-w", str(wav), text],
                              capture_output=True, check=False)
        if done.returncode != 0 or not wav.exists():
            return None
        import soundfile

        speech, rate = soundfile.read(str(wav), dtype="float64", always_2d=False)
    if speech.ndim > 1:
        speech = speech.mean(axis=1)
    speech = sps.resample_poly(speech, sample_rate, rate)
    reps = int(np.ceil(n / max(speech.size, 1)))
    return np.tile(speech, reps)[:n]


def _cat(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    pos = int(rng.uniform(0, 0.5) * sample_rate)
    while pos < n:
        length = int(rng.uniform(0.4, 0.9) * sample_rate)
        tt = np.linspace(0, 1, length)
        lo, hi = rng.uniform(420, 560), rng.uniform(750, 950)
        f = lo + (hi - lo) * np.sin(np.pi * tt**0.7)  # rise then fall
        phase = 2 * np.pi * np.cumsum(f) / sample_rate
        tone = sum(np.sin(k * phase) / k**1.2 for k in range(1, 7))
        env = np.sin(np.pi * tt) ** 0.6 * (1 - np.exp(-tt * 40))
        end = min(n, pos + length)
        out[pos:end] += (tone * env)[: end - pos]
        pos = end + int(rng.uniform(0.3, 1.2) * sample_rate)
    return out


def _cup(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    nyquist = sample_rate / 2
    base = np.array([2200.0, 3650.0, 5100.0, 6900.0]) * rng.uniform(0.85, 1.15)
    length = int(0.25 * sample_rate)
    tt = np.arange(length) / sample_rate
    for start in _events(rng, n, sample_rate, rng.uniform(2.0, 4.0)):
        clink = np.zeros(length)
        for f in base * rng.uniform(0.97, 1.03, size=base.size):
            if f < 0.9 * nyquist:
                clink += np.sin(2 * np.pi * f * tt + rng.uniform(0, 6.3)) * np.exp(-tt / rng.uniform(0.03, 0.09))
        end = min(n, start + length)
        out[start:end] += rng.uniform(0.5, 1.0) * clink[: end - start]
    return out


def _motorcycle(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    idle = rng.uniform(25, 45)
    rev = 1 + 0.5 * np.clip(np.sin(2 * np.pi * t / rng.uniform(2.5, 5.0) + rng.uniform(0, 6.3)), 0, None)
    phase = np.cumsum(idle * rev / sample_rate)
    saw = 2 * (phase % 1.0) - 1
    firing = 0.6 + 0.4 * np.cos(2 * np.pi * phase)
    noise = sps.lfilter(*sps.butter(2, 1500 / (sample_rate / 2)), rng.standard_normal(n))
    engine = sps.lfilter(*sps.butter(2, 2500 / (sample_rate / 2)), saw) + 0.3 * noise
    return engine * firing


def _rocket(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    roar = sps.lfilter(*sps.butter(2, rng.uniform(300, 700) / (sample_rate / 2)), rng.standard_normal(n))
    crackle = np.zeros(n)
    pops = _events(rng, n, sample_rate, 40.0)
    crackle[pops] = rng.uniform(-1, 1, size=pops.size)
    crackle = sps.lfilter(*sps.butter(2, [1000 / (sample_rate / 2), 4000 / (sample_rate / 2)], "band"), crackle)
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * t / rng.uniform(3.0, 7.0) + rng.uniform(0, 6.3))
    return (roar / roar.std() + 0.3 * crackle / max(crackle.std(), 1e-9)) * swell


def _clock(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    period = int(rng.uniform(0.45, 0.55) * sample_rate)
    length = int(0.012 * sample_rate)
    click = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.002 * sample_rate))
    tick = _resonator(click, 2600 * rng.uniform(0.9, 1.1), 300, sample_rate)
    tock = _resonator(click, 1700 * rng.uniform(0.9, 1.1), 250, sample_rate)
    out = np.zeros(n)
    for i, start in enumerate(range(int(rng.integers(period)), n, period)):
        piece = tick if i % 2 == 0 else tock
        end = min(n, start + length)
        out[start:end] += piece[: end - start]
    return out


def _horse(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    stride = rng.uniform(0.45, 0.65)
    length = int(0.06 * sample_rate)
    knock = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.008 * sample_rate))
    out = np.zeros(n)
    for start in np.arange(rng.uniform(0, stride), n / sample_rate, stride):
        for offset, freq in zip((0.0, 0.09, 0.17), (420.0, 560.0, 480.0)):
            s = int((start + offset) * sample_rate)
            if s >= n:
                break
            clop = _resonator(knock, freq * rng.uniform(0.9, 1.1), 120, sample_rate)
            end = min(n, s + length)
            out[s:end] += clop[: end - s]
    return out


_SYNTHS = {"cat": _cat, "cup": _cup, "motorcycle": _motorcycle, "rocket": _rocket,
           "clock": _clock, "horse": _horse}


def class_sound(label: str, n_samples: int, sample_rate: int, *, seed: int,
                speech: str = "auto") -> np.ndarray:
    """The sound of one object of class ``label``.

    Parameters
    ----------
    label : str
        Object class (``scenes.CLASSES``).
    n_samples : int
        Length N.
    sample_rate : int
        Hz.
    seed : int
        The object's seed (pitch, rhythm and timbre vary with it).
    speech : {"auto", "synth", "espeak"}
        For "person": use ``espeak-ng`` when available ("auto"), never
        ("synth") or always ("espeak", InputError when it is missing).

    Returns
    -------
    np.ndarray, float32, shape (N,), unit RMS.
    """
    rng = np.random.default_rng([seed, 0x50D])
    if label == "person":
        x = None
        if speech in ("auto", "espeak"):
            x = _person_espeak(n_samples, sample_rate, rng)
            if x is None and speech == "espeak":
                raise InputError("speech='espeak' but the espeak-ng binary is not installed or failed")
        if x is None:
            x = _person_synth(n_samples, sample_rate, rng)
        return _normalise(x)
    if label not in _SYNTHS:
        raise InputError(f"no sound for object class {label!r}; expected one of {sorted(_SYNTHS) + ['person']}")
    return _normalise(_SYNTHS[label](n_samples, sample_rate, rng))
