"""``avsa check --av CACHE``: which channel convention makes the audio point at what the video shows?

The validity ratio ρ cannot see a swapped, mirrored or re-ordered set of
first-order channels (:data:`avsa.media.check.BLIND_SPOTS`). This check can:
per clip of a prepared cache it compares the direction of the audio's active
intensity (:func:`avsa.spatial.features.foa_intensity` per mel band, averaged
in 100-ms bins, kept where its length is at least :data:`MIN_INTENSITY`,
i.e. one source dominates) with the directions of the cache's detections
(``avsa detect``) around the same time.

Candidates. A convention is a gain convention times a signed permutation of
the dipole channels. The gains (ambiX/SN3D, FuMa's W at −3 dB, N3D's dipoles
at √3) do not move directions, so they are taken from the validity ratio ρ
(:func:`avsa.spatial.ambisonics.diagnose`) and undone before the intensity is
measured. The dipoles are tried under all 48 signed permutations of X, Y, Z
(:data:`CANDIDATES`: swaps, mirrors, FuMa order read as ambiX, and every
combination of them); each is named by the ``--channel-map`` that undoes it
on the cached channels, and by a plain name where it has one.

Agreement. A (bin, band) cell with a detection within :data:`NEAR_S` is
*compared*; it *agrees* under a candidate when its corrected direction lies
within :data:`AGREE_ANGLE` of one of those detections. A candidate's
agreement is the fraction of compared cells that agree (per clip; for the
cache, the mean over its judged clips). The verdict is the candidate with the
highest agreement, reported with its *margin* over the runner-up, and

* "no convention fits" when the best agreement is below
  :data:`MIN_AGREEMENT` (the field was turned some other way, mixed, or
  nothing visible sounds);
* "ambiguous between A and B" when other candidates are within
  :data:`TIE_MARGIN` of the best: the detections cannot tell them apart, e.g.
  a flipped Z when every source sits on the horizon.

The thresholds were chosen on the synthetic world with oracle detections
(``benchmarks/bench_checks.py``; figures in ``docs/real-data.md``). The
verdict is only as good as the detections: on real data a detector finds
objects whether they sound or not, which lowers every candidate's agreement.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.data.detection.base import load_detections
from avsa.errors import InputError
from avsa.media.cache import DETECTIONS_DIR, MANIFEST_NAME, Cache
from avsa.spatial.pixels import unit_vectors

BIN_S = 0.1
"""Length of one audio-direction bin, seconds."""
MIN_INTENSITY = 0.5
"""Smallest length of the band-averaged intensity vector for a bin to count (1: one plane wave, ≈0.57 diffuse)."""
AGREE_ANGLE = math.radians(20.0)
"""An audio direction agrees with a detection within this angle."""
NEAR_S = 0.5
"""Detections within this many seconds of a bin's middle are compared with it."""
MIN_AGREEMENT = 0.7
"""Below this best agreement (fraction of compared cells) no candidate fits."""
TIE_MARGIN = 0.05
"""Candidates whose agreement is within this of the best are reported as indistinguishable."""
NO_FIT = "no convention fits"

_SLOT = (3, 1, 2)
"""ambiX channel index of the components x, y, z."""
_NAMES = {
    "0,1,2,3": "as is",
    "0,3,2,1": "x-y swapped",
    "0,-1,2,3": "y flipped (mirrored)",
    "0,1,2,-3": "x flipped (front-back)",
    "0,1,-2,3": "z flipped (upside down)",
    "0,2,3,1": "fuma order read as ambix",
    "0,2,1,3": "y-z swapped",
    "0,1,3,2": "x-z swapped",
}
"""Plain names of the signed permutations that have one, by the channel map that undoes them."""


def _channel_map(m: np.ndarray, w_gain: float = 1.0, dipole_gain: float = 1.0) -> str:
    """The channel map (on ambiX-ordered channels) that undoes the correction ``m`` (true = m @ read)."""
    from avsa.media.layouts import format_channel_map

    mapping = [(0, w_gain)]
    for j in (1, 2, 0):  # ambiX order Y, Z, X of the true components
        k = int(np.argmax(np.abs(m[j])))
        mapping.append((_SLOT[k], float(np.sign(m[j, k])) * dipole_gain))
    return format_channel_map(mapping)


def _signed_permutations() -> dict[str, np.ndarray]:
    out = {}
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), order] = signs
            text = _channel_map(m)
            out[_NAMES.get(text, f"map {text}")] = m
    named = {name: out[name] for name in _NAMES.values()}  # plain names first, in their order
    return named | {name: m for name, m in out.items() if name not in named}


CANDIDATES: dict[str, np.ndarray] = _signed_permutations()
"""All 48 signed permutations of the dipoles, by name: the correction true = M @ read of the measured
intensity [x, y, z]; the plainly named ones first, "as is" first of all."""
BROKEN = tuple(name for name in _NAMES.values() if name != "as is")
"""The named broken conventions (the measurements of ``docs/real-data.md`` use them)."""
GAIN_FIXES = {"ambix": (1.0, 1.0), "fuma": (math.sqrt(2.0), 1.0), "n3d": (1.0, 1 / math.sqrt(3.0))}
"""Gains (W, dipoles) that bring each gain convention ρ names to SN3D."""


def channel_map(candidate: str, gains: str = "ambix") -> str:
    """The ``--channel-map`` that undoes ``candidate`` (and the gain convention ``gains``) on cached channels."""
    if candidate not in CANDIDATES:
        raise InputError(f"unknown convention {candidate!r}; expected one of {sorted(CANDIDATES)}")
    return _channel_map(CANDIDATES[candidate], *GAIN_FIXES.get(gains, (1.0, 1.0)))


def break_channels(foa: np.ndarray, candidate: str) -> np.ndarray:
    """ambiX (4, N) written as ``candidate`` says the channels were broken (the inverse of its correction).

    Used to make test material with a known broken convention.
    """
    if candidate not in CANDIDATES:
        raise InputError(f"unknown convention {candidate!r}; expected one of {sorted(CANDIDATES)}")
    w, y, z, x = np.asarray(foa, dtype=np.float32)
    read = CANDIDATES[candidate].T @ np.stack([x, y, z])  # the inverse of a signed permutation is its transpose
    return np.stack([w, read[1], read[2], read[0]]).astype(np.float32)


def undo_gains(foa: np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
    """ambiX (4, N) with FuMa or N3D gains (as ρ names them) brought to SN3D, and the name ρ gave.

    Returns the audio unchanged for ``ambix`` and for ρ outside the FOA bands ("not ambisonic", "silent").
    """
    from avsa.spatial.ambisonics import diagnose

    foa = np.asarray(foa, dtype=np.float32)
    name = diagnose(foa, sample_rate).convention
    w_gain, dipole_gain = GAIN_FIXES.get(name, (1.0, 1.0))
    return np.concatenate([w_gain * foa[:1], dipole_gain * foa[1:]]).astype(np.float32), name


def audio_directions(foa: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Directions where one source dominates: bin middles (s) and unit intensity vectors [x, y, z] (K, 3).

    The intensity of every mel band is averaged over 100-ms bins; a (bin, band) cell counts when its
    vector is at least :data:`MIN_INTENSITY` long. Several sources sounding at once usually dominate
    different bands, so each can be seen.
    """
    from avsa.spatial.features import foa_intensity

    hop = max(int(round(sample_rate * 0.01)), 1)
    iv = foa_intensity(np.asarray(foa, dtype=np.float32), sample_rate, n_fft=4 * hop, hop_length=hop,
                       n_mels=32).numpy()  # (3, T, F)
    per_bin = max(int(round(BIN_S * sample_rate / hop)), 1)
    n_bins = iv.shape[1] // per_bin
    if n_bins == 0:
        return np.zeros(0), np.zeros((0, 3))
    binned = iv[:, :n_bins * per_bin].reshape(3, n_bins, per_bin, -1).mean(2)  # (3, B, F)
    vectors = binned.reshape(3, -1).T  # (B·F, 3)
    times = np.repeat((np.arange(n_bins) + 0.5) * per_bin * hop / sample_rate, binned.shape[-1])
    length = np.linalg.norm(vectors, axis=1)
    keep = length >= MIN_INTENSITY
    return times[keep], vectors[keep] / length[keep, None]


def _decide(agreement: dict[str, float], *, min_agreement: float, tie_margin: float
            ) -> tuple[str, tuple[str, ...], str, float]:
    """(verdict text, candidates tied with the best (best first), the runner-up, margin of the best over it)."""
    ranked = sorted(agreement, key=lambda n: -agreement[n])  # stable: plain names first among equals
    best = agreement[ranked[0]]
    margin = best - agreement[ranked[1]]
    ties = tuple(n for n in ranked if agreement[n] >= best - tie_margin)
    if best < min_agreement:
        return NO_FIT, ties, ranked[1], margin
    if len(ties) > 1:
        shown = " and ".join(repr(n) for n in ties[:3]) + (f" (+{len(ties) - 3} more)" if len(ties) > 3 else "")
        return f"ambiguous between {shown}", ties, ranked[1], margin
    return ties[0], ties, ranked[1], margin


@dataclass(frozen=True)
class ClipVerdict:
    """The convention check of one clip.

    Attributes
    ----------
    clip_id : str
    verdict : str
        The best candidate's name, ``"no convention fits"``, or ``"ambiguous between 'A' and 'B'"``.
    best : str
        The candidate with the highest agreement (whatever the verdict).
    runner_up : str
        The candidate with the next-highest agreement.
    margin : float
        The best agreement minus the runner-up's.
    ties : tuple of str
        The candidates within :data:`TIE_MARGIN` of the best, best first.
    agreement : dict
        Per candidate: the fraction of compared cells within :data:`AGREE_ANGLE` of a detection.
    mean_angle : dict
        Per candidate: the mean angle (radians) of the compared cells to the nearest detection.
    n_bins : int
        Compared (bin, band) cells.
    gains : str
        The gain convention ρ named (undone before measuring): ``ambix``, ``fuma``, ``n3d`` or another
        :func:`~avsa.spatial.ambisonics.diagnose` name.
    """

    clip_id: str
    verdict: str
    best: str
    runner_up: str
    margin: float
    ties: tuple
    agreement: dict
    mean_angle: dict
    n_bins: int
    gains: str = "ambix"


def judge(times: np.ndarray, directions: np.ndarray, detections, *, clip_id: str = "", gains: str = "ambix",
          agree_angle: float = AGREE_ANGLE, min_agreement: float = MIN_AGREEMENT,
          tie_margin: float = TIE_MARGIN) -> ClipVerdict | None:
    """The verdict of one clip from its audio directions and its detections (None if nothing to compare)."""
    if not detections or len(times) == 0:
        return None
    det_t = np.array([d.time_s for d in detections])
    det_v = unit_vectors(np.array([d.azimuth for d in detections]), np.array([d.elevation for d in detections]))
    near = np.abs(times[:, None] - det_t[None]) <= NEAR_S  # (B, D)
    compared = near.any(1)
    if not compared.any():
        return None
    agreement, mean_angle = {}, {}
    for name, m in CANDIDATES.items():
        corrected = directions[compared] @ m.T  # (B', 3)
        angles = np.arccos(np.clip(corrected @ det_v.T, -1.0, 1.0))
        nearest = np.where(near[compared], angles, np.inf).min(1)
        agreement[name] = float(np.mean(nearest <= agree_angle))
        mean_angle[name] = float(np.mean(nearest))
    verdict, ties, runner_up, margin = _decide(agreement, min_agreement=min_agreement, tie_margin=tie_margin)
    return ClipVerdict(clip_id, verdict, ties[0], runner_up, margin, ties, agreement, mean_angle,
                       int(compared.sum()), gains)


def judge_clip(foa: np.ndarray, sample_rate: int, detections, *, clip_id: str = "", **options) -> ClipVerdict | None:
    """:func:`judge` of one clip's cached audio (4, N): gains undone as ρ names them, then directions measured."""
    foa, gains = undo_gains(foa, sample_rate)
    times, directions = audio_directions(foa, sample_rate)
    return judge(times, directions, detections, clip_id=clip_id, gains=gains, **options)


def check_cache_av(cache, *, detector: str | None = None, split: str | None = None) -> list[ClipVerdict]:
    """One verdict per ``ok`` clip of ``cache`` that has audio directions near detections.

    Parameters
    ----------
    cache : Cache or path
    detector : str, optional
        Folder under ``CACHE/detections/``; default: the only one there.
    split : str, optional
        Only clips of this split.
    """
    import soundfile

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    if detector is None:
        found = sorted(p.name for p in (cache.root / DETECTIONS_DIR).glob("*") if p.is_dir())
        if len(found) != 1:
            raise InputError(f"{cache.root}: {'no detections' if not found else 'detections of ' + ', '.join(found)}"
                             f"; run `avsa detect` first or pass --detections NAME")
        detector = found[0]
    folder = cache.detections_dir(detector)
    if not folder.is_dir():
        raise InputError(f"{folder} does not exist; run `avsa detect {cache.root} --detector {detector}` first")
    verdicts = []
    for clip in cache.clips():
        if split is not None and clip.split != split:
            continue
        path = folder / f"{clip.clip_id}.json"
        if not path.is_file():
            continue
        audio, rate = soundfile.read(cache.audio_path(clip), dtype="float32", always_2d=True)
        verdict = judge_clip(audio.T, rate, load_detections(path).detections, clip_id=clip.clip_id)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


@dataclass(frozen=True)
class CacheVerdict:
    """The convention check of a whole cache: :class:`ClipVerdict`'s fields over the mean clip agreement.

    ``counts``: how many clips gave each clip verdict; ``gains``: how many clips ρ put in each gain convention.
    """

    verdict: str | None
    best: str | None
    runner_up: str | None
    margin: float
    ties: tuple
    agreement: dict
    n_clips: int
    counts: Counter
    gains: Counter


def summary(verdicts: list[ClipVerdict], *, min_agreement: float = MIN_AGREEMENT,
            tie_margin: float = TIE_MARGIN) -> CacheVerdict:
    """The cache's verdict: each candidate's agreement averaged over the clips, decided as for one clip."""
    counts = Counter(v.verdict for v in verdicts)
    gains = Counter(v.gains for v in verdicts)
    if not verdicts:
        return CacheVerdict(None, None, None, 0.0, (), {}, 0, counts, gains)
    agreement = {n: float(np.mean([v.agreement[n] for v in verdicts])) for n in CANDIDATES}
    verdict, ties, runner_up, margin = _decide(agreement, min_agreement=min_agreement, tie_margin=tie_margin)
    return CacheVerdict(verdict, ties[0], runner_up, margin, ties, agreement, len(verdicts), counts, gains)


def format_report(verdicts: list[ClipVerdict], cache_name: str) -> str:
    """A table of clip verdicts (agreement of "as is" and of the best, margin) and the cache's verdict."""
    lines = [f"{'clip':<32} {'cells':>5}  {'as is':>6}  {'best':>6}  {'margin':>6}  verdict"]
    for v in verdicts:
        lines.append(f"{v.clip_id:<32} {v.n_bins:>5}  {100 * v.agreement['as is']:5.0f}%  "
                     f"{100 * v.agreement[v.best]:5.0f}%  {100 * v.margin:5.0f}%  {v.verdict}")
    s = summary(verdicts)
    if s.verdict is None:
        lines.append(f"{cache_name}: no clip has audio directions near detections; nothing to judge")
        return "\n".join(lines)
    measure = (f"agreement = share of audio directions within {math.degrees(AGREE_ANGLE):.0f}° of a detection, "
               f"mean over {s.n_clips} clips; fits from {100 * MIN_AGREEMENT:.0f}%, ties within "
               f"{100 * TIE_MARGIN:.0f}%")
    best = (f"{s.best!r} {100 * s.agreement[s.best]:.0f}%, runner-up {s.runner_up!r} "
            f"{100 * s.agreement[s.runner_up]:.0f}%, margin {100 * s.margin:.0f} points")
    gains = ", ".join(f"{name} {n}" for name, n in s.gains.most_common())
    if s.verdict == NO_FIT:
        lines.append(f"{cache_name}: no convention fits (best {best}; below {100 * MIN_AGREEMENT:.0f}%): the field "
                     f"is turned or mixed some other way, out of sync, or nothing detected sounds")
    elif len(s.ties) > 1:
        lines.append(f"{cache_name}: {s.verdict}: the detections cannot tell them apart (best {best})")
    else:
        major = "" if s.gains.most_common(1)[0][0] == "ambix" else f" (gains by rho: {gains})"
        fix = "" if s.best == "as is" else (f"; undo it with --channel-map "
                                            f"{channel_map(s.best, s.gains.most_common(1)[0][0])} (on the cached "
                                            f"channels; the source map composed with it)")
        lines.append(f"{cache_name}: {s.best!r} makes audio and video agree: {best}{major}{fix}")
    named = sum(v.verdict == s.best for v in verdicts)
    tied = sum(len(v.ties) > 1 and v.verdict != NO_FIT and s.best in v.ties for v in verdicts)
    no_fit = sum(v.verdict == NO_FIT for v in verdicts)
    lines.append(f"  clips: {named} name {s.best!r}, {tied} ambiguous with it among the tied, {no_fit} no fit, "
                 f"{len(verdicts) - named - tied - no_fit} something else")
    lines.append(f"  {measure}")
    return "\n".join(lines)


def check_av(paths: list[Path], *, detections: str | None = None) -> None:
    """``avsa check --av``: print the audio-visual convention check of each prepared cache.

    Raises
    ------
    InputError
        For a path that is not a prepared cache.
    """
    for path in paths:
        if not (Path(path) / MANIFEST_NAME).is_file():
            raise InputError(f"--av {path}: not a prepared cache (no {MANIFEST_NAME}); prepare and detect first")
        print(format_report(check_cache_av(Cache(path), detector=detections), str(path)))
