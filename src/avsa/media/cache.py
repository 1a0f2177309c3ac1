"""The training cache written by ``avsa prepare`` (docs/interfaces.md).

::

    CACHE/
      manifest.csv            one row per clip (MANIFEST_COLUMNS)
      clips/<clip_id>.mp4     H.264 equirect, 16 fps, GOP 8, no audio
      clips/<clip_id>.flac    4-ch ambiX/SN3D, 24 kHz, 24-bit
      clips/<clip_id>.json    ground truth sliced to the clip (synthetic only)
      failures.csv            file, problem
      detections/<name>/      written by ``avsa detect``
      parts/                  per-source manifest parts (prepare's bookkeeping)
      prepare.json            the options the cache was prepared with (PREPARE_OPTIONS_NAME)
      .prepare.lock           held by the ``avsa prepare`` writing the cache (``writer_lock``)

Paths in the manifest are relative to ``CACHE``. Clip ids become file names
(``clips/<clip_id>.mp4``, ``detections/<name>/<clip_id>.json``), so they are
checked by :func:`check_clip_id` wherever they are read or written.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

from avsa.errors import InputError

MANIFEST_NAME = "manifest.csv"
FAILURES_NAME = "failures.csv"
CLIPS_DIR = "clips"
PARTS_DIR = "parts"
DETECTIONS_DIR = "detections"
STATUS_OK = "ok"
PREPARE_OPTIONS_NAME = "prepare.json"
LOCK_NAME = ".prepare.lock"
SHARD_LOCK_PREFIX = ".prepare.shard-"
AUDIO_LAYOUT = "ambix"
"""The channel layout of every cached audio file (ACN order, SN3D gains), whatever the source's."""


def check_clip_id(clip_id: str, *, where: str) -> str:
    """``clip_id`` if it is safe as a file name; else an InputError naming ``where``.

    A clip id must be non-empty, hold no path separator, NUL or control
    character, and not be ``.`` or ``..`` or start with ``.`` (hidden and
    temporary files of the cache start with it).
    """
    bad = (not clip_id or clip_id.startswith(".") or any(c in clip_id for c in "/\\\0")
           or any(ord(c) < 32 for c in clip_id))
    if bad:
        raise InputError(f"{where}: clip id {clip_id!r} cannot be a file name "
                         "(empty, a path separator, a leading '.' or a control character)")
    return clip_id


@contextmanager
def writer_lock(root: str | os.PathLike, shard: tuple[int, int] = (0, 1)) -> Iterator[None]:
    """Hold the writer's lock of the cache ``root`` (created if needed) for ``shard``.

    A whole-cache writer (``shard`` ``(0, 1)``) holds ``root/.prepare.lock``
    exclusively. Writers of shards ``i/N`` (disjoint sets of sources, e.g. one
    per machine on a shared cache) share that lock and each holds
    ``.prepare.shard-<i>-of-<N>.lock`` exclusively; shards of another ``N``
    (which would overlap) are refused while one of them is held. The locks
    are ``flock`` locks: the kernel releases them when their holder exits,
    however it exits, so a killed run never leaves a stale lock.

    Raises
    ------
    InputError
        If a writer that would overlap holds a lock (the message names it).
    """
    import fcntl

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    index, count = shard
    held = []

    def take(path: Path, mode: int, what: str):
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or _shard_holders(root) or "another process"
            handle.close()
            raise InputError(
                f"{root}: another avsa prepare is writing {what} ({holder}, lock {path}); "
                "wait for it to finish, or prepare into another --out"
            ) from None
        return handle

    def stamp(handle) -> None:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}" + (f", shard {index}/{count}" if count > 1 else "")
                     + "\n")
        handle.flush()

    try:
        main = take(root / LOCK_NAME, fcntl.LOCK_EX if count == 1 else fcntl.LOCK_SH, "this cache")
        held.append(main)
        if count == 1:
            stamp(main)
        else:
            mine = take(root / f"{SHARD_LOCK_PREFIX}{index}-of-{count}.lock", fcntl.LOCK_EX,
                        f"shard {index}/{count} of this cache")
            held.append(mine)
            stamp(mine)
            for other in root.glob(f"{SHARD_LOCK_PREFIX}*.lock"):
                if other.name.endswith(f"-of-{count}.lock"):
                    continue
                probe = take(other, fcntl.LOCK_EX, "this cache with shards of another count (use one --shard i/N "
                             "count for all writers of a cache)")
                fcntl.flock(probe, fcntl.LOCK_UN)
                probe.close()
        yield
    finally:
        for handle in reversed(held):
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _shard_holders(root: Path) -> str:
    """Who holds shard locks of ``root``, as recorded in them (for messages)."""
    names = []
    for path in sorted(root.glob(f"{SHARD_LOCK_PREFIX}*.lock")):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            names.append(text)
    return "; ".join(names)


def read_prepare_options(root: str | os.PathLike) -> dict | None:
    """The options recorded in ``root/prepare.json``, or None for a cache that has none."""
    path = Path(root) / PREPARE_OPTIONS_NAME
    if not path.is_file():
        return None
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable preparation record ({exc})") from None
    if not isinstance(options, dict):
        raise InputError(f"{path}: not a preparation record (expected a JSON object)")
    return options


def write_prepare_options(root: str | os.PathLike, options: dict) -> None:
    """Record ``options`` in ``root/prepare.json`` (temporary file, then rename)."""
    path = Path(root) / PREPARE_OPTIONS_NAME
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(options, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def check_cache_matches(root: str | os.PathLike, *, sample_rate: int, fps: float, what: str) -> None:
    """Raise if the cache ``root`` was prepared at another audio rate, frame rate or layout.

    Parameters
    ----------
    root : path
        The cache.
    sample_rate, fps : int, float
        What the reader expects (``data.sample_rate``, ``data.fps`` of a training config).
    what : str
        How the reader names those settings in the message (``"data"``).

    A cache without ``prepare.json`` (written before it existed) is checked
    by the headers of its first readable clip's audio and video instead.
    """
    root = Path(root)
    recorded = read_prepare_options(root)
    if recorded is None:
        recorded = _options_from_first_clip(root)
    problems = []
    if "sample_rate" in recorded and int(recorded["sample_rate"]) != int(sample_rate):
        problems.append(f"audio at {recorded['sample_rate']} Hz, not {what}.sample_rate={sample_rate}")
    if "fps" in recorded and abs(float(recorded["fps"]) - float(fps)) > 1e-6:
        problems.append(f"video at {float(recorded['fps']):g} fps, not {what}.fps={float(fps):g}")
    if recorded.get("audio_layout", AUDIO_LAYOUT) != AUDIO_LAYOUT:
        problems.append(f"audio in layout {recorded['audio_layout']!r}, not {AUDIO_LAYOUT}")
    if problems:
        raise InputError(f"cache {root} holds {'; '.join(problems)}: prepare it again with the "
                         "config's settings, or set the config to the cache's")


def _options_from_first_clip(root: Path) -> dict:
    import soundfile

    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    found: dict = {}
    for row in read_csv(manifest):
        if row.get("status") != STATUS_OK:
            continue
        if "sample_rate" not in found and row.get("audio"):
            try:
                found["sample_rate"] = soundfile.info(str(root / row["audio"])).samplerate
            except Exception:  # an unreadable clip is the loader's to skip and name
                pass
        if "fps" not in found and row.get("video"):
            try:
                import av

                with av.open(str(root / row["video"])) as container:
                    rate = container.streams.video[0].average_rate
                if rate:
                    found["fps"] = float(rate)
            except Exception:  # as above
                pass
        if len(found) == 2:
            break
    return found


@dataclass(frozen=True)
class ClipRecord:
    """One manifest row.

    Attributes
    ----------
    clip_id : str
        ``<source name>_c<k>`` (k = 3-digit clip index in the source).
    source : str
        The source video, as given to ``avsa prepare`` (relative to SRC).
    split : str
        ``train`` / ``test`` / ...
    start_s, duration_s : float
        Where the clip sits in the source, seconds.
    video, audio : str
        ``clips/<clip_id>.mp4`` / ``.flac`` ("" for dropped clips).
    groundtruth : str
        ``clips/<clip_id>.json`` or "" when the source has none.
    loudness_db : float
        RMS level of W over the clip in dB re full scale
        (10·log10 mean(W²); a full-scale sine in W reads −3 dB).
    validity : float
        ρ of paper Eq. 13 (``docs/conventions.md`` §8) over the clip; NaN when silent.
    convention : str
        The convention ρ suggests (``ambisonics.diagnose``).
    status : str
        ``ok``, or ``dropped: <reason>``.
    """

    clip_id: str
    source: str
    split: str
    start_s: float
    duration_s: float
    video: str
    audio: str
    groundtruth: str
    loudness_db: float
    validity: float
    convention: str
    status: str

    def to_row(self) -> dict[str, str]:
        """The record as manifest strings (floats at fixed precision)."""
        row = {}
        for field in fields(self):
            value = getattr(self, field.name)
            row[field.name] = f"{value:.4f}" if isinstance(value, float) else str(value)
        return row

    @classmethod
    def from_row(cls, row: dict[str, str], *, where: str) -> "ClipRecord":
        """Parse a manifest row; ``where`` names it in errors."""
        missing = [f.name for f in fields(cls) if f.name not in row]
        if missing:
            raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
        values: dict[str, object] = {}
        for field in fields(cls):
            text = row[field.name]
            if field.type == "float":
                try:
                    values[field.name] = float(text)
                except ValueError:
                    raise InputError(f"{where}: {field.name}={text!r} is not a number") from None
            else:
                values[field.name] = text
        return cls(**values)  # type: ignore[arg-type]


MANIFEST_COLUMNS = tuple(field.name for field in fields(ClipRecord))


def write_csv_atomic(path: Path, header: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    """Write a CSV to a temporary name beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class Cache:
    """A prepared cache folder (read side).

    Parameters
    ----------
    root : path
        The folder ``avsa prepare --out`` wrote.

    Raises
    ------
    InputError
        If the folder or its ``manifest.csv`` is missing or malformed.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        manifest = self.root / MANIFEST_NAME
        if not self.root.is_dir():
            raise InputError(f"cache folder {self.root} does not exist — run avsa prepare first")
        if not manifest.is_file():
            raise InputError(f"{self.root} has no {MANIFEST_NAME} — run avsa prepare first")
        self.records = [
            ClipRecord.from_row(row, where=f"{manifest} row {index + 2}")
            for index, row in enumerate(read_csv(manifest))
        ]
        for index, record in enumerate(self.records):
            check_clip_id(record.clip_id, where=f"{manifest} row {index + 2}")
        self._by_id = {record.clip_id: record for record in self.records}
        if len(self._by_id) != len(self.records):
            seen: set[str] = set()
            twice = sorted({r.clip_id for r in self.records if r.clip_id in seen or seen.add(r.clip_id)})
            raise InputError(f"{manifest}: duplicate clip id(s) {', '.join(twice)}")

    def clips(self, split: str | None = None, *, status: str | None = STATUS_OK) -> list[ClipRecord]:
        """Clips of ``split`` (all splits if None) with ``status`` (any if None)."""
        return [
            record
            for record in self.records
            if (split is None or record.split == split) and (status is None or record.status == status)
        ]

    def clip(self, clip_id: str) -> ClipRecord:
        """The record of ``clip_id``."""
        if clip_id not in self._by_id:
            raise InputError(f"{self.root}: no clip {clip_id!r} in the manifest")
        return self._by_id[clip_id]

    def video_path(self, clip: ClipRecord) -> Path:
        """The clip's equirectangular video (``clips/<clip_id>.mp4``)."""
        return self._path(clip, clip.video, "video")

    def audio_path(self, clip: ClipRecord) -> Path:
        """The clip's ambiX audio (``clips/<clip_id>.flac``)."""
        return self._path(clip, clip.audio, "audio")

    def groundtruth_path(self, clip: ClipRecord) -> Path | None:
        """The clip's ground-truth JSON, or None when it has none."""
        return self.root / clip.groundtruth if clip.groundtruth else None

    def groundtruth(self, clip: ClipRecord):
        """The clip's :class:`~avsa.media.groundtruth.GroundTruth`, or None."""
        from avsa.media import groundtruth

        path = self.groundtruth_path(clip)
        return None if path is None else groundtruth.load(path)

    def detections_dir(self, name: str) -> Path:
        """``CACHE/detections/<name>`` (not created)."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise InputError(f"detector name {name!r} must be a plain folder name")
        return self.root / DETECTIONS_DIR / name

    def _path(self, clip: ClipRecord, relative: str, what: str) -> Path:
        if not relative:
            raise InputError(f"clip {clip.clip_id} has no {what} (status: {clip.status})")
        return self.root / relative

