"""What every downstream-dataset loader shares: the item, the task, and the
tolerant readers of the official list files.

Loaders only *index* a dataset (which file, which window, which label, which
group); decoding the media into model inputs (:func:`read_item_audio`,
:func:`read_item_frames`) is kept apart so that indexing never needs a decoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.errors import InputError, MediaError


@dataclass(frozen=True)
class Item:
    """One labelled example of a downstream dataset.

    Attributes
    ----------
    id : str
        Unique name of the example inside its dataset (file stem, plus the
        segment number for EigenScape).
    label : int
        Class index into the task's ``classes`` (0-based).
    label_name : str
        The class name as the dataset spells it.
    group : str
        Items that share it are not independent (same recording site, same
        source video): confidence intervals resample groups, and a fold never
        puts one group on both sides.
    audio : str or None
        Audio file (absolute path), or None for a video-only item.
    video : str or None
        Video file (absolute path), or None for an audio-only item.
    start_s : float
        Start of the example in its file(s), seconds.
    duration_s : float or None
        Length of the example in seconds; None = to the end of the file.
    """

    id: str
    label: int
    label_name: str
    group: str
    audio: str | None = None
    video: str | None = None
    start_s: float = 0.0
    duration_s: float | None = None


@dataclass(frozen=True)
class Task:
    """A train/test split of one downstream dataset.

    Attributes
    ----------
    name : str
        E.g. ``"ucf101/split1"``.
    classes : tuple of str
        Class names; ``Item.label`` indexes this.
    train, test : tuple of Item
    protocol : str
        One line saying which official split/fold this is (goes into reports).
    """

    name: str
    classes: tuple[str, ...]
    train: tuple[Item, ...]
    test: tuple[Item, ...]
    protocol: str


def read_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """Non-empty lines of a text list file, tolerant of CRLF, BOM and padding.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of (int, str)
        (1-based line number, line stripped of surrounding white space).

    Raises
    ------
    MediaError
        If the file does not exist or is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "list file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise MediaError(path, f"not a UTF-8 text file ({err.reason})") from err
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_table(path: str | os.PathLike, *, required: tuple[str, ...], sep: str = "\t") -> list[dict[str, str]]:
    """Rows of a delimited table with a header row (e.g. TAU's meta files).

    Parameters
    ----------
    path : path-like
    required : tuple of str
        Column names that must appear in the header.
    sep : str
        Field separator (tab for the DCASE meta files).

    Returns
    -------
    list of dict
        One dict per data row, keyed by header name, values stripped, plus
        ``"_line"`` (the 1-based line number, as a string) for error messages.

    Raises
    ------
    MediaError
        If the file is missing, has no header, lacks a required column or a row
        has fewer fields than the header.
    """
    lines = read_lines(path)
    if not lines:
        raise MediaError(path, "empty table (expected a header row)")
    header = [h.strip() for h in lines[0][1].split(sep)]
    missing = [c for c in required if c not in header]
    if missing:
        raise MediaError(path, f"header {header} lacks column(s) {missing} (fields separated by {sep!r})")
    rows = []
    for number, line in lines[1:]:
        fields = [f.strip() for f in line.split(sep)]
        if len(fields) < len(header):
            raise MediaError(path, f"line {number}: {len(fields)} field(s), expected {len(header)}: {line!r}")
        row = dict(zip(header, fields))
        row["_line"] = str(number)
        rows.append(row)
    return rows


class CaseInsensitiveTree:
    """Finds ``<dir>/<file>`` under a root, matching both names case-insensitively.

    Parameters
    ----------
    root : path-like
        Folder whose sub-folders hold the files (one level deep).

    Notes
    -----
    UCF101 lists ``HandstandPushups/v_HandStandPushups_…``; file systems are
    case-sensitive, the lists are not.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MediaError(self.root, "video folder not found")
        self._dirs = {p.name.lower(): p for p in self.root.iterdir() if p.is_dir()}
        self._files: dict[str, dict[str, Path]] = {}

    def find(self, relative: str, *, source: str) -> Path:
        """Resolve ``"<dir>/<file>"``.

        Parameters
        ----------
        relative : str
            Path as written in a list file (``/`` or ``\\`` separated).
        source : str
            Where the name came from (``"trainlist01.txt line 3"``), for errors.

        Raises
        ------
        MediaError
            If the folder or the file does not exist (in any letter case).
        """
        parts = relative.replace("\\", "/").strip("/").split("/")
        if len(parts) != 2:
            raise MediaError(self.root / relative, f"expected '<class>/<file>' ({source})")
        folder = self._dirs.get(parts[0].lower())
        if folder is None:
            raise MediaError(self.root / parts[0], f"class folder not found ({source})")
        files = self._files.get(folder.name)
        if files is None:
            files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
            self._files[folder.name] = files
        found = files.get(parts[1].lower())
        if found is None:
            raise MediaError(folder / parts[1], f"video not found ({source})")
        return found


DERIVED_DIR_ENV = "AVSA_DERIVED_DIR"
"""Environment variable naming the folder for files avsa derives from datasets."""


def derived_path(root: str | os.PathLike, name: str) -> Path:
    """Where avsa keeps a file ``name`` derived from the dataset at ``root`` — never inside it.

    Datasets are often read-only shared copies, so derived files (a fold
    assignment, ...) go to ``$AVSA_DERIVED_DIR`` (default
    ``$XDG_CACHE_HOME/avsa``, else ``~/.cache/avsa``), in a folder named after
    the dataset folder and a hash of its absolute path. The folder is not
    created here.
    """
    import hashlib

    root = Path(root).resolve()
    base = os.environ.get(DERIVED_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avsa"
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:12]
    return Path(base) / "datasets" / f"{root.name}-{digest}" / name


def check_split_number(value: int, *, name: str, count: int) -> int:
    """Validate a 1-based split/fold number; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= count:
        raise InputError(f"{name} must be an integer in 1..{count}, got {value!r}")
    return value


# --------------------------------------------------------------------------- decoding (thin)


def read_item_audio(item: Item, *, sample_rate: int | None = None, channels: int | None = None) -> np.ndarray:
    """The audio window of ``item``, channels raw (EigenScape FOA = first 4).

    Parameters
    ----------
    item : Item
        With ``audio`` set.
    sample_rate : int, optional
        Output rate in Hz (``None`` keeps the file's).
    channels : int, optional
        Keep the first ``channels`` channels (4 for EigenScape's W, Y, Z, X).

    Returns
    -------
    np.ndarray, float32, shape (C, N)

    Raises
    ------
    MediaError
        No audio file, unreadable file, or fewer than ``channels`` channels.
    """
    from avsa.media import io  # decoding only: indexing never imports the decoder

    if item.audio is None:
        raise MediaError(item.id, "item has no audio file")
    audio = io.read_audio(item.audio, start_s=item.start_s, duration_s=item.duration_s,
                          sample_rate=sample_rate, layout="raw")
    if channels is not None:
        if audio.shape[0] < channels:
            raise MediaError(item.audio, f"{audio.shape[0]} channel(s), need {channels}")
        audio = audio[:channels]
    return audio


def read_item_frames(item: Item, *, fps: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """The frames of ``item``'s video window as stored (no 360° re-projection).

    Parameters
    ----------
    item : Item
        With ``video`` set.
    fps : float, optional
        Output frame rate (``None`` keeps the file's).
    size : (int, int), optional
        Output (width, height) in pixels.

    Returns
    -------
    np.ndarray, uint8, shape (T, H, W, 3)
    """
    from avsa.media import io  # decoding only: indexing never imports the decoder

    if item.video is None:
        raise MediaError(item.id, "item has no video file")
    return io.read_frames(item.video, start_s=item.start_s, duration_s=item.duration_s, fps=fps, size=size,
                          projection="equirectangular")


def clip_starts(total: int, length: int, n_clips: int) -> np.ndarray:
    """Start indices of ``n_clips`` evenly spaced windows of ``length`` in ``total``.

    Parameters
    ----------
    total : int
        Samples or frames available.
    length : int
        Window length, ≤ total.
    n_clips : int
        ≥ 1; with 1 the window is centred.

    Returns
    -------
    np.ndarray, int, shape (n_clips,)
    """
    if length > total or length < 1 or n_clips < 1:
        raise InputError(f"cannot cut {n_clips} window(s) of {length} from {total}")
    if n_clips == 1:
        return np.array([(total - length) // 2])
    return np.round(np.linspace(0, total - length, n_clips)).astype(int)
