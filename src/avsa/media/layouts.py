"""Named audio channel presets: raw decoded channels → ambiX/SN3D.

A decoder hands over channels in the stream's own order; these presets say
what those channels are (docs/conventions.md §3) and map them explicitly. The
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
from avsa.spatial.ambisonics import CONVENTIONS, to_ambix

__all__ = ["FOA_LAYOUTS", "LAYOUTS", "check_name", "check_channels", "apply", "decide_layout"]

FOA_LAYOUTS: tuple[str, ...] = tuple(CONVENTIONS)
"""The presets that map to ambiX (the conventions of :func:`~avsa.spatial.ambisonics.to_ambix`)."""
#: Preset name → raw channel count (``None``: any).
LAYOUTS: dict[str, int | None] = {**CONVENTIONS, "raw": None}


def check_name(layout: str) -> str:
    """Return ``layout`` if it names a preset, else raise :class:`InputError`."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown audio layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    return layout


def _suggest(channels: int) -> str:
    names = [name for name, count in LAYOUTS.items() if count == channels]
    return " or ".join(names) if names else "raw"


def decide_layout(channels: int, codec: str | None, convention: str | None, requested: str) -> str:
    """The audio layout of a source (rule in :mod:`avsa.media.prepare`'s docstring).

    Parameters
    ----------
    channels : int
        Number of audio channels in the file.
    codec : str or None
        Audio codec name (``"aac"``, ``"opus"``, ...).
    convention : str or None
        ``audio_convention`` of the source's ground truth, if any.
    requested : str
        ``"auto"`` or one of :data:`FOA_LAYOUTS`.

    Raises
    ------
    InputError
        If the channel count cannot be FOA.
    """
    if channels not in (4, 6):
        raise InputError(
            f"{channels} audio channel(s); FOA needs 4 (ambiX/FuMa/N3D) or 6 "
            "(YouTube AAC, ambiX + head-locked stereo)"
        )
    if requested != "auto":
        return requested
    if convention in FOA_LAYOUTS:
        return convention
    if channels == 4:
        return "ambix"
    return "youtube-aac" if (codec or "").lower().startswith("aac") else "ambix+headlocked"


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
    return np.ascontiguousarray(to_ambix(raw, layout).numpy(), dtype=np.float32)


# --------------------------------------------------------------------------- explicit channel maps

CHANNEL_MAP_HELP = (
    "four comma-separated entries, one per ambiX output channel W, Y, Z, X: [-]RAW[*GAIN], the raw channel "
    "index (0-based), '-' to flip its sign, an optional gain; e.g. 0*1.414214,2,3,1 for FuMa, 2,1,4,0 for "
    "YouTube's 6-channel AAC, 0,-1,2,3 for ambiX with Y flipped"
)
"""How a channel map is written (``avsa prepare --channel-map``, printed by ``avsa calibrate read``)."""


def parse_channel_map(text: str) -> tuple[tuple[int, float], ...]:
    """Parse a channel map (:data:`CHANNEL_MAP_HELP`) into ``((raw index, signed gain), ...)`` for W, Y, Z, X.

    Raises
    ------
    InputError
        Naming the map and its first bad entry.
    """
    entries = [e.strip() for e in str(text).split(",")]
    if len(entries) != 4:
        raise InputError(f"--channel-map {text!r}: {len(entries)} entries; expected {CHANNEL_MAP_HELP}")
    out = []
    for entry in entries:
        body, _, gain_text = entry.partition("*")
        sign = -1.0 if body.startswith("-") else 1.0
        index_text = body.lstrip("+-")
        try:
            gain = float(gain_text) if gain_text else 1.0
        except ValueError:
            gain = float("nan")
        if not index_text.isdigit() or not np.isfinite(gain) or gain == 0:
            raise InputError(f"--channel-map {text!r}: bad entry {entry!r}; expected {CHANNEL_MAP_HELP}")
        out.append((int(index_text), sign * gain))
    return tuple(out)


def format_channel_map(mapping) -> str:
    """The text form of ``((raw index, signed gain), ...)`` (inverse of :func:`parse_channel_map`)."""
    parts = []
    for index, gain in mapping:
        sign = "-" if gain < 0 else ""
        scale = "" if abs(abs(gain) - 1.0) < 1e-6 else f"*{abs(gain):.6g}"
        parts.append(f"{sign}{int(index)}{scale}")
    return ",".join(parts)


def apply_channel_map(raw: np.ndarray, text: str, *, path: str | os.PathLike | None = None) -> np.ndarray:
    """ambiX/SN3D (4, N) float32 from raw channels (C, N) by an explicit channel map.

    Raises
    ------
    MediaError
        Naming ``path`` when the map names a channel the stream does not have (InputError without a path).
    """
    mapping = parse_channel_map(text)
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2:
        raise InputError(f"raw audio must be (C, N), got shape {raw.shape}")
    highest = max(index for index, _ in mapping)
    if highest >= raw.shape[0]:
        problem = f"has {raw.shape[0]} audio channels; --channel-map {text!r} uses channel {highest}"
        if path is None:
            raise InputError(problem)
        raise MediaError(path, problem)
    return np.stack([gain * raw[index] for index, gain in mapping]).astype(np.float32)
