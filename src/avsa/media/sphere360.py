"""Sphere360 (the OmniAudio dataset): 10-s YouTube 360° clips with 4-channel FOA.

What is released is the split lists and the download tools, not the media::

    ROOT/dataset/split/train.txt     one clip id <ytid>_<start second> per line (~100.5k)
    ROOT/dataset/split/test.txt      (~3k)

and the tools write each clip as ``<ytid>_<start>.webm`` (VP9 equirect video
with the 4-channel Opus track merged in), or, for audio-only downloads, a
separate 4-channel ``<ytid>_<start>.webm`` in another folder. So a Sphere360
folder is recognised by ``dataset/split/`` (or ``split/``) and its media are
every video/audio file below ROOT whose stem is a clip id; where one clip id
has two files, the one in a folder named ``audio…`` (or with an audio-only
extension) is its audio. The YouTube id is the first 11 characters, the start
second the integer after the last ``_``; splits come from the lists (a clip
in none gets the hash split of its YouTube id).

Channel order (unverified): YouTube's 4-channel streams, which the tools
download, are ambiX W, Y, Z, X, and ``--layout auto`` reads them so. The
dataset's paper writes FOA as W, X, Y, Z; if a copy was re-ordered that way,
``avsa check --av`` (after ``avsa detect``) names "fuma order read as
ambix", and ``avsa prepare --channel-map 0,2,3,1`` reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from avsa.errors import InputError

SPLIT_DIRS = ("dataset/split", "split")
CLIP_ID = re.compile(r"^(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+)$")
"""A clip id: an 11-character YouTube id, ``_``, the start second."""


def split_dir(root: Path) -> Path | None:
    """The folder holding the split lists, if ``root`` is a Sphere360 folder."""
    return next((root / d for d in SPLIT_DIRS if (root / d).is_dir() and any((root / d).glob("*.txt"))), None)


def is_layout(root: Path) -> bool:
    """True if ``root`` holds Sphere360's split lists (``dataset/split/*.txt`` or ``split/*.txt``)."""
    return split_dir(root) is not None


def _is_audio(path: Path, root: Path) -> bool:
    from avsa.media.sources import VIDEO_EXTENSIONS

    folders = [part.lower() for part in path.relative_to(root).parts[:-1]]
    return path.suffix.lower() not in VIDEO_EXTENSIONS or any(f.startswith("audio") for f in folders)


def find_sources(root: Path, lookup: dict[str, str]):
    """The clips of a Sphere360 folder (see the module docstring), each video paired with its audio.

    ``lookup`` maps clip ids (or YouTube ids) to splits (:func:`avsa.media.sources.read_split_lists`).

    Raises
    ------
    InputError
        If one clip id has two video files, or two audio files (naming both).
    """
    from avsa.media.sources import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, Source, hash_split

    videos: dict[str, Path] = {}
    audios: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS or not path.is_file():
            continue
        if CLIP_ID.match(path.stem) is None:
            continue
        found = audios if _is_audio(path, root) else videos
        if path.stem in found:
            raise InputError(f"{root}: {found[path.stem].relative_to(root)} and {path.relative_to(root)} are both "
                             f"the {'audio' if found is audios else 'video'} of clip {path.stem}; remove one of them")
        found[path.stem] = path
    sources = []
    for stem, video in videos.items():
        ytid, start = CLIP_ID.match(stem).group("ytid", "start")
        sources.append(Source(name=stem, video=video, audio=audios.get(stem, video), groundtruth=None,
                              split=lookup.get(stem) or lookup.get(ytid) or hash_split(ytid), group=ytid,
                              start_s=float(int(start))))
    return sources
