"""Finding the inputs of ``avsa prepare`` and ``avsa check``.

Two folder layouts are understood:

* **single files**: any ``*.mp4 / *.mov / *.mkv / *.webm`` under the folder
  (recursively) carries its own audio, or takes the audio file with the same
  stem beside it (``<stem>.flac / .wav / .m4a / .opus / .ogg``). A ground-truth
  ``<stem>.json`` beside the video (the synthetic world) is noted; ``avsa
  prepare`` reads it only with ``--ground-truth``.
* **YouTube-360** (the layout the original AVSA code downloads its data to):
  ``video/<ytid>-<start>.mp4`` + ``audio/<ytid>-<start>.m4a``; only pairs with
  both files are used. The YouTube id is the first 11 characters of the stem,
  the start second the integer after the last ``-``.
* **STARSS23** (:mod:`avsa.media.starss23`): ``video_dev/<split>/<name>.mp4``
  + ``foa_dev/<split>/<name>.wav``, labels ``metadata_dev/<split>/<name>.csv``
  as ground truth; ``dev-test-*`` splits go to ``test``, the others to ``train``.
* **Sphere360** (:mod:`avsa.media.sphere360`): split lists in
  ``dataset/split/``, clips ``<ytid>_<start>.<ext>`` anywhere below, audio
  in the same file or in an ``audio…`` folder.

Splits come from list files (``train.txt``, ``test.txt``, ... at the top of
the folder, or given explicitly): the split is the list's file stem and each
line names a source (its stem, its YouTube id, or its file name). Sources in
no list, or every source when there are no lists, get a deterministic hash
split: 80 % ``train`` / 20 % ``test`` by the SHA-1 of the source's group (the
YouTube id, so all clips of a video share a split; else the source name).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from avsa.errors import InputError
from avsa.media import sphere360, starss23

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".m4v")
AUDIO_EXTENSIONS = (".flac", ".wav", ".m4a", ".opus", ".ogg", ".mka")
SPLIT_LIST_NAMES = ("train.txt", "val.txt", "test.txt")
YOUTUBE_ID_LENGTH = 11
HASH_TRAIN_PERCENT = 80


@dataclass(frozen=True)
class Source:
    """One input video with its audio.

    Attributes
    ----------
    name : str
        Unique name of the source inside its folder (relative path without the
        extension, ``/`` replaced by ``__``); clip ids start with it.
        :func:`find_sources` refuses a folder where two files get one name
        (``a/b.mp4`` and ``a__b.mp4``, ``x.mp4`` and ``x.mkv``).
    video : Path
        The video file.
    audio : Path
        The file holding the FOA audio (``video`` itself when it is inside).
    groundtruth : Path or None
        ``<stem>.json`` beside the video (synthetic sources), a STARSS23 label
        file (``.csv``), else None.
    split : str
        ``train`` / ``test`` / ... (see the module docstring).
    group : str
        What the hash split and the split lists key on: the YouTube id in the
        YouTube-360 layout, else ``name``.
    start_s : float
        Start of this file in its original video, seconds (YouTube-360 names
        carry it; 0 otherwise).
    """

    name: str
    video: Path
    audio: Path
    groundtruth: Path | None
    split: str
    group: str
    start_s: float = 0.0


def youtube_id_and_start(stem: str) -> tuple[str, float]:
    """Split a YouTube-360 stem ``<ytid>-<start>`` into (ytid, start seconds).

    The id is the first 11 characters (ids may contain ``-``); the start is
    the integer after the last ``-``.

    Raises
    ------
    InputError
        If the stem is too short or does not end in ``-<integer>``.
    """
    head, sep, tail = stem.rpartition("-")
    if len(stem) < YOUTUBE_ID_LENGTH + 2 or not sep or not tail.isdigit():
        raise InputError(f"{stem!r} is not a YouTube-360 clip name '<11-char id>-<start second>'")
    return stem[:YOUTUBE_ID_LENGTH], float(int(tail))


def hash_split(group: str, *, train_percent: int = HASH_TRAIN_PERCENT) -> str:
    """Deterministic ``train``/``test`` split of ``group`` by its SHA-1."""
    bucket = int(hashlib.sha1(group.encode("utf-8", "surrogateescape")).hexdigest(), 16) % 100  # file-name bytes
    return "train" if bucket < train_percent else "test"


def in_shard(name: str, shard: tuple[int, int]) -> bool:
    """True if source ``name`` belongs to shard ``(i, n)`` (0 ≤ i < n).

    The partition is by the SHA-1 of the name, so it does not change when
    other sources are added or removed.
    """
    index, count = shard
    return int(hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest(), 16) % count == index


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/N"`` (0 ≤ i < N) into ``(i, N)``."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise InputError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4")
    return int(index), int(count)


def read_split_lists(paths: list[Path]) -> dict[str, str]:
    """Read split list files into ``{entry: split}``.

    Each file's stem is the split name (``train.txt`` → ``train``); each
    non-empty line's first token is an entry (a source stem, YouTube id or
    file name). ``segments.txt``-style extra columns are ignored.
    """
    lookup: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"split list {path} does not exist")
        split = path.stem
        for line in path.read_text(encoding="utf-8").splitlines():
            tokens = line.strip().split()
            if tokens:
                entry = Path(tokens[0]).stem if "." in tokens[0] else tokens[0]
                lookup.setdefault(entry, split)
    return lookup


def _split_of(lookup: dict[str, str], *keys: str) -> str | None:
    for key in keys:
        if key in lookup:
            return lookup[key]
    return None


def _is_youtube360(root: Path) -> bool:
    return (root / "video").is_dir() and (root / "audio").is_dir()


def find_sources(root: str | os.PathLike, *, split_files: list[Path] | None = None) -> list[Source]:
    """All sources under ``root`` (a folder or one video file), sorted by name.

    Parameters
    ----------
    root : path
        A folder (single-file or YouTube-360 layout) or one media file.
    split_files : list of Path, optional
        Split lists to use instead of the ``train.txt``/``test.txt`` found in
        ``root``.

    Raises
    ------
    InputError
        If ``root`` does not exist or holds no media file.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist")
    if root.is_file():
        return [_single_source(root, root.parent, {})]
    if split_files is None and sphere360.is_layout(root):
        split_files = sorted(sphere360.split_dir(root).glob("*.txt"))
    if split_files is None:
        split_files = [root / name for name in SPLIT_LIST_NAMES if (root / name).is_file()]
    lookup = read_split_lists(list(split_files))
    if _is_youtube360(root):
        sources = _youtube360_sources(root, lookup)
    elif starss23.is_layout(root):
        sources = starss23_sources(root, lookup)
    elif sphere360.is_layout(root):
        sources = sphere360_sources(root, lookup)
    else:
        sources = [
            _single_source(path, root, lookup)
            for path in sorted(root.rglob("*"))
            if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()
        ]
    if not sources:
        raise InputError(
            f"{root} holds no video file ({', '.join(VIDEO_EXTENSIONS)}) "
            "and no YouTube-360 pairs video/<id>.mp4 + audio/<id>.m4a"
        )
    _check_unique_names(sources, root)
    return sorted(sources, key=lambda source: source.name)


def _check_unique_names(sources: list[Source], root: Path) -> None:
    """Raise if two sources get one name (their clips would overwrite each other's)."""
    by_name: dict[str, list[Source]] = {}
    for source in sources:
        by_name.setdefault(source.name, []).append(source)
    clashes = [group for group in by_name.values() if len(group) > 1]
    if clashes:
        described = "; ".join(
            " and ".join(source.video.relative_to(root).as_posix() for source in group)
            + f" are both source {group[0].name!r}" for group in clashes
        )
        raise InputError(
            f"{root}: {described}. Clip ids start with the source name, so one would overwrite the other: "
            "rename or remove one of each"
        )


def _single_source(video: Path, root: Path, lookup: dict[str, str]) -> Source:
    relative = video.relative_to(root).with_suffix("")
    name = "__".join(relative.parts)
    audio = video
    for extension in AUDIO_EXTENSIONS:
        sibling = video.with_suffix(extension)
        if sibling.is_file():
            audio = sibling
            break
    groundtruth = video.with_suffix(".json")
    split = _split_of(lookup, video.stem, name, video.name) or hash_split(name)
    return Source(
        name=name,
        video=video,
        audio=audio,
        groundtruth=groundtruth if groundtruth.is_file() else None,
        split=split,
        group=name,
    )


def _youtube360_sources(root: Path, lookup: dict[str, str]) -> list[Source]:
    audio_files: dict[str, Path] = {}
    for path in sorted((root / "audio").iterdir()):
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if path.stem in audio_files:
            raise InputError(
                f"{root}: audio/{audio_files[path.stem].name} and audio/{path.name} are both the audio of "
                f"video/{path.stem}; remove one of them"
            )
        audio_files[path.stem] = path
    sources = []
    for video in sorted((root / "video").iterdir()):
        if video.suffix.lower() not in VIDEO_EXTENSIONS or video.stem not in audio_files:
            continue
        try:
            ytid, start_s = youtube_id_and_start(video.stem)
        except InputError:
            ytid, start_s = video.stem, 0.0
        split = _split_of(lookup, ytid, video.stem) or hash_split(ytid)
        groundtruth = video.with_suffix(".json")
        sources.append(
            Source(
                name=video.stem,
                video=video,
                audio=audio_files[video.stem],
                groundtruth=groundtruth if groundtruth.is_file() else None,
                split=split,
                group=ytid,
                start_s=start_s,
            )
        )
    return sources


def _sphere360_is_audio(path: Path, root: Path) -> bool:
    folders = [part.lower() for part in path.relative_to(root).parts[:-1]]
    return path.suffix.lower() not in VIDEO_EXTENSIONS or any(f.startswith("audio") for f in folders)


def sphere360_sources(root: Path, lookup: dict[str, str]) -> list[Source]:
    """The clips of a Sphere360 folder (see :mod:`avsa.media.sphere360`), each video paired with its audio.

    ``lookup`` maps clip ids (or YouTube ids) to splits (:func:`read_split_lists`).

    Raises
    ------
    InputError
        If one clip id has two video files, or two audio files (naming both).
    """
    videos: dict[str, Path] = {}
    audios: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS or not path.is_file():
            continue
        if sphere360.CLIP_ID.match(path.stem) is None:
            continue
        found = audios if _sphere360_is_audio(path, root) else videos
        if path.stem in found:
            raise InputError(f"{root}: {found[path.stem].relative_to(root)} and {path.relative_to(root)} are both "
                             f"the {'audio' if found is audios else 'video'} of clip {path.stem}; remove one of them")
        found[path.stem] = path
    sphere360.warn_missing(root, lookup, set(videos))
    sources = []
    for stem, video in videos.items():
        ytid, start = sphere360.CLIP_ID.match(stem).group("ytid", "start")
        sources.append(Source(name=stem, video=video, audio=audios.get(stem, video), groundtruth=None,
                              split=lookup.get(stem) or lookup.get(ytid) or hash_split(ytid), group=ytid,
                              start_s=float(int(start))))
    return sources


def starss23_sources(root: Path, lookup: dict[str, str]) -> list[Source]:
    """The sources of a STARSS23 folder: every ``video_dev/<split>/<name>.mp4`` with its ``foa_dev`` audio.

    ``lookup`` (split lists, :func:`read_split_lists`) overrides the split of a name;
    else ``dev-test-*`` folders give ``test`` and the others ``train``. The label file, when present, is the
    source's ground truth.
    """
    sources = []
    for folder in sorted(p for p in (root / starss23.VIDEO_DIR).iterdir() if p.is_dir()):
        for video in sorted(folder.iterdir()):
            if video.suffix.lower() not in VIDEO_EXTENSIONS or not video.is_file():
                continue
            audio = next((root / starss23.AUDIO_DIR / folder.name / (video.stem + ext) for ext in AUDIO_EXTENSIONS
                          if (root / starss23.AUDIO_DIR / folder.name / (video.stem + ext)).is_file()), None)
            if audio is None:
                warnings.warn(f"{video}: no {starss23.AUDIO_DIR}/{folder.name}/{video.stem}.wav; recording left out",
                              stacklevel=2)
                continue
            labels = root / starss23.METADATA_DIR / folder.name / f"{video.stem}.csv"
            sources.append(Source(
                name=video.stem, video=video, audio=audio, groundtruth=labels if labels.is_file() else None,
                split=lookup.get(video.stem) or lookup.get(video.name) or starss23.split_of(folder.name), group=video.stem,
            ))
    used = {source.groundtruth for source in sources}
    for labels in sorted((root / starss23.METADATA_DIR).glob("*/*.csv")):
        if labels not in used and not (root / starss23.VIDEO_DIR / labels.parent.name / f"{labels.stem}.mp4").is_file():
            warnings.warn(f"{labels}: no recording {starss23.VIDEO_DIR}/{labels.parent.name}/{labels.stem}.mp4 with "
                          f"its {starss23.AUDIO_DIR} audio; label file left out", stacklevel=2)
    return sources
