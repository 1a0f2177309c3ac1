"""STARSS23: real 360° recordings with FOA and labelled sound-event directions.

Layout of the development set (DCASE 2023/2024 task 3)::

    ROOT/foa_dev/<split>/<name>.wav        4-ch ambiX (ACN/SN3D), 24 kHz
    ROOT/video_dev/<split>/<name>.mp4      360° equirectangular video
    ROOT/metadata_dev/<split>/<name>.csv   frame, class, source, azimuth, elevation, distance

with splits ``dev-train-sony``, ``dev-train-tau``, ``dev-test-sony`` and
``dev-test-tau``. Label rows: frames of 100 ms (frame k covers
[0.1·k, 0.1·k + 0.1) s), a class index of :data:`CLASSES`, a source index
telling apart events of one class, azimuth and elevation in integer degrees
(azimuth counter-clockwise from the front, 90° = left; elevation up — the
project's own frame) and the distance in cm. Tolerated (not in the official
files): a header line, rows without the distance column (the five columns of
STARSS22), other split folders (``dev-test-*`` is a test split, every other
folder a training split).

:func:`avsa.media.sources.starss23_sources` pairs each video with its audio (a video without audio
is left out with a warning, as is a label file without its recording; audio without video is left out) and
:func:`load_groundtruth` turns a
label file into the cache's ground truth: one object per (class, source)
pair, present in its labelled frames (``active``), labelled with its class
name.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.errors import MediaError

AUDIO_DIR, VIDEO_DIR, METADATA_DIR = "foa_dev", "video_dev", "metadata_dev"
SPLITS = ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau")
TEST_PREFIX = "dev-test"
FRAME_S = 0.1
"""Length of one label frame, seconds."""
CLASSES = (
    "female speech, woman speaking", "male speech, man speaking", "clapping", "telephone", "laughter",
    "domestic sounds", "walk, footsteps", "door, open or close", "music", "musical instrument",
    "water tap, faucet", "bell", "knock",
)
"""The 13 classes, by index."""
SOURCE_SIZE = math.radians(30.0)
"""Nominal angular size of a labelled source (the labels give none), radians; used for object crops."""
TRACK_ID_STRIDE = 1000
"""Object id of (class c, source s) in the ground truth: c · 1000 + s."""


@dataclass(frozen=True)
class LabelRow:
    """One labelled event in one frame (angles in degrees, distance in cm; NaN when absent)."""

    frame: int
    cls: int
    source: int
    azimuth_deg: float
    elevation_deg: float
    distance_cm: float = math.nan


def is_layout(root: Path) -> bool:
    """True if ``root`` holds the STARSS23 development layout (``foa_dev/`` and ``video_dev/``)."""
    return (root / AUDIO_DIR).is_dir() and (root / VIDEO_DIR).is_dir()


def split_of(folder: str) -> str:
    """The cache split of a STARSS23 split folder: ``test`` for ``dev-test-*``, else ``train``."""
    return "test" if folder.startswith(TEST_PREFIX) else "train"


def read_labels(path: str | os.PathLike) -> list[LabelRow]:
    """The rows of one label file.

    Raises
    ------
    MediaError
        Naming the file and line of a row that is not ``frame, class, source, azimuth, elevation[, distance]``
        (the value that is not a number), whose class is not one of the 13, or whose azimuth lies outside
        [−180°, 180°] or elevation outside [−90°, 90°] (values are never wrapped).

    A file without any labelled event is returned as ``[]`` with a warning naming it (every STARSS23
    recording has events, so it is most likely truncated).
    """
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"cannot read labels ({exc})") from None
    for number, fields in enumerate(csv.reader(lines), start=1):
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if number == 1 and not fields[0].lstrip("-").isdigit():
            continue  # a header line
        if len(fields) not in (5, 6):
            raise MediaError(path, f"line {number}: {len(fields)} columns; expected frame, class, source, "
                                   "azimuth, elevation[, distance]")
        values = []
        for column, kind, text in zip(("frame", "class", "source", "azimuth", "elevation", "distance"),
                                      (int, int, int, float, float, float), fields):
            try:
                values.append(kind(text))
            except ValueError:
                raise MediaError(path, f"line {number}: {column} {text!r} is not "
                                       f"{'an integer' if kind is int else 'a number'}") from None
        row = LabelRow(*values) if len(values) == 6 else LabelRow(*values, math.nan)
        if not 0 <= row.cls < len(CLASSES):
            raise MediaError(path, f"line {number}: class {row.cls} is not one of 0..{len(CLASSES) - 1}")
        if row.frame < 0:
            raise MediaError(path, f"line {number}: frame {row.frame} is negative")
        if not -180.0 <= row.azimuth_deg <= 180.0:  # NaN fails too
            raise MediaError(path, f"line {number}: azimuth {row.azimuth_deg:g}° is outside [-180, 180]")
        if not -90.0 <= row.elevation_deg <= 90.0:
            raise MediaError(path, f"line {number}: elevation {row.elevation_deg:g}° is outside [-90, 90]")
        rows.append(row)
    if not rows:
        warnings.warn(f"{path}: no labelled event (empty label file?); its recording counts as silent",
                      stacklevel=2)
    return rows


def load_groundtruth(path: str | os.PathLike, *, duration_s: float | None = None, width: int = 0, height: int = 0,
                     sample_rate: int = 24000):
    """A label file as :class:`~avsa.media.groundtruth.GroundTruth` (frames of 100 ms).

    Parameters
    ----------
    path : path
        ``metadata_dev/<split>/<name>.csv``.
    duration_s : float, optional
        Length of the recording; default: up to the end of the last labelled frame. Frames cover
        ``[0, duration_s)`` (labels after it are dropped).
    width, height, sample_rate : int
        Of the recording, recorded in the ground truth.

    Returns
    -------
    GroundTruth
        One object per (class, source) with id ``class · 1000 + source``, label the class name,
        ``sounding`` true, present (``active``) in its labelled frames. Directions in frames where an
        object is absent repeat its nearest labelled direction.
    """
    from avsa.media.groundtruth import GroundTruth, ObjectTrack

    rows = read_labels(path)
    last = max((row.frame for row in rows), default=-1)
    n_frames = last + 1 if duration_s is None else max(int(math.ceil(duration_s / FRAME_S - 1e-9)), 1)
    tracks: dict[tuple[int, int], dict[int, tuple[float, float]]] = {}
    for row in rows:
        if row.frame < n_frames:
            tracks.setdefault((row.cls, row.source), {})[row.frame] = (row.azimuth_deg, row.elevation_deg)
    objects = []
    for (cls, source), frames in sorted(tracks.items()):
        labelled = np.array(sorted(frames))
        az = np.radians([frames[f][0] for f in labelled])
        el = np.radians([frames[f][1] for f in labelled])
        after = np.clip(np.searchsorted(labelled, np.arange(n_frames)), 0, labelled.size - 1)
        before = np.clip(after - 1, 0, labelled.size - 1)
        nearest = np.where(np.abs(labelled[before] - np.arange(n_frames)) <= np.abs(labelled[after] - np.arange(n_frames)),
                           before, after)
        active = np.zeros(n_frames, dtype=bool)
        active[labelled] = True
        azimuth = np.pi - (np.pi - az[nearest]) % (2 * np.pi)  # wrapped to (−π, π]
        objects.append(ObjectTrack(cls * TRACK_ID_STRIDE + source, CLASSES[cls], True, SOURCE_SIZE,
                                   azimuth, el[nearest], active))
    return GroundTruth(seed=0, scene="starss23", fps=1.0 / FRAME_S, duration_s=n_frames * FRAME_S if duration_s is None
                       else float(duration_s), width=int(width), height=int(height), sample_rate=int(sample_rate),
                       frame_times_s=np.arange(n_frames) * FRAME_S, objects=objects, audio_convention="ambix")
