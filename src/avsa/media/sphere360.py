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
in none gets the hash split of its YouTube id). Clips a list names but the
folder lacks (failed downloads) are counted in one warning
(:func:`warn_missing`), so a partial copy is never taken for the whole set.

Channel order (unverified): YouTube's 4-channel streams, which the tools
download, are ambiX W, Y, Z, X, and ``--layout auto`` reads them so. The
dataset's paper writes FOA as W, X, Y, Z; if a copy was re-ordered that way,
``avsa check --av`` (after ``avsa detect``) names "fuma order read as
ambix", and ``avsa prepare --channel-map 0,2,3,1`` reads it.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path


SPLIT_DIRS = ("dataset/split", "split")
CLIP_ID = re.compile(r"^(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+)$")
"""A clip id: an 11-character YouTube id, ``_``, the start second."""


def split_dir(root: Path) -> Path | None:
    """The folder holding the split lists, if ``root`` is a Sphere360 folder."""
    return next((root / d for d in SPLIT_DIRS if (root / d).is_dir() and any((root / d).glob("*.txt"))), None)


def warn_missing(root: Path, listed: dict[str, str], found: set[str]) -> int:
    """Warn once about the clip ids of the split lists (``listed``: id → split) that ``found`` lacks.

    Entries that are not clip ids (YouTube ids alone) are not counted. Returns how many are missing.
    """
    missing = sorted(entry for entry in listed if CLIP_ID.match(entry) and entry not in found)
    if missing:
        by_split: dict[str, int] = {}
        for entry in missing:
            by_split[listed[entry]] = by_split.get(listed[entry], 0) + 1
        counts = ", ".join(f"{n} of {split}" for split, n in sorted(by_split.items()))
        warnings.warn(f"{root}: {len(missing)} clip(s) named in the split lists have no video file ({counts}; "
                      f"e.g. {', '.join(missing[:3])}); they are left out", stacklevel=3)
    return len(missing)


def is_layout(root: Path) -> bool:
    """True if ``root`` holds Sphere360's split lists (``dataset/split/*.txt`` or ``split/*.txt``)."""
    return split_dir(root) is not None
