"""``avsa check --av CACHE``: which channel convention makes the audio point at what the video shows?

The validity ratio ρ cannot see a swapped, mirrored or re-ordered set of
first-order channels (:data:`avsa.media.check.BLIND_SPOTS`). This check can:
per clip of a prepared cache it compares the direction of the audio's active
intensity (:func:`avsa.spatial.features.foa_intensity` per mel band, averaged
in 100-ms bins, kept where its length is at least :data:`MIN_INTENSITY`,
i.e. one source dominates) with the directions of the
cache's detections (``avsa detect``) around the same time. Each candidate
convention of :data:`CANDIDATES` says how the file's channels may have been
broken; undoing it turns the measured intensity vector by a signed
permutation. The candidate under which the audio directions lie closest to
the detections (smallest mean angle to the nearest one) is the clip's
verdict; the cache's verdict is the one most clips name.

The verdict is only as good as the detections: on real data a detector finds
objects whether they sound or not, so a clip where nothing visible sounds
cannot vote. The candidates differ in how they move directions; "as is" wins
whenever the audio agrees with the detections.
"""

from __future__ import annotations

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
AGREE_ANGLE = math.radians(30.0)
"""An audio direction agrees with a detection within this angle."""
NEAR_S = 0.5
"""Detections within this many seconds of a bin's middle are compared with it."""

# Corrections of the measured intensity [x, y, z]: true = M @ read, for each way the channels may be broken.
CANDIDATES: dict[str, np.ndarray] = {
    "as is": np.eye(3),
    "x-y swapped": np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], float),
    "y flipped (mirrored)": np.diag([1.0, -1.0, 1.0]),
    "x flipped (front-back)": np.diag([-1.0, 1.0, 1.0]),
    "z flipped (upside down)": np.diag([1.0, 1.0, -1.0]),
    "fuma order read as ambix": np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], float),
}
"""How each candidate turns the direction measured from the cached (as-read) channels into the true one."""


def break_channels(foa: np.ndarray, candidate: str) -> np.ndarray:
    """ambiX (4, N) written as ``candidate`` says the channels were broken (the inverse of its correction).

    Used to make test material with a known broken convention.
    """
    if candidate not in CANDIDATES:
        raise InputError(f"unknown convention {candidate!r}; expected one of {sorted(CANDIDATES)}")
    w, y, z, x = np.asarray(foa, dtype=np.float32)
    read = CANDIDATES[candidate].T @ np.stack([x, y, z])  # the inverse of a signed permutation is its transpose
    return np.stack([w, read[1], read[2], read[0]]).astype(np.float32)


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


@dataclass(frozen=True)
class ClipVerdict:
    """The convention check of one clip.

    ``mean_angle[candidate]``: mean angle (radians) from each compared audio direction, corrected by the
    candidate, to the nearest detection; the verdict has the smallest. ``agreement[candidate]``: the fraction
    of them within :data:`AGREE_ANGLE`.
    """

    clip_id: str
    verdict: str
    agreement: dict
    mean_angle: dict
    n_bins: int


def judge(times: np.ndarray, directions: np.ndarray, detections, *, clip_id: str = "") -> ClipVerdict | None:
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
        agreement[name] = float(np.mean(nearest <= AGREE_ANGLE))
        mean_angle[name] = float(np.mean(nearest))
    verdict = min(CANDIDATES, key=lambda n: (mean_angle[n], -agreement[n]))
    return ClipVerdict(clip_id, verdict, agreement, mean_angle, int(compared.sum()))


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
        times, directions = audio_directions(audio.T, rate)
        verdict = judge(times, directions, load_detections(path).detections, clip_id=clip.clip_id)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


def summary(verdicts: list[ClipVerdict]) -> tuple[str | None, Counter]:
    """The convention most clips name (None without verdicts) and the count of each."""
    counts = Counter(v.verdict for v in verdicts)
    return (counts.most_common(1)[0][0] if counts else None), counts


def format_report(verdicts: list[ClipVerdict], cache_name: str) -> str:
    """A table of clip verdicts with the agreement of "as is" and of the verdict, and the cache's verdict."""
    lines = [f"{'clip':<32} {'bins':>4}  {'as is':>6}  {'best':>6}  verdict"]
    for v in verdicts:
        lines.append(f"{v.clip_id:<32} {v.n_bins:>4}  {100 * v.agreement['as is']:5.0f}%  "
                     f"{100 * v.agreement[v.verdict]:5.0f}%  {v.verdict}")
    best, counts = summary(verdicts)
    if best is None:
        lines.append(f"{cache_name}: no clip has audio directions near detections; nothing to judge")
    else:
        share = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        lines.append(f"{cache_name}: {best!r} makes audio and video agree in {counts[best]} of {len(verdicts)} "
                     f"clips ({share})")
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
