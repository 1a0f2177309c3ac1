"""The one typed configuration of the synthetic world (``avsa synth``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from avsa.errors import ConfigError

FOA_CONVENTIONS = ("ambix", "fuma", "n3d", "youtube-aac")
"""The Ambisonics conventions of :data:`avsa.spatial.ambisonics.CONVENTIONS` the world can be written in."""
BROKEN_CONVENTIONS = ("stereo-upmix", "swapped")
"""Broken FOA the world can be written as: a stereo file up-mixed to four channels, X and Y swapped."""
CONVENTIONS = FOA_CONVENTIONS + BROKEN_CONVENTIONS
PROJECTIONS = ("equirect", "eac")
SPEECH_MODES = ("auto", "synth", "espeak")


@dataclass(frozen=True)
class SynthConfig:
    """How a synthetic 360° video is rendered.

    Levels are in dB relative to the direct sound of the sounding objects
    (energy of the W channel), so they keep their meaning for any number of
    sources. Reflections and the reverberant tail are correlated with the
    direct sound, so like a real room they move the validity ratio ρ of an
    ambiX clip away from 1; at the defaults a 10-s clip stays within about
    ±0.1 of it.

    Attributes
    ----------
    duration_s : float
        Length of each video, seconds.
    width : int
        Equirectangular width W in pixels (height W/2); a multiple of 8.
    fps : float
        Video frame rate.
    sample_rate : int
        Audio sample rate, Hz.
    min_sources, max_sources : int
        Number of sound-emitting objects per video (distinct classes), 1–4.
    max_distractors : int
        At most this many silent objects per video (0 to disable).
    moving_probability : float
        Chance that an object moves (smooth azimuth/elevation path).
    size_range : tuple of float
        Angular width of objects, radians (min, max).
    ambience_db, reverb_db, noise_db : float
        Diffuse ambience, reverberant tail and sensor noise levels, dB re direct.
    reflections : int
        Early reflections per source (mirrored directions, 0 to disable).
    reflection_gain : float
        Amplitude of the first early reflection relative to the direct sound.
    rt60_s : float
        Decay time of the reverberant tail (−60 dB), seconds.
    peak : float
        Peak absolute sample value of the ambiX mix (global gain).
    convention : str
        Channel convention written to the file: one of :data:`CONVENTIONS`.
    projection : str
        ``"equirect"`` or ``"eac"`` (equi-angular cubemap, ``synth/eac.py``).
    speech : str
        ``"auto"`` uses the ``espeak-ng`` binary for "person" when it exists,
        ``"synth"`` always the built-in formant babble, ``"espeak"`` requires it.
    """

    duration_s: float = 10.0
    width: int = 512
    fps: float = 16.0
    sample_rate: int = 24000
    min_sources: int = 1
    max_sources: int = 4
    max_distractors: int = 2
    moving_probability: float = 0.5
    size_range: tuple[float, float] = (0.35, 0.65)
    ambience_db: float = -20.0
    reverb_db: float = -20.0
    noise_db: float = -60.0
    reflections: int = 3
    reflection_gain: float = 0.3
    rt60_s: float = 0.5
    peak: float = 0.5
    convention: str = "ambix"
    projection: str = "equirect"
    speech: str = "auto"

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.fps <= 0 or self.sample_rate < 8000:
            raise ConfigError(
                f"duration_s={self.duration_s}, fps={self.fps}, sample_rate={self.sample_rate}: "
                "need a positive duration and fps and a sample rate of at least 8000 Hz"
            )
        if self.width < 64 or self.width % 8:
            raise ConfigError(f"width={self.width}: must be a multiple of 8, at least 64")
        if not 1 <= self.min_sources <= self.max_sources <= 4:
            raise ConfigError(
                f"min_sources={self.min_sources}, max_sources={self.max_sources}: need 1 ≤ min ≤ max ≤ 4"
            )
        if self.max_distractors < 0 or self.reflections < 0:
            raise ConfigError("max_distractors and reflections must be ≥ 0")
        lo, hi = self.size_range
        if not 0 < lo <= hi < 2.0:
            raise ConfigError(f"size_range={self.size_range}: need 0 < min ≤ max < 2 rad")
        if self.convention not in CONVENTIONS:
            raise ConfigError(f"convention={self.convention!r}: expected one of {CONVENTIONS}")
        if self.projection not in PROJECTIONS:
            raise ConfigError(f"projection={self.projection!r}: expected one of {PROJECTIONS}")
        if self.speech not in SPEECH_MODES:
            raise ConfigError(f"speech={self.speech!r}: expected one of {SPEECH_MODES}")

    @property
    def height(self) -> int:
        """Equirectangular height H = W/2, pixels."""
        return self.width // 2

    @property
    def n_frames(self) -> int:
        """Number of video frames."""
        return max(1, int(round(self.duration_s * self.fps)))

    @property
    def n_samples(self) -> int:
        """Number of audio samples."""
        return int(round(self.duration_s * self.sample_rate))

    @classmethod
    def from_dict(cls, values: dict) -> "SynthConfig":
        """Build from a mapping; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown SynthConfig keys {unknown}; known: {sorted(known)}")
        return cls(**values)
