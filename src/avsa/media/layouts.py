"""Named audio channel presets: raw decoded channels → ambiX/SN3D.

A decoder hands over channels in the stream's own order; these presets say
what those channels are (conventions.md §3) and map them explicitly. The
math lives in :func:`avsa.spatial.ambisonics.to_ambix`; this module adds the
channel-count checks and the error messages naming the file.

=====================  ========  ==========================================
preset                 channels  raw channels
=====================  ========  ==========================================
``ambix``              4         W, Y, Z, X (SN3D)
``fuma``               4         W/√2, X, Y, Z
``n3d``                4         W, Y, Z, X (N3D dipoles)
``youtube-aac``        6         X, Y, W, 0, Z, 0 (YouTube's 5.1 AAC)
``ambix+headlocked``   6         W, Y, Z, X, L, R (L, R dropped)
``raw``                any       returned unchanged
=====================  ========  ==========================================
"""

from __future__ import annotations

import os

import numpy as np

from avsa.errors import InputError, MediaError

__all__ = ["LAYOUTS", "check_name", "check_channels", "apply"]

#: Preset name → raw channel count (``None``: any).
LAYOUTS: dict[str, int | None] = {
    "ambix": 4,
    "fuma": 4,
    "n3d": 4,
    "youtube-aac": 6,
    "ambix+headlocked": 6,
    "raw": None,
}


def check_name(layout: str) -> str:
    """Return ``layout`` if it names a preset, else raise :class:`InputError`."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown audio layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    return layout


def _suggest(channels: int) -> str:
    names = [name for name, count in LAYOUTS.items() if count == channels]
    return " or ".join(names) if names else "raw"


def check_channels(path: str | os.PathLike | None, channels: int, layout: str) -> None:
    """Raise if a stream with ``channels`` channels cannot be read as ``layout``.

    Raises
    ------
    MediaError
        Naming ``path`` (or :class:`InputError` when ``path`` is None), the
        channel count, what the layout needs and which layout would fit.
    """
    needed = LAYOUTS[check_name(layout)]
    if needed is None or channels == needed:
        return
    problem = (
        f"has {channels} audio channel{'s' if channels != 1 else ''}; layout {layout!r} needs {needed}"
        f" (use --layout {_suggest(channels)})"
    )
    if path is None:
        raise InputError(problem)
    raise MediaError(path, problem)


def apply(raw: np.ndarray, layout: str, *, path: str | os.PathLike | None = None) -> np.ndarray:
    """Map raw decoded channels to ambiX/SN3D by a named preset.

    Parameters
    ----------
    raw : np.ndarray, shape (C, N)
        Channels in the stream's order.
    layout : str
        One of :data:`LAYOUTS`.
    path : str or os.PathLike, optional, keyword-only
        The file the channels came from, named in errors.

    Returns
    -------
    np.ndarray, float32, shape (4, N)
        W, Y, Z, X with SN3D (shape (C, N) unchanged for ``raw``).
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2:
        raise InputError(f"raw audio must be (C, N), got shape {raw.shape}")
    check_channels(path, raw.shape[0], layout)
    if layout == "raw":
        return raw
    from avsa.spatial.ambisonics import to_ambix

    return np.ascontiguousarray(to_ambix(raw, layout).numpy(), dtype=np.float32)
