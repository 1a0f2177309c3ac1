"""Turn a folder of 360° videos into a training cache (``avsa prepare SRC --out CACHE``).

Per source (``sources.find_sources``): probe, check the frame is 360°, choose
the audio layout, cut 10-s clips, and for each clip write
``clips/<clip_id>.mp4`` (H.264 equirect W×W/2 at 16 fps, GOP 8, no audio),
``clips/<clip_id>.flac`` (4-ch ambiX/SN3D, 24 kHz, 24-bit) and the sliced
ground truth, then one manifest part per source. Clips whose W is quieter than
``--min-loudness-db`` are dropped (the paper's curation; kept in the manifest
with status ``dropped: ...``).

Audio layout with ``--layout auto`` (the rule):

1. with ``--ground-truth``, a ground-truth ``<stem>.json`` whose
   ``audio_convention`` names a layout (the synthetic world says what it
   wrote) → that layout;
2. 4 channels → ``ambix`` (YouTube's 4-ch Opus/Vorbis streams and files with
   spatial-audio metadata are ambiX; FuMa/N3D cannot be told from the header:
   ``avsa check`` diagnoses them, then pass ``--layout fuma|n3d``);
3. 6 channels in an AAC stream → ``youtube-aac`` (raw [X, Y, W, 0, Z, 0]);
   6 channels otherwise → ``ambix+headlocked`` (W, Y, Z, X, L, R);
4. anything else is an error naming the channel count.

``--channel-map`` replaces the rule with an explicit map of the raw channels
(:data:`avsa.media.layouts.CHANNEL_MAP_HELP`; ``avsa calibrate read`` prints
the map of a platform's re-encoding).

Robustness: one writer at a time holds the cache's lock
(:func:`~avsa.media.cache.writer_lock`; a second ``prepare`` stops with a
message naming the holder). Every output is written under a temporary name
unique to its writer, read back to verify it (audio decoded, video from its
packets and first frame), and only then renamed into place; the manifest is merged from per-source part files
(``parts/<source>.csv``) written atomically once every clip of a source is
verified, so a killed run never leaves a corrupt manifest. A rerun verifies
every clip again (a clip that does not decode is rewritten and counted as
repaired), removes temporaries left by killed runs, and skips what is whole.
The options are recorded in ``prepare.json``; a rerun with different ones
stops with a message naming them. Worker processes exit when their parent
dies. Bad inputs are listed in ``failures.csv`` and a summary, and skipped.
The exit status is 0 when the cache holds at least one usable clip.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import secrets
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import soundfile
from tqdm import tqdm

from avsa.errors import AvsaError, InputError, MediaError
from avsa.media.cache import (
    AUDIO_LAYOUT,
    CLIPS_DIR,
    FAILURES_NAME,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    PARTS_DIR,
    STATUS_OK,
    ClipRecord,
    check_clip_id,
    read_csv,
    read_prepare_options,
    write_csv_atomic,
    write_prepare_options,
    writer_lock,
)
from avsa.media.layouts import FOA_LAYOUTS, decide_layout
from avsa.media.outputs import shorten
from avsa.media.sources import Source, find_sources, in_shard
from avsa.media.workers import exit_with_parent, spawn_context
from avsa.spatial.ambisonics import diagnose

FAILURE_COLUMNS = ("file", "problem")
ASPECT_TOLERANCE = 0.02
SILENT_DB = -200.0
#: Sources of at least this many pixels (1920×960) go from the decoder's YUV straight to the cache's
#: yuv420p at the cache's size, in one libswscale pass with no RGB in between: on a 4K source a
#: fifth of prepare's CPU time beyond decoding (``benchmarks/bench_prepare_hires.py``). Smaller
#: sources keep the RGB round trip (YUV → RGB at the cache's size → YUV for the encoder), so a cache
#: prepared from them keeps its bytes: the two paths differ by colour rounding, a few levels.
DIRECT_YUV_MIN_PIXELS = 1920 * 960

SOURCE_ERRORS = (AvsaError, OSError, ValueError, EOFError)
"""What preparing a broken source can raise: :mod:`avsa.media.io` turns every decoder failure into a
:class:`~avsa.errors.MediaError`; writing and checking the cache's files add the others."""


@dataclass(frozen=True)
class PrepareOptions:
    """Options of one prepare run (documented defaults = the paper's)."""

    width: int = 512            # equirect width W; height W/2
    fps: float = 16.0           # video frame rate of the cache
    sample_rate: int = 24000    # audio rate of the cache, Hz
    clip_s: float = 10.0        # clip length, seconds
    min_clip_s: float = 1.0     # a source shorter than clip_s gives one clip if at least this long
    layout: str = "auto"        # audio layout of the sources (see module docstring)
    min_loudness_db: float = -50.0  # clips with quieter W are dropped
    equirect: bool = False      # treat frames without metadata as full-sphere equirect
    gop: int = 8                # keyframe interval of the cache video, frames
    channel_map: str = ""       # explicit raw → ambiX map (layouts.CHANNEL_MAP_HELP) instead of --layout
    ground_truth: bool = False  # read sidecar <stem>.json ground truth (the synthetic world's); STARSS23 labels always

    def validate(self) -> "PrepareOptions":
        """The options, or an InputError naming the first impossible one (as its flag)."""
        if self.layout != "auto" and self.layout not in FOA_LAYOUTS:
            raise InputError(f"--layout {self.layout!r}: expected auto or one of {', '.join(FOA_LAYOUTS)}")
        if self.channel_map:
            from avsa.media.layouts import parse_channel_map

            parse_channel_map(self.channel_map)
            if self.layout != "auto":
                raise InputError(f"--channel-map and --layout {self.layout} both say how to read the channels: "
                                 "give one of them")
        if self.width < 2 or self.width % 2:
            raise InputError(f"--width {self.width}: must be an even number of pixels")
        for flag, value in (("--fps", self.fps), ("--sample-rate", self.sample_rate),
                            ("--clip-seconds", self.clip_s), ("--min-clip-seconds", self.min_clip_s),
                            ("--gop", self.gop)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"{flag} {value}: must be a positive number")
        if self.min_clip_s > self.clip_s:
            raise InputError(f"--min-clip-seconds {self.min_clip_s:g} is longer than --clip-seconds {self.clip_s:g}")
        if not math.isfinite(self.min_loudness_db):
            raise InputError(f"--min-loudness-db {self.min_loudness_db}: must be a finite level in dBFS")
        if round(self.clip_s * self.fps) < 1 or round(self.min_clip_s * self.fps) < 1:
            raise InputError(f"--clip-seconds {self.clip_s:g} at --fps {self.fps:g} holds no whole frame")
        return self

    def record(self) -> dict:
        """What ``prepare.json`` records: every option that changes the clips, and the cached layout."""
        record = {**asdict(self), "audio_layout": AUDIO_LAYOUT}
        if not self.channel_map:  # caches prepared before the option existed record none
            del record["channel_map"]
        return record


OPTIONS_RECORDED_LATER = ("ground_truth",)
"""Options that caches prepared before they existed do not record: not compared with such a cache (those
caches read sidecar ground truth whenever it was there)."""


OPTION_FLAGS = {"width": "--width", "fps": "--fps", "sample_rate": "--sample-rate", "clip_s": "--clip-seconds",
                "min_clip_s": "--min-clip-seconds", "layout": "--layout", "min_loudness_db": "--min-loudness-db",
                "equirect": "--equirect", "channel_map": "--channel-map", "ground_truth": "--ground-truth"}
"""The command-line flag of each :class:`PrepareOptions` field, for messages."""


@dataclass
class SourceResult:
    """What preparing one source produced."""

    name: str
    records: list[ClipRecord] = field(default_factory=list)
    problem: str | None = None
    skipped: bool = False
    repaired: int = 0


def check_frame(info, *, equirect: bool) -> str:
    """The projection to read a source's frames with; raise if not 360°.

    Returns ``"equirectangular"`` or ``"cubemap"`` (from metadata, or forced
    by ``equirect``) or ``"auto"`` for a 2:1 frame without metadata.
    """
    if info.projection in ("equirectangular", "cubemap"):
        return info.projection
    if equirect:
        return "equirectangular"
    aspect = info.width / info.height
    if abs(aspect - 2.0) <= 2.0 * ASPECT_TOLERANCE:
        return "equirectangular"
    divisor = math.gcd(info.width, info.height)
    ratio = f"{info.width // divisor}:{info.height // divisor}"
    raise InputError(
        f"not a 360° frame ({ratio}, no spherical metadata); pass --equirect if it is "
        f"({info.width}x{info.height})"
    )


def loudness_db(foa: np.ndarray) -> float:
    """RMS level of W in dB re full scale: 10·log10(mean(W²)); −200 when silent.

    Parameters
    ----------
    foa : ndarray (4, N)
        ambiX audio.
    """
    power = float(np.mean(np.square(foa[0], dtype=np.float64))) if foa.shape[-1] else 0.0
    return 10.0 * math.log10(power) if power > 1e-20 else SILENT_DB


def clip_starts(duration_s: float, options: PrepareOptions) -> list[tuple[float, float]]:
    """(start, duration) of each clip of a source of ``duration_s`` seconds.

    Whole clips of ``clip_s``; the last partial clip is dropped. A source
    shorter than one clip but at least ``min_clip_s`` long gives one clip of
    its length, cut down to whole frames.
    """
    count = int(math.floor(duration_s / options.clip_s + 1e-9))
    if count:
        return [(k * options.clip_s, options.clip_s) for k in range(count)]
    length = math.floor(duration_s * options.fps + 1e-6) / options.fps
    return [(0.0, length)] if length >= options.min_clip_s else []


def _fit_frames(frames, length: int):
    """Frames of an iterable trimmed or padded (repeating the last) to ``length``, one at a time: the clip's
    frames go to the encoder as they decode, never all in memory at once."""
    last, count = None, 0
    try:
        for last in frames:
            if count == length:
                break
            yield last
            count += 1
    finally:  # a generator left early closes its file and its conversion thread now, not when collected
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if last is None:
        raise InputError("the decoder returned nothing for this window")
    for _ in range(length - count):
        yield last


def _fit(array: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Trim or pad (repeating the last element / zeros for audio) to ``length``."""
    have = array.shape[axis]
    if have >= length:  # a view, not a copy
        return array[(slice(None),) * (axis % array.ndim) + (slice(0, length),)]
    if have == 0:
        raise InputError("the decoder returned nothing for this window")
    pad = [(0, 0)] * array.ndim
    pad[axis] = (0, length - have)
    return np.pad(array, pad, mode="edge" if array.dtype == np.uint8 else "constant")


TEMPORARY_MARK = ".partial"
"""In the name of every temporary file of the cache, and of no finished file."""
MAX_KEY_BYTES = 150
"""Longest source key (bytes of UTF-8): its clip ids, their temporaries (``.<clip id>.<pid>-<token>.partial.mp4``
plus the spherical-metadata rewrite's ``.spherical.tmp``) and part files stay below the 255-byte file-name limit."""


def source_key(name: str) -> str:
    """The name a source's clips (``<key>_c000``) and part files carry in the cache.

    An ordinary name (valid UTF-8, at most :data:`MAX_KEY_BYTES` bytes, printable, no leading ``.``)
    is its own key, so caches prepared before keys existed stay valid. Any other name (a file name
    that is not UTF-8, too long, with control characters) becomes a readable prefix of it with
    those characters replaced by ``_``, then ``-`` and the first 10 hex digits of the SHA-1 of the
    full name's bytes (``os.fsencode``), so two long names that share a prefix still differ.
    """
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # undecodable bytes of the file name (surrogate escapes)
        size = None
    if size is not None and 0 < size <= MAX_KEY_BYTES and not name.startswith(".") and name.isprintable() \
            and not any(c in name for c in "/\\"):
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    readable = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF and c not in "/\\" else "_"
                       for c in name).lstrip(".")
    readable = shorten(readable, MAX_KEY_BYTES - len(digest) - 1)
    return f"{readable}-{digest}" if readable else digest


def _text(value: str) -> str:
    """``value`` with undecodable file-name bytes shown as U+FFFD (for CSV files and messages)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _temporary(path: Path) -> Path:
    """A name beside ``path`` that no other writer uses (hidden, same suffix for the muxer)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_MARK}{path.suffix}")


def _temporary_of(path: Path) -> str | None:
    """The clip id a temporary file was written for, or None if ``path`` is not a temporary.

    Temporaries are ``.<clip id>.<pid>-<token>.partial.<ext>`` (:func:`_temporary`) or, from
    older versions, ``<clip id>.partial.<ext>``; a finished clip (``<clip id>.<ext>``) never matches.
    """
    stem = path.stem
    if not stem.endswith(TEMPORARY_MARK):
        return None
    stem = stem[: -len(TEMPORARY_MARK)]
    if path.name.startswith("."):
        stem = stem[1:].rpartition(".")[0]
    return stem or None


def remove_temporaries(cache: Path, shard: tuple[int, int] = (0, 1)) -> int:
    """Delete the temporaries that killed runs left in ``cache/clips`` for ``shard``; returns how many.

    Call only while holding the writer lock of ``shard``: then no live writer owns one.
    """
    clips = cache / CLIPS_DIR
    stale = []
    for path in clips.iterdir() if clips.is_dir() else []:
        clip_id = _temporary_of(path)
        if clip_id is not None and in_shard(clip_id.rpartition("_c")[0] or clip_id, shard):
            stale.append(path)
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _audio_is_whole(path: Path, *, n_samples: int, sample_rate: int) -> bool:
    """True if ``path`` decodes to ``n_samples`` frames of 4 channels at ``sample_rate``."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # libsndfile raises several types for broken files
        return False
    return rate == sample_rate and data.shape == (n_samples, 4)


def _video_is_whole(path: Path, *, n_frames: int, width: int) -> bool:
    """True if ``path`` holds ``n_frames`` whole frames of ``width`` × ``width/2``.

    Reads the packets without decoding them (a file cut short loses its index or its last packets; the
    clip's own encoder wrote each packet, so a whole packet decodes), decoding only until the first
    frame comes out (the decoder may hold a few packets back to reorder them)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count, decoded = 0, []
            for packet in container.demux(stream):
                if packet.size:
                    count += 1
                    if not decoded:
                        decoded = packet.decode()
    except Exception:  # a truncated or foreign file: FFmpeg errors, OSError, IndexError (no stream)
        return False
    return (count == n_frames and bool(decoded)
            and (stream.codec_context.width, stream.codec_context.height) == (width, width // 2))


def _groundtruth_is_whole(path: Path) -> bool:
    from avsa.media import groundtruth as groundtruth_module

    try:
        groundtruth_module.load(path)
    except Exception:  # whatever a truncated or foreign JSON file makes the parser raise
        return False
    return True


def _broken_files_of_row(cache: Path, row: dict[str, str], options: PrepareOptions) -> list[Path]:
    """The files of a manifest row that are missing or do not decode (empty: the clip is whole)."""
    if row.get("status") != STATUS_OK:
        return []
    duration_s = float(row["duration_s"])
    checks = (
        ("video", lambda p: _video_is_whole(p, n_frames=int(round(duration_s * options.fps)), width=options.width)),
        ("audio", lambda p: _audio_is_whole(p, n_samples=int(round(duration_s * options.sample_rate)),
                                            sample_rate=options.sample_rate)),
        ("groundtruth", _groundtruth_is_whole),
    )
    return [cache / row[key] for key, whole in checks if row.get(key) and not whole(cache / row[key])]


def _write_verified(path: Path, write, whole) -> None:
    """Write ``path`` through a temporary (``write(temporary)``), keep it only if ``whole(temporary)``."""
    temporary = _temporary(path)
    try:
        write(temporary)
        if not whole(temporary):
            raise MediaError(path, "the clip just written does not decode back (disk full or failing?)")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _part_path(cache: Path, name: str, *, failed: bool = False) -> Path:
    return cache / PARTS_DIR / (f"{name}.failed.csv" if failed else f"{name}.csv")


def broken_files(cache: Path, source: Source, options: PrepareOptions) -> list[Path] | None:
    """Files of a prepared source that are missing or do not decode; None if it has no manifest part."""
    part = _part_path(cache, source_key(source.name))
    if not part.is_file():
        return None
    try:
        rows = read_csv(part)
    except (OSError, ValueError, csv.Error):
        return [part]
    broken = []
    for row in rows:
        try:
            broken.extend(_broken_files_of_row(cache, row, options))
        except (KeyError, TypeError, ValueError):  # a part file that is not ours
            broken.append(part)
    return broken


def prepare_source(source: Source, src_root: Path, cache: Path, options: PrepareOptions) -> SourceResult:
    """Prepare one source into ``cache``, or verify (and repair) it if it was prepared.

    Never raises for a bad input file.
    """
    broken = broken_files(cache, source, options)
    if broken == []:
        return SourceResult(name=source.name, skipped=True)
    result = SourceResult(name=source.name, repaired=len(broken or []))
    for path in broken or []:
        path.unlink(missing_ok=True)
    try:
        result.records = _clips_of(source, src_root, cache, options)
        ok = [record for record in result.records if record.status == STATUS_OK]
        if not result.records:
            result.problem = "too short for one clip"
        elif not ok:
            loudest = max(record.loudness_db for record in result.records)
            result.problem = (
                f"silent: all {len(result.records)} clip(s) below {options.min_loudness_db:g} dBFS "
                f"(loudest {loudest:.1f} dBFS)"
            )
    except SOURCE_ERRORS as exc:
        problem = (exc.problem if isinstance(exc, MediaError) else str(exc)) or type(exc).__name__
        if isinstance(exc, MediaError) and exc.path not in (str(source.video), str(source.audio)):
            problem = f"{_relative(Path(exc.path), src_root)}: {problem}"  # e.g. the label file, not the video
        for path in (source.video, source.audio):  # the failures table names the file already
            problem = problem.replace(f": '{path}'", "").replace(str(path), path.name)
        result.problem = _text(problem)
        result.records = []
    _write_parts(cache, source, src_root, result)
    return result


def _write_parts(cache: Path, source: Source, src_root: Path, result: SourceResult) -> None:
    failed = _part_path(cache, source_key(source.name), failed=True)
    if result.problem is not None:
        write_csv_atomic(failed, FAILURE_COLUMNS, [{"file": _relative(source.video, src_root), "problem": result.problem}])
    elif failed.exists():
        failed.unlink()
    if result.records or result.problem is None:  # hard failures are retried on every run
        write_csv_atomic(_part_path(cache, source_key(source.name)), MANIFEST_COLUMNS,
                         [r.to_row() for r in result.records])


def _relative(path: Path, root: Path) -> str:
    """The file's name in the cache's CSV files: relative to ``root``, undecodable bytes as U+FFFD."""
    try:
        return _text(path.relative_to(root).as_posix())
    except ValueError:
        return _text(path.name)


def _clips_of(source: Source, src_root: Path, cache: Path, options: PrepareOptions) -> list[ClipRecord]:
    from avsa.media import io

    for path in {source.video, source.audio}:
        if path.stat().st_size == 0:
            raise MediaError(path, "empty file (0 bytes)")
    video_info = io.probe(source.video)
    audio_info = video_info if source.audio == source.video else io.probe(source.audio)
    if not video_info.has_video:
        raise MediaError(source.video, "no video stream")
    if not audio_info.has_audio:
        raise MediaError(source.audio, "no audio stream")
    projection = check_frame(video_info, equirect=options.equirect)
    durations = [d for d in (video_info.duration_s, audio_info.duration_s) if d]
    if not durations:
        raise MediaError(source.video, "unknown duration")
    _warn_short_video(source, video_info, audio_info, used_s=min(durations), options=options)
    groundtruth = None
    if source.groundtruth is not None and source.groundtruth.suffix.lower() == ".csv":
        from avsa.media import starss23

        groundtruth = starss23.load_groundtruth(source.groundtruth, duration_s=min(durations),
                                                width=video_info.width or 0, height=video_info.height or 0,
                                                sample_rate=audio_info.audio_rate or options.sample_rate)
    elif source.groundtruth is not None and options.ground_truth:
        from avsa.media import groundtruth as groundtruth_module

        groundtruth = groundtruth_module.load(source.groundtruth)
    layout = "raw" if options.channel_map else decide_layout(
        audio_info.audio_channels,
        audio_info.audio_codec,
        getattr(groundtruth, "audio_convention", None),
        options.layout,
    )
    pixel_format = "yuv420p" if (video_info.width or 0) * (video_info.height or 0) >= DIRECT_YUV_MIN_PIXELS else "rgb24"
    records = []
    for index, (start_s, duration_s) in enumerate(clip_starts(min(durations), options)):
        clip_id = check_clip_id(f"{source_key(source.name)}_c{index:03d}", where=_text(str(source.video)))
        records.append(
            _prepare_clip(
                source, src_root, cache, options,
                clip_id=clip_id, start_s=start_s, duration_s=duration_s,
                layout=layout, projection=projection, groundtruth=groundtruth, pixel_format=pixel_format,
            )
        )
    return records


def _warn_short_video(source: Source, video_info, audio_info, *, used_s: float, options: PrepareOptions) -> None:
    """Warn when the video stream ends before the audio (frames counted, not the container's duration)."""
    video_s = (video_info.n_frames / video_info.fps if video_info.n_frames and video_info.fps
               else video_info.duration_s)
    audio_s = audio_info.duration_s
    tolerance = max(2.0 / options.fps, 0.1)
    if not video_s or not audio_s or video_s >= audio_s - tolerance:
        return
    what = (f"clips stop at {used_s:.2f} s and the rest of the audio is left out" if used_s <= video_s + tolerance
            else f"frames after {video_s:.2f} s repeat its last frame")
    warnings.warn(f"{_text(str(source.video))}: the video lasts {video_s:.2f} s but its audio {audio_s:.2f} s; "
                  f"{what}", stacklevel=3)


def _prepare_clip(
    source: Source, src_root: Path, cache: Path, options: PrepareOptions, *,
    clip_id: str, start_s: float, duration_s: float, layout: str, projection: str, groundtruth,
    pixel_format: str = "rgb24",
) -> ClipRecord:
    from avsa.media import io

    n_samples = int(round(duration_s * options.sample_rate))
    n_frames = int(round(duration_s * options.fps))
    clips = cache / CLIPS_DIR
    video_path, audio_path = clips / f"{clip_id}.mp4", clips / f"{clip_id}.flac"

    def audio_whole(path: Path) -> bool:
        return _audio_is_whole(path, n_samples=n_samples, sample_rate=options.sample_rate)

    def video_whole(path: Path) -> bool:
        return _video_is_whole(path, n_frames=n_frames, width=options.width)

    # The video decodes (and converts) on a thread of its own from here on: its first frames while the
    # audio is read and checked below, the rest while the frames before them encode. A clip dropped
    # for its loudness stops it after the few frames decoded ahead.
    frames = None if video_whole(video_path) else io.read_ahead(io.stream_frames(
        source.video, start_s=start_s, duration_s=duration_s, fps=options.fps,
        size=(options.width, options.width // 2), projection=projection, pixel_format=pixel_format,
    ))
    try:
        foa = io.read_audio(
            source.audio, start_s=start_s, duration_s=duration_s,
            sample_rate=options.sample_rate, layout=layout,
        )
        if options.channel_map:
            from avsa.media.layouts import apply_channel_map

            foa = apply_channel_map(foa, options.channel_map, path=source.audio)
        foa = _fit(np.asarray(foa, dtype=np.float32), n_samples, axis=-1)
        level = loudness_db(foa)
        base = dict(
            clip_id=clip_id, source=_relative(source.video, src_root), split=source.split,
            start_s=float(start_s + source.start_s), duration_s=float(duration_s),
        )
        if level < options.min_loudness_db:
            return ClipRecord(
                **base, video="", audio="", groundtruth="", loudness_db=level, validity=float("nan"),
                convention="", status=f"dropped: loudness {level:.1f} dBFS < {options.min_loudness_db:g}",
            )
        diagnosis = diagnose(foa, options.sample_rate)
        rho, convention = float(diagnosis.ratio), diagnosis.convention
        clips.mkdir(parents=True, exist_ok=True)
        if not audio_whole(audio_path):
            _write_verified(audio_path, lambda temporary: soundfile.write(
                temporary, np.clip(foa, -1.0, 1.0).T, options.sample_rate, subtype="PCM_24", format="FLAC"),
                audio_whole)
        if frames is not None:
            _write_verified(video_path, lambda temporary: io.write_av(
                temporary, _fit_frames(frames, n_frames), options.fps, gop=options.gop, spherical=True,
                pixel_format=pixel_format),
                video_whole)
    finally:
        if frames is not None:
            frames.close()
    groundtruth_relative = ""
    if groundtruth is not None:
        groundtruth_path = clips / f"{clip_id}.json"
        if not _groundtruth_is_whole(groundtruth_path):
            _write_verified(groundtruth_path, groundtruth.slice(start_s, duration_s).save, _groundtruth_is_whole)
        groundtruth_relative = f"{CLIPS_DIR}/{clip_id}.json"
    return ClipRecord(
        **base, video=f"{CLIPS_DIR}/{clip_id}.mp4", audio=f"{CLIPS_DIR}/{clip_id}.flac",
        groundtruth=groundtruth_relative, loudness_db=level, validity=rho,
        convention=convention, status=STATUS_OK,
    )


def merge_parts(cache: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Merge every part file into ``manifest.csv`` and ``failures.csv`` (atomically).

    Returns the manifest rows and the failure rows, sorted.
    """
    rows: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []
    parts = cache / PARTS_DIR
    for part in sorted(parts.glob("*.csv")) if parts.is_dir() else []:
        (failures if part.name.endswith(".failed.csv") else rows).extend(read_csv(part))
    rows.sort(key=lambda row: row["clip_id"])
    failures.sort(key=lambda row: row["file"])
    write_csv_atomic(cache / MANIFEST_NAME, MANIFEST_COLUMNS, rows)
    write_csv_atomic(cache / FAILURES_NAME, FAILURE_COLUMNS, failures)
    return rows, failures


def prepare(
    src: str | os.PathLike, out: str | os.PathLike, *, options: PrepareOptions = PrepareOptions(),
    jobs: int = 1, shard: tuple[int, int] = (0, 1), split_files: list[Path] | None = None,
    progress: bool = True,
) -> tuple[list[SourceResult], list[dict[str, str]], list[dict[str, str]]]:
    """Prepare every source of ``src`` (in ``shard``) into the cache ``out``.

    Returns
    -------
    results : list of SourceResult
        One per source of the shard (``skipped`` when already prepared).
    manifest, failures : list of dict
        The merged ``manifest.csv`` and ``failures.csv`` rows.
    """
    options.validate()
    if jobs < 1:
        raise InputError(f"--jobs {jobs}: must be at least 1")
    src_root, cache = Path(src), Path(out)
    if cache.exists() and not cache.is_dir():
        raise InputError(f"--out {cache}: exists and is not a folder (a cache is a folder)")
    sources = [s for s in find_sources(src_root, split_files=split_files) if in_shard(source_key(s.name), shard)]
    root = src_root if src_root.is_dir() else src_root.parent
    sidecars = [s for s in sources if s.groundtruth is not None and s.groundtruth.suffix.lower() == ".json"]
    if sidecars and not options.ground_truth and progress:
        print(f"note: {len(sidecars)} video(s) have a <stem>.json beside them (e.g. {_relative(sidecars[0].groundtruth, root)}); "
              "not read as ground truth: pass --ground-truth if they are avsa ground-truth files")
    with writer_lock(cache, shard):
        check_options(cache, options)
        remove_temporaries(cache, shard)
        results: list[SourceResult] = []
        bar = tqdm(total=len(sources), desc="prepare", unit="source", disable=not progress)
        if jobs <= 1 or len(sources) <= 1:
            for source in sources:
                results.append(prepare_source(source, root, cache, options))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn_context(),
                                     initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(prepare_source, source, root, cache, options) for source in sources]
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update()
        bar.close()
        manifest, failures = merge_parts(cache)
    return sorted(results, key=lambda r: r.name), manifest, failures


def prepare_cache(
    src: str | os.PathLike, out: str | os.PathLike, *, options: PrepareOptions = PrepareOptions(),
    jobs: int = 1, shard: tuple[int, int] = (0, 1), split_files: list[Path] | None = None,
) -> list[dict[str, str]]:
    """``avsa prepare``: :func:`prepare` with a progress bar, then :func:`print_summary`.

    Returns
    -------
    list of dict
        The merged ``manifest.csv`` rows (the cache is usable when one has status ``ok``).
    """
    results, manifest, failures = prepare(src, out, options=options, jobs=jobs, shard=shard, split_files=split_files)
    print_summary(results, manifest, failures, Path(out))
    return manifest


def has_usable_clip(manifest: list[dict[str, str]]) -> bool:
    """True if a manifest (of :func:`prepare_cache`) holds a clip with status ``ok``."""
    return any(row["status"] == STATUS_OK for row in manifest)


def check_options(cache: Path, options: PrepareOptions) -> None:
    """Record ``options`` in a new cache; stop if the cache was prepared with others.

    Raises
    ------
    InputError
        If ``cache/prepare.json`` records other options (the message names each
        difference), or the cache holds clips but no record of its options.
    """
    wanted = options.record()
    recorded = read_prepare_options(cache)
    if recorded is None:
        parts = cache / PARTS_DIR
        if (cache / MANIFEST_NAME).is_file() or (parts.is_dir() and any(parts.iterdir())):
            raise InputError(
                f"{cache}: holds clips but no {cache / 'prepare.json'} (an older avsa prepared it), so its "
                "options cannot be checked; prepare into a new --out"
            )
        write_prepare_options(cache, wanted)
        return
    differences = [f"{OPTION_FLAGS.get(key, key)} {recorded.get(key)!r} (this run: {value!r})"
                   for key, value in wanted.items() if recorded.get(key) != value
                   and not (key in OPTIONS_RECORDED_LATER and key not in recorded)]
    if differences:
        raise InputError(
            f"{cache} was prepared with other options: {'; '.join(differences)}. "
            "Rerun with the cache's options, or prepare into another --out"
        )


def print_summary(results: list[SourceResult], manifest: list[dict[str, str]],
                  failures: list[dict[str, str]], cache: Path) -> None:
    """Print the run's counts and the table of bad inputs."""
    done = sum(1 for r in results if not r.skipped and r.problem is None)
    skipped = sum(1 for r in results if r.skipped)
    failed = sum(1 for r in results if r.problem is not None)
    repaired = sum(r.repaired for r in results)
    ok = sum(1 for row in manifest if row["status"] == STATUS_OK)
    print(f"sources: {done} prepared, {skipped} already done, {failed} failed")
    if repaired:
        print(f"repaired {repaired} missing or undecodable file(s)")
    print(f"cache {cache}: {ok} clip(s) ok, {len(manifest) - ok} dropped")
    if failures:
        width = max(len(row["file"]) for row in failures)
        print(f"\n{'file':<{width}}  problem")
        for row in failures:
            print(f"{row['file']:<{width}}  {row['problem']}")
        print(f"\n({len(failures)} bad input(s), listed in {cache / FAILURES_NAME})", file=sys.stderr)
