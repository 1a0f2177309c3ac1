"""Training windows over a prepared cache (docs/system.md §1).

A sample is a 1-s audio window at 24 kHz and the 8 equirectangular frames
(0.5 s at 16 fps) centred inside it. Windows start on the frame grid: the
first frame is frame ``f0`` of the clip and the audio starts
``(window_s − n_frames/fps)/2`` = 0.25 s before it. Only the window is
decoded: the audio by a sample-exact seek in the FLAC, the video by a seek to
the keyframe before ``f0`` (the cache's GOP of 8 bounds the waste).
``benchmarks/bench_media.py`` compares the windows per second with decoding
the same windows from the source files and with decoding the cache end to end
(the limit); its figures are in docs/performance.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
from torch.utils.data import Dataset

from avsa.errors import InputError, MediaError
from avsa.media.cache import Cache, ClipRecord


@dataclass(frozen=True)
class Window:
    """A fixed window: clip ``clip_id``, first frame index ``first_frame``."""

    clip_id: str
    first_frame: int


def _frame_range(duration_s: float, *, window_s: float, n_frames: int, fps: float) -> tuple[int, int, float]:
    """(lowest, highest) first-frame index of a window in a clip, and the audio lead, s."""
    lead_s = (window_s - n_frames / fps) / 2.0
    if lead_s < 0:
        raise InputError(f"{n_frames} frames at {fps:g} fps do not fit in a {window_s:g}-s window")
    lowest = int(np.ceil(lead_s * fps - 1e-6))
    highest = int(np.floor((duration_s - window_s + lead_s) * fps + 1e-6))
    return lowest, highest, lead_s


def windows_for_eval(cache: Cache, split: str, n_per_clip: int, seed: int, *,
                     window_s: float = 1.0, n_frames: int = 8, fps: float = 16.0) -> list[Window]:
    """Fixed windows for evaluation: ``n_per_clip`` per clip, the same for a seed.

    The first frames are drawn without replacement (as many as fit when a clip
    is short) and sorted; clips too short for one window are left out.
    """
    rng = np.random.default_rng(seed)
    windows = []
    for clip in cache.clips(split):
        lowest, highest, _ = _frame_range(clip.duration_s, window_s=window_s, n_frames=n_frames, fps=fps)
        if highest < lowest:
            continue
        choices = np.arange(lowest, highest + 1)
        picked = np.sort(rng.choice(choices, size=min(n_per_clip, len(choices)), replace=False))
        windows.extend(Window(clip.clip_id, int(first)) for first in picked)
    return windows


class ClipWindows(Dataset):
    """Clip windows of a prepared cache as a torch Dataset.

    Parameters
    ----------
    cache : Cache or path
        The prepared cache.
    split : str or None
        Clips of this split (None: all), status ``ok``.
    window_s : float
        Audio window, seconds (1 s).
    n_frames, fps : int, float
        Video frames per sample and the cache's frame rate (8 at 16 fps = 0.5 s).
    sample_rate : int
        The cache's audio rate, Hz.
    seed : int
        Random windows depend only on (seed, epoch, index), so any worker
        layout yields the same samples; call :meth:`set_epoch` each epoch.
    windows : list of Window, optional
        Fixed windows (:func:`windows_for_eval`) instead of one random window
        per clip.
    clip_ids : collection of str, optional
        Only these clips (e.g. a Table I subset from ``avsa check --subset``).
    in_memory : bool
        Decode each clip whole on first use and keep it in this process's
        memory (about duration × fps × H × W × 3 bytes per clip), cutting
        later windows from it: the same windows, no decoding after the first
        epoch. For caches small enough to fit (see :func:`decoded_bytes`).

    Items are dicts: ``clip_id`` (str), ``start_s`` (float, audio window start
    in the clip, s), ``frames`` (uint8 tensor (n_frames, 3, H, W), equirect,
    channels-last in memory: a view of the decoded (n_frames, H, W, 3)),
    ``audio`` (float32 tensor (4, window_s·sample_rate), ambiX/SN3D),
    ``groundtruth`` (GroundTruth sliced to the audio window, or None).
    Unreadable clips raise :class:`MediaError` naming the file.
    """

    def __init__(self, cache: Cache | str | os.PathLike, *, split: str | None = "train",
                 window_s: float = 1.0, n_frames: int = 8, fps: float = 16.0,
                 sample_rate: int = 24000, seed: int = 0, windows: list[Window] | None = None,
                 clip_ids: Collection[str] | None = None, in_memory: bool = False):
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        self.in_memory = in_memory
        self._store: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.clips = self.cache.clips(split)
        if clip_ids is not None:
            wanted = set(clip_ids)
            unknown = sorted(wanted - {clip.clip_id for clip in self.cache.clips(None)})
            if unknown:
                raise InputError(f"clip list names {len(unknown)} clip(s) not in {self.cache.root}: {unknown[:3]}")
            self.clips = [clip for clip in self.clips if clip.clip_id in wanted]
        self.window_s, self.n_frames, self.fps = window_s, n_frames, fps
        self.sample_rate, self.seed, self.epoch = sample_rate, seed, 0
        self.windows = windows
        by_id = {clip.clip_id: clip for clip in self.cache.clips(None)}
        if windows is not None:
            unknown = [w.clip_id for w in windows if w.clip_id not in by_id]
            if unknown:
                raise InputError(f"windows name clips not in {self.cache.root}: {unknown[:3]}")
        elif not self.clips:
            raise InputError(f"{self.cache.root}: no usable clips in split {split!r}")
        self._by_id = by_id

    def set_epoch(self, epoch: int) -> None:
        """Use the random windows of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.windows) if self.windows is not None else len(self.clips)

    def __getitem__(self, index: int) -> dict:
        if self.windows is not None:
            window = self.windows[index]
            clip, first = self._by_id[window.clip_id], window.first_frame
        else:
            clip = self.clips[index]
            lowest, highest, _ = self._range(clip)
            rng = np.random.default_rng([self.seed, self.epoch, index])
            first = int(rng.integers(lowest, highest + 1))
        return self.read(clip, first)

    def _range(self, clip: ClipRecord) -> tuple[int, int, float]:
        lowest, highest, lead_s = _frame_range(
            clip.duration_s, window_s=self.window_s, n_frames=self.n_frames, fps=self.fps)
        if highest < lowest:
            raise MediaError(self.cache.audio_path(clip),
                             f"clip of {clip.duration_s:g} s is shorter than a {self.window_s:g}-s window")
        return lowest, highest, lead_s

    def read(self, clip: ClipRecord, first_frame: int) -> dict:
        """The window of ``clip`` whose first video frame is ``first_frame``."""
        _, _, lead_s = self._range(clip)
        start_s = first_frame / self.fps - lead_s
        n_samples = int(round(self.window_s * self.sample_rate))
        first_sample = int(round(start_s * self.sample_rate))
        if self.in_memory:
            frames, audio = self._from_store(clip, first_frame, first_sample, n_samples)
        else:
            audio = read_audio_window(self.cache.audio_path(clip), first_sample, n_samples)
            frames = read_frame_window(self.cache.video_path(clip), first_frame, self.n_frames, fps=self.fps)
        groundtruth = self.cache.groundtruth(clip)
        if groundtruth is not None:
            groundtruth = groundtruth.slice(start_s, self.window_s)
        return {
            "clip_id": clip.clip_id,
            "start_s": float(start_s),
            "frames": torch.from_numpy(frames).permute(0, 3, 1, 2),  # (T, 3, H, W), channels-last memory
            "audio": torch.from_numpy(audio),
            "groundtruth": groundtruth,
        }


    def _from_store(self, clip: ClipRecord, first_frame: int, first_sample: int,
                    n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """A window cut from the clip decoded whole (once per process): the same arrays as decoding it."""
        if clip.clip_id not in self._store:
            from avsa.media import io

            video = io.read_frames(self.cache.video_path(clip), fps=self.fps, projection="equirectangular")
            self._store[clip.clip_id] = (video, read_audio_window(self.cache.audio_path(clip), 0, None))
        video, audio = self._store[clip.clip_id]
        if first_frame + self.n_frames > len(video):
            raise MediaError(self.cache.video_path(clip), f"cached video ends before frame {first_frame + self.n_frames}")
        if first_sample + n_samples > audio.shape[1]:
            raise MediaError(self.cache.audio_path(clip), f"cached audio ends before sample {first_sample + n_samples}")
        # copies: a window must not keep (or ship to another process) the whole clip's buffer
        return video[first_frame:first_frame + self.n_frames].copy(), audio[:, first_sample:first_sample + n_samples].copy()


def decoded_bytes(cache: Cache, clips: Collection[ClipRecord], fps: float, sample_rate: int) -> int:
    """Memory that ``in_memory`` needs for ``clips``: frames at ``fps`` (uint8 RGB) and 4-ch float32 audio."""
    from avsa.media import io

    clips = list(clips)
    if not clips:
        return 0
    info = None
    for clip in clips[:8]:  # cached clips share one size and layout: the first readable one tells
        try:
            info = io.probe(cache.video_path(clip))
            break
        except MediaError:
            continue
    if info is None:  # nothing readable to size: decode window by window (the loader reports the files)
        return sys.maxsize
    seconds = sum(clip.duration_s for clip in clips)
    frame_bytes = (info.width or 0) * (info.height or 0) * 3
    audio_bytes = 4 * 4 * sample_rate
    return int(seconds * (fps * frame_bytes + audio_bytes))


def read_audio_window(path: os.PathLike, start: int, n_samples: int | None) -> np.ndarray:
    """Samples ``[start, start + n_samples)`` of a cached FLAC as float32 (C, n_samples); None: to the end.

    Raises
    ------
    MediaError
        If the file cannot be read or is shorter than the window.
    """
    try:
        with soundfile.SoundFile(path) as handle:
            handle.seek(start)
            audio = handle.read(-1 if n_samples is None else n_samples, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise MediaError(path, f"unreadable cached audio ({exc})") from None
    if n_samples is not None and audio.shape[0] != n_samples:
        raise MediaError(path, f"cached audio ends before sample {start + n_samples}")
    return np.ascontiguousarray(audio.T)


def read_frame_window(path: os.PathLike, first_frame: int, n_frames: int, *, fps: float) -> np.ndarray:
    """Frames ``first_frame … first_frame + n_frames − 1`` of a cached video, uint8 (T, H, W, 3).

    :func:`avsa.media.io.read_frame_range` seeks to the keyframe before the
    window and decodes forward (cheap with the cache's GOP of 8).

    Raises
    ------
    MediaError
        If the file cannot be decoded or ends before the last frame.
    """
    from avsa.media import io

    frames = io.read_frame_range(path, first_frame, n_frames, fps=fps)
    if len(frames) != n_frames:
        raise MediaError(path, f"cached video ends before frame {first_frame + n_frames}")
    return frames
