"""Video embeddings in bounded memory: frames stream through a window of the model's length.

A video becomes a stream of frames at the model's rate (an array resampled by
:func:`resampled_frames`, or a file decoded and downscaled frame by frame by
:func:`file_frames`); :func:`sliding_windows` holds only the last
``n_frames`` of them, and :func:`embed_windows` turns each window into its
views as soon as it is complete and encodes them a batch at a time. Nothing
grows with the length of the video but the embeddings.

The model object ``p`` is an :class:`avsa.inference.pretrained.Pretrained`
(this module only calls its methods).
"""

from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from avsa.errors import InputError


def resampled_frames(frames: np.ndarray, fps: float, rate: float) -> Iterator[np.ndarray]:
    """The frames of an array at ``rate``: for each time k / rate, the frame nearest to it.

    Parameters
    ----------
    frames : np.ndarray uint8, (T, H, W, 3)
    fps : float
        Frame rate of ``frames``.
    rate : float
        Output frame rate.

    Yields
    ------
    np.ndarray (H, W, 3), views of ``frames``; ``max(1, floor(T / fps · rate))`` of them.
    """
    n_out = max(1, int(math.floor(len(frames) / fps * rate + 1e-6)))
    for k in range(n_out):
        yield frames[min(len(frames) - 1, int(round(k / rate * fps)))]


def file_frames(p, path: str | os.PathLike, *, view: str = "around", projection: str = "auto") -> Iterator[np.ndarray]:
    """The frames of a video file at the model's rate, each downscaled right after decoding.

    360° views (``around``, ``crop``) decode at the model's equirect width
    (``p.equirect_width`` × half that; never upscaled); ``perspective`` at a
    size whose short side is twice the model's crop size. Only the frame being
    converted is held at the file's resolution.

    Parameters
    ----------
    p : Pretrained
    path : path of a video file
    view : {"around", "crop", "perspective"}
    projection : {"auto", "equirectangular", "cubemap"}
        As :func:`avsa.media.io.read_frames`.

    Yields
    ------
    np.ndarray uint8, (H, W, 3)
    """
    from avsa.media import io

    info = io.probe(path)
    if not info.has_video:
        raise InputError(f"{path}: no video stream")
    width, height = info.width or 0, info.height or 0
    if view == "perspective":
        scale = min(1.0, 2 * p.crop_size / max(1, min(width, height)))
        size = (max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2)))
    else:
        size = (p.equirect_width, p.equirect_width // 2) if width > p.equirect_width else None
    yield from io.stream_frames(path, fps=p.config.data.fps, size=size, projection=projection)


def sliding_windows(frames: Iterable[np.ndarray], *, n_frames: int, hop_frames: int) -> Iterator[tuple[int, np.ndarray]]:
    """Windows of ``n_frames`` consecutive frames starting every ``hop_frames`` frames.

    Holds at most ``n_frames`` frames of the stream at a time. A stream shorter
    than a window gives one window, padded with its last frame.

    Yields
    ------
    first : int
        Index of the window's first frame in the stream.
    window : np.ndarray, (n_frames, H, W, 3)
        A copy: later frames do not change it.
    """
    if n_frames < 1 or hop_frames < 1:
        raise InputError(f"n_frames and hop_frames must be >= 1, got {n_frames}, {hop_frames}")
    buffer: deque[np.ndarray] = deque(maxlen=n_frames)
    any_window = False
    for i, frame in enumerate(frames):
        buffer.append(frame)
        first = i - n_frames + 1
        if first >= 0 and first % hop_frames == 0:
            any_window = True
            yield first, np.stack(buffer)
    if not any_window and buffer:
        yield 0, np.stack([*buffer] + [buffer[-1]] * (n_frames - len(buffer)))


@torch.no_grad()
def embed_windows(p, frames: Iterable[np.ndarray], *, hop_s: float = 0.5, view: str = "around",
                  azimuth: float = 0.0, elevation: float = 0.0, fov: float = math.radians(60.0),
                  batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the windows of a stream of frames at the model's rate.

    Parameters
    ----------
    p : Pretrained
    frames : iterable of np.ndarray uint8 (H, W, 3)
        At the model's frame rate (``p.config.data.fps``), equirectangular for the 360° views.
    hop_s : float
        Seconds between window starts, rounded to whole frames (at least one).
    view, azimuth, elevation, fov
        As :meth:`~avsa.inference.pretrained.Pretrained.video_views`; the
        embedding of a window is the mean of its views'.
    batch_size : int
        Windows per encoder call.

    Returns
    -------
    embeddings : np.ndarray float32, (W, dim)
    timestamps : np.ndarray float64, (W,)
        Window centres in seconds from the first frame.
    """
    if not hop_s > 0:
        raise InputError(f"hop_s must be positive, got {hop_s!r}")
    rate = float(p.config.data.fps)
    hop_frames = max(1, int(round(hop_s * rate)))
    starts: list[int] = []
    embeddings: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []  # (V, 3, T, S, S) per window, at most batch_size

    def flush() -> None:
        batch = torch.stack(pending)  # (B, V, 3, T, S, S)
        emb, _ = p.encode(batch.flatten(0, 1), None, batch_size=batch.shape[0] * batch.shape[1])
        embeddings.append(emb.unflatten(0, batch.shape[:2]).mean(dim=1).cpu())
        pending.clear()

    for first, window in sliding_windows(frames, n_frames=p.n_frames, hop_frames=hop_frames):
        pending.append(p.video_views(torch.from_numpy(window), view=view, azimuth=azimuth, elevation=elevation,
                                     fov=fov))
        starts.append(first)
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if not embeddings:
        raise InputError("no frames to embed")
    times = (np.asarray(starts, dtype=np.float64) + p.n_frames / 2) / rate
    return torch.cat(embeddings).numpy(), times


def video_file_embedding(p, path: str | os.PathLike, *, hop_s: float = 0.5, view: str = "around",
                         azimuth: float = 0.0, elevation: float = 0.0, fov: float = math.radians(60.0),
                         projection: str = "auto", batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_windows` of a video file streamed by :func:`file_frames`; memory independent of its length."""
    return embed_windows(p, file_frames(p, Path(path), view=view, projection=projection), hop_s=hop_s, view=view,
                         azimuth=azimuth, elevation=elevation, fov=fov, batch_size=batch_size)
