"""Writing user-named outputs without harming what is already there.

Every command that writes a file or folder the user named (``avsa calibrate
write OUT``, ``avsa check --csv/--out``, ``avsa synth --out``, ``avsa report
--out``, the media writers of :mod:`avsa.media.io`) goes through this module:

* an existing output is refused unless the caller allows overwriting
  (``--overwrite`` on the command line);
* a folder where a file is expected, or a file where a folder is expected, is
  a clear :class:`~avsa.errors.InputError` naming the path;
* a file is written under a temporary name **in the target folder** (same
  file system, so the final ``os.replace`` is atomic) and renamed only when
  the write succeeded; on failure only that temporary is removed, never a file
  that was there before.

Temporary names keep the suffix (muxers pick the container from it) and are
bounded so that a long target name never pushes them past the 255-byte limit
of common file systems.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from avsa.errors import InputError

__all__ = ["NAME_MAX_BYTES", "check_output", "check_output_folder", "safe_output", "shorten", "temporary_name"]

#: Longest file name (bytes) common file systems accept.
NAME_MAX_BYTES = 255
#: Longest temporary name we make: leaves room for helpers that add their own
#: suffix to a temporary (the spherical-metadata rewrite adds ``.spherical.tmp``).
_TEMPORARY_MAX_BYTES = 200


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written as a file; return it as a Path.

    Parameters
    ----------
    path : path-like
        The file to write.
    overwrite : bool, keyword-only
        Allow replacing an existing file.

    Raises
    ------
    InputError
        ``path`` is a folder, or exists and ``overwrite`` is false.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder; give the name of the file to write (e.g. {p / 'out'}{p.suffix or ''})")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise InputError(f"{p} already exists; pass --overwrite to replace it, or choose another name")
    if p.parent.exists() and not p.parent.is_dir():
        raise InputError(f"{p.parent} is a file, not a folder; cannot write {p} into it")
    return p


def check_output_folder(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be used as an output folder; return it as a Path.

    A missing or empty folder is fine; a folder that already holds something
    needs ``overwrite`` (files of the same name are then replaced, others kept).

    Raises
    ------
    InputError
        ``path`` is a file, or a non-empty folder and ``overwrite`` is false.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p} is a file, not a folder; give a folder to write into")
    if p.is_dir() and not overwrite and any(p.iterdir()):
        raise InputError(f"{p} already exists and is not empty; pass --overwrite to write into it "
                         "(files of the same name are replaced), or choose another folder")
    return p


def temporary_name(path: str | os.PathLike) -> Path:
    """A hidden name beside ``path``, unique to this call, with the same suffix, at most 200 bytes.

    The stem is shortened (on a character boundary) when the full name would be
    longer; a random token keeps it unique.
    """
    p = Path(path)
    suffix = p.suffix if len(os.fsencode(p.suffix)) <= 16 else ""
    tail = f".{os.getpid()}-{secrets.token_hex(4)}.partial{suffix}"
    stem = shorten(p.stem, _TEMPORARY_MAX_BYTES - 1 - len(os.fsencode(tail)))
    return p.with_name(f".{stem}{tail}")


def shorten(name: str, max_bytes: int) -> str:
    """The longest prefix of ``name`` (whole characters) whose file-system encoding fits ``max_bytes``."""
    while len(os.fsencode(name)) > max_bytes:
        name = name[: max(0, min(len(name) - 1, max_bytes))]
    return name


@contextmanager
def safe_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write ``path`` through a temporary in its folder; rename it into place on success.

    ::

        with safe_output(out, overwrite=args.overwrite) as temporary:
            write_something(temporary)

    Parameters
    ----------
    path : path-like
        The file to write (its folder is created if needed).
    overwrite : bool, keyword-only
        Allow replacing an existing file (atomically: readers see the old or
        the new file, never a half-written one).

    Yields
    ------
    Path
        The temporary to write (same folder and suffix as ``path``).

    Raises
    ------
    InputError
        As :func:`check_output`, before anything is written.
    """
    p = check_output(path, overwrite=overwrite)
    p.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(p)
    try:
        yield temporary
        if not overwrite and (p.exists() or p.is_symlink()):
            raise InputError(f"{p} appeared while it was being written; kept it, nothing replaced")
        os.replace(temporary, p)
    finally:
        temporary.unlink(missing_ok=True)
