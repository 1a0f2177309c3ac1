"""The training loader: decode windows, choose crops, draw augmentation — on the CPU.

Worker processes only decode a window (:class:`~avsa.media.clips.ClipWindows`),
pick its crop centres (:func:`~avsa.data.crops.select_crops`) and draw the
augmentation parameters (:func:`~avsa.data.augment.draw_augmentation`); the
heavy work runs batched on the training device in
:func:`avsa.data.samples.build_batch`.

Everything random depends only on (seed, epoch, index): the window start
(ClipWindows), the crops and augmentation (here) and the order
(:class:`EpochSampler`), so any number of workers gives the same batches.

An unreadable clip (:class:`~avsa.errors.MediaError`: a corrupt video, audio,
ground truth or detections file) is skipped with a logged warning; the
number skipped travels back in each batch (workers are separate processes)
and accumulates in :attr:`SampleLoader.skipped`.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, fields
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avsa.data.augment import Augmentation, draw_augmentation, identity_augmentation
from avsa.data.crops import CROP_MODES, DEFAULT_ELEVATION_RANGE, select_crops
from avsa.data.detection.base import Detection, in_window, load_detections
from avsa.errors import InputError, MediaError
from avsa.media.cache import Cache
from avsa.media.clips import ClipWindows, Window, decoded_bytes

log = logging.getLogger(__name__)

IN_MEMORY_BYTES = 4 * 2**30
"""Largest decoded cache (frames + audio) that one process of :class:`SampleDataset` keeps in memory by
default; less where the machine's memory is smaller (:func:`in_memory_budget`)."""

IN_MEMORY_SHARE = 1 / 4
"""Share of the machine's physical memory that the decoded stores of all of a run's processes may take."""


def in_memory_budget(processes: int = 1) -> int:
    """Bytes each of ``processes`` processes may keep decoded.

    :data:`IN_MEMORY_SHARE` of the physical memory split over the processes
    that each hold a store (training processes × decoding workers), at most
    :data:`IN_MEMORY_BYTES` each. Decoding a cache window by window instead is
    timed in docs/performance.md.
    """
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: the conservative size
        physical = 4 * 2**30
    return int(min(IN_MEMORY_BYTES, physical * IN_MEMORY_SHARE / max(1, int(processes))))

WORKER_TIMEOUT_S = 600.0
"""Longest wait for one batch from decoding worker processes before :class:`DecodingStalledError`: far beyond
what a batch of 6K clips takes to decode, so only a worker that hung or died reaches it."""


class DecodingStalledError(RuntimeError):
    """Decoding workers gave no batch within :data:`WORKER_TIMEOUT_S` (a hung or dead worker process)."""


KINDS = ("object", "random", "audio")
"""Crop kinds; ``RawBatch.kind`` holds indices into this tuple."""


@dataclass
class RawSample:
    """One decoded window with its crop centres and augmentation (CPU).

    Attributes
    ----------
    clip_id : str
    start_s : float
        Audio window start in the clip, s.
    frames : torch.Tensor, uint8 (T, 3, H, W)
        Equirectangular frames.
    foa : torch.Tensor, float32 (4, N)
        ambiX/SN3D window.
    azimuth, elevation, fov : np.ndarray, (K,)
        Crop centres and horizontal field of view, radians.
    kind : np.ndarray of int64, (K,)
        Indices into :data:`KINDS`.
    augmentation : Augmentation
    """

    clip_id: str
    start_s: float
    frames: torch.Tensor
    foa: torch.Tensor
    azimuth: np.ndarray
    elevation: np.ndarray
    fov: np.ndarray
    kind: np.ndarray
    augmentation: Augmentation


@dataclass
class RawBatch:
    """A collated batch, input of :func:`avsa.data.samples.build_batch`.

    Attributes
    ----------
    frames : torch.Tensor, uint8 (B, T, 3, H, W)
        Equirectangular frames, channels-last in memory (a view of
        (B, T, H, W, 3): the layout OpenCV samples fastest).
    foa : torch.Tensor, float32 (B, 4, N)
        ambiX/SN3D audio windows.
    azimuth, elevation, fov : torch.Tensor, float32 (B, K)
        Crop centres θ0, φ0 and horizontal field of view, radians.
    kind : torch.Tensor, int64 (B, K)
        Indices into :data:`KINDS`.
    flip : torch.Tensor, bool (B, K)
        Mirror crop and audio.
    jitter : torch.Tensor, float32 (B, K, 4)
        Brightness, contrast, saturation, hue (:mod:`avsa.data.augment`).
    gain : torch.Tensor, float32 (B, K)
        Linear audio gain.
    start_s : torch.Tensor, float64 (B,)
        Window starts in their clips, s.
    clip_ids : list of str, length B
    skipped : int
        Unreadable items dropped from this batch.
    """

    frames: torch.Tensor
    foa: torch.Tensor
    azimuth: torch.Tensor
    elevation: torch.Tensor
    fov: torch.Tensor
    kind: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    gain: torch.Tensor
    start_s: torch.Tensor
    clip_ids: list[str]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.clip_ids)

    def _map(self, fn) -> "RawBatch":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return RawBatch(**{k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in values.items()})

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> "RawBatch":
        """The batch with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "RawBatch":
        """Page-locked copy (called by ``DataLoader(pin_memory=True)``)."""
        return self._map(lambda t: t.pin_memory())


class SampleDataset(Dataset):
    """Windows of a prepared cache with crop centres and augmentation parameters.

    Parameters
    ----------
    cache : Cache or path
        A cache made by ``avsa prepare``.
    split : str or None
        Manifest split (None: all).
    crop_mode : {"random", "objects", "audio"}
        Crop selection (docs/system.md §2).
    n_crops : int
        K: 1 (AVC) or 4 (AVSA).
    detector : str
        ``objects`` mode: the folder ``CACHE/detections/<detector>/`` (``avsa detect``).
    window_s, n_frames, fps, sample_rate
        Window geometry, as :class:`~avsa.media.clips.ClipWindows`.
    seed : int
        With the epoch and the index, fixes everything random of an item.
    augment : bool
        Draw flips, colour jitter and gains (False: identity parameters).
    windows : list of Window, optional
        Fixed windows (evaluation) instead of one random window per clip.
    crop_jitter : float
        Radians: random displacement of object/audio crop centres (:func:`~avsa.data.crops.select_crops`).
    crop_jitter_ramp : float
        Epochs over which the jitter grows linearly from 0 to ``crop_jitter`` (epoch e uses
        ``crop_jitter × min(1, (e + 1) / crop_jitter_ramp)``); 0: the full jitter from the start.
    elevation_range : (float, float)
        Radians: elevations of random crops (:func:`~avsa.data.crops.select_crops`).
    in_memory : bool or "auto"
        Keep decoded clips in memory (:class:`~avsa.media.clips.ClipWindows`);
        ``"auto"``: when they need at most :func:`in_memory_budget` of ``stores``.
        Worth it over many epochs with long-lived workers (training); a single
        pass decodes less window by window.
    stores : int
        Processes that will each read this dataset and so hold their own store
        (training processes × decoding workers); sizes the ``"auto"`` budget.

    Items are :class:`RawSample`, or None for an unreadable clip (logged).

    Raises
    ------
    InputError
        Unknown crop mode, or ``objects`` mode without a detections folder.
    """

    def __init__(self, cache: Cache | str | os.PathLike, *, split: str | None = "train",
                 crop_mode: str = "random", n_crops: int = 4, detector: str = "oracle",
                 window_s: float = 1.0, n_frames: int = 8, fps: float = 16.0, sample_rate: int = 24000,
                 seed: int = 0, augment: bool = True, windows: Sequence[Window] | None = None,
                 clip_ids: Sequence[str] | None = None, crop_jitter: float = 0.0, crop_jitter_ramp: float = 0.0,
                 elevation_range: tuple[float, float] = DEFAULT_ELEVATION_RANGE,
                 in_memory: "bool | str" = False, stores: int = 1):
        if crop_mode not in CROP_MODES:
            raise InputError(f"unknown crop mode {crop_mode!r}; expected one of {', '.join(CROP_MODES)}")
        if n_crops not in (1, 4):
            raise InputError(f"n_crops must be 1 (AVC) or 4 (AVSA), got {n_crops}")
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        self.windows = ClipWindows(self.cache, split=split, window_s=window_s, n_frames=n_frames, fps=fps,
                                   sample_rate=sample_rate, seed=seed,
                                   windows=list(windows) if windows is not None else None, clip_ids=clip_ids)
        if in_memory == "auto":
            in_memory = decoded_bytes(self.cache, self.windows.clips, fps, sample_rate) <= in_memory_budget(stores)
        self.windows.in_memory = bool(in_memory)
        self.crop_mode, self.n_crops, self.seed, self.augment = crop_mode, n_crops, seed, augment
        self.crop_jitter = float(crop_jitter)
        if not crop_jitter_ramp >= 0:
            raise InputError(f"crop_jitter_ramp must be >= 0 epochs, got {crop_jitter_ramp}")
        self.crop_jitter_ramp = float(crop_jitter_ramp)
        self.elevation_range = (float(elevation_range[0]), float(elevation_range[1]))
        self.window_s, self.sample_rate, self.epoch = window_s, sample_rate, 0
        self.detections_dir = None
        if crop_mode == "objects":
            self.detections_dir = self.cache.detections_dir(detector)
            if not self.detections_dir.is_dir():
                raise InputError(
                    f"crop mode 'objects' needs detections in {self.detections_dir}: "
                    f"run `avsa detect {self.cache.root} --detector {detector}` first"
                )
        self._detections: dict[str, tuple[Detection, ...]] = {}
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the windows, crops and augmentation of ``epoch``."""
        self.epoch = int(epoch)
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows)

    def jitter_now(self) -> float:
        """The crop jitter (radians) of the current epoch: ``crop_jitter``, ramped up over ``crop_jitter_ramp``."""
        if self.crop_jitter_ramp <= 0:
            return self.crop_jitter
        return self.crop_jitter * min(1.0, (self.epoch + 1) / self.crop_jitter_ramp)

    def __getitem__(self, index: "int | tuple[int, int]") -> RawSample | None:
        if isinstance(index, tuple):  # (epoch, index) from SampleLoader.forever: workers live across epochs
            epoch, index = index
            if epoch != self.epoch:
                self.set_epoch(epoch)
        try:
            return self._item(index)
        except MediaError as error:
            self.skipped += 1
            log.warning("skipping unreadable clip (item %d): %s", index, error)
            return None

    def _clip_detections(self, clip_id: str) -> tuple[Detection, ...]:
        if clip_id not in self._detections:
            self._detections[clip_id] = load_detections(self.detections_dir / f"{clip_id}.json").detections
        return self._detections[clip_id]

    def _item(self, index: int) -> RawSample:
        window = self.windows[index]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # ClipWindows uses [seed, epoch, index]
        foa = window["audio"]
        detections = None
        if self.crop_mode == "objects":
            detections = in_window(self._clip_detections(window["clip_id"]), window["start_s"], self.window_s)
        centres = select_crops(self.crop_mode, n_crops=self.n_crops, rng=rng, detections=detections,
                               foa=foa.numpy() if self.crop_mode == "audio" else None,
                               sample_rate=self.sample_rate, elevation_range=self.elevation_range,
                               jitter=self.jitter_now())
        augmentation = draw_augmentation(rng, self.n_crops) if self.augment else identity_augmentation(self.n_crops)
        return RawSample(
            clip_id=window["clip_id"], start_s=float(window["start_s"]), frames=window["frames"], foa=foa,
            azimuth=np.asarray(centres.azimuth, dtype=np.float32),
            elevation=np.asarray(centres.elevation, dtype=np.float32),
            fov=np.asarray(centres.fov, dtype=np.float32),
            kind=np.asarray([KINDS.index(k) for k in centres.kind], dtype=np.int64),
            augmentation=augmentation,
        )


def collate(items: Sequence[RawSample | None]) -> "RawBatch | _EmptyBatch":
    """Stack samples into a :class:`RawBatch`, dropping None (skipped) items.

    When every item was skipped the result is an :class:`_EmptyBatch` that
    carries only the count; :class:`SampleLoader` counts it and drops it.
    """
    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    if not kept:
        return _EmptyBatch(skipped)

    def stack(name: str, dtype=None) -> torch.Tensor:
        return torch.as_tensor(np.stack([getattr(item, name) for item in kept]), dtype=dtype)

    def stack_aug(name: str, dtype) -> torch.Tensor:
        return torch.as_tensor(np.stack([getattr(item.augmentation, name) for item in kept]), dtype=dtype)

    return RawBatch(
        frames=torch.stack([item.frames.permute(0, 2, 3, 1) for item in kept]).permute(0, 1, 4, 2, 3),  # channels-last
        foa=torch.stack([item.foa for item in kept]).to(torch.float32),
        azimuth=stack("azimuth", torch.float32), elevation=stack("elevation", torch.float32),
        fov=stack("fov", torch.float32), kind=stack("kind", torch.int64),
        flip=stack_aug("flip", torch.bool), jitter=stack_aug("jitter", torch.float32),
        gain=stack_aug("gain", torch.float32),
        start_s=torch.tensor([item.start_s for item in kept], dtype=torch.float64),
        clip_ids=[item.clip_id for item in kept], skipped=skipped,
    )


@dataclass
class _EmptyBatch:
    """What :func:`collate` returns when every item of a batch was skipped."""

    skipped: int

    def pin_memory(self) -> "_EmptyBatch":
        return self


class EpochSampler(Sampler[int]):
    """Indices of one epoch: a permutation fixed by (seed, epoch), sharded by rank.

    Parameters
    ----------
    n : int
        Dataset length.
    seed : int
    shuffle : bool
        False: 0, 1, … in order.
    rank, world_size : int
        This process takes every ``world_size``-th index from ``rank`` on.
    """

    def __init__(self, n: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is not in [0, {world_size})")
        self.n, self.seed, self.shuffle, self.rank, self.world_size = n, seed, shuffle, rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use the order of ``epoch``, beginning at position ``start`` of this rank's share."""
        self.epoch, self.start = int(epoch), int(start)

    def indices(self) -> list[int]:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        return [int(i) for i in order[self.rank::self.world_size]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return max(len(range(self.rank, self.n, self.world_size)) - self.start, 0)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32  # fixed by the loader's generator (seed, epoch) and worker_id
    np.random.seed(seed)
    random.seed(seed)


class SampleLoader:
    """Batches of :class:`RawBatch` for one dataset, epoch by epoch.

    Build with :func:`make_loader`. Iterating yields one epoch (call
    :meth:`set_epoch` first); :meth:`forever` yields batches across epochs.
    Batches whose items were all unreadable are not yielded. :attr:`skipped`
    counts the unreadable items seen so far (summed over workers).
    """

    def __init__(self, dataset: SampleDataset, *, batch_size: int, num_workers: int, seed: int,
                 shuffle: bool, drop_last: bool, rank: int, world_size: int, pin_memory: bool):
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.seed, self.drop_last, self.pin_memory = seed, drop_last, pin_memory
        self.sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
        self.skipped = 0
        self.epoch = 0

    def set_epoch(self, epoch: int, *, start_batch: int = 0) -> None:
        """Use epoch ``epoch`` and begin at its batch ``start_batch`` (for resuming)."""
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start_batch * self.batch_size)

    def batches_per_epoch(self) -> int:
        """Batches in a full epoch of this rank."""
        n = len(range(self.sampler.rank, self.sampler.n, self.sampler.world_size))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[RawBatch]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=self.sampler, num_workers=self.num_workers,
            collate_fn=collate, drop_last=self.drop_last, pin_memory=self.pin_memory,
            worker_init_fn=_worker_init if self.num_workers > 0 else None, generator=generator,
            persistent_workers=False, timeout=WORKER_TIMEOUT_S if self.num_workers > 0 else 0,
        )
        for batch in self._guarded(loader):
            self.skipped += batch.skipped
            if isinstance(batch, RawBatch):
                yield batch

    def _guarded(self, loader: DataLoader) -> Iterator:
        """``loader``'s batches; a worker that gives none within :data:`WORKER_TIMEOUT_S` is an error, not a hang."""
        batches = iter(loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except RuntimeError as error:
                if "timed out" not in str(error):
                    raise
                raise DecodingStalledError(
                    f"{self.dataset.cache.root}: the {self.num_workers} decoding worker(s) gave no batch in "
                    f"{WORKER_TIMEOUT_S:g} s (a worker hung or died); rerun with data.num_workers=0, "
                    f"or resume the run (avsa train --resume RUN)") from None
            yield batch

    def forever(self, *, start_epoch: int = 0, start_batch: int = 0) -> Iterator[RawBatch]:
        """Batches of epoch ``start_epoch`` from ``start_batch`` on, then the next epochs, endlessly."""
        if self.batches_per_epoch() == 0:
            raise InputError(
                f"{len(self.dataset)} clips give no batch of {self.batch_size} "
                f"on {self.sampler.world_size} process(es): lower the batch size or add clips"
            )
        # One DataLoader for all epochs, so worker processes start once (not once per epoch):
        # its batches are lists of (epoch, index), exactly the batches of the per-epoch loop.
        loader = DataLoader(
            self.dataset, batch_sampler=_EpochStream(self, start_epoch, start_batch), num_workers=self.num_workers,
            collate_fn=collate, pin_memory=self.pin_memory,
            worker_init_fn=_worker_init if self.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(self.seed * 100_003 + start_epoch),
            timeout=WORKER_TIMEOUT_S if self.num_workers > 0 else 0,
        )
        empty_in_a_row = 0
        for batch in self._guarded(loader):
            self.skipped += batch.skipped
            if isinstance(batch, RawBatch):
                empty_in_a_row = 0
                yield batch
                continue
            empty_in_a_row += 1
            if empty_in_a_row >= 2 * self.batches_per_epoch():  # spans a whole epoch: no clip is readable
                raise InputError(
                    f"{self.dataset.cache.root}: every clip of {empty_in_a_row} batches in a row was unreadable "
                    f"({self.skipped} skipped, named in the warnings above); repair the cache (rerun avsa prepare)"
                )


class _EpochStream(Sampler[list]):
    """Batches of ``(epoch, index)`` for epoch after epoch, endlessly (see :meth:`SampleLoader.forever`)."""

    def __init__(self, loader: SampleLoader, start_epoch: int, start_batch: int):
        self.loader, self.start_epoch, self.start_batch = loader, start_epoch, start_batch

    def __iter__(self):
        sampler, size = self.loader.sampler, self.loader.batch_size
        epoch, start = self.start_epoch, self.start_batch
        while True:
            sampler.set_epoch(epoch, start * size)
            indices = list(sampler)
            stop = len(indices) - len(indices) % size if self.loader.drop_last else len(indices)
            for first in range(0, stop, size):
                yield [(epoch, i) for i in indices[first:first + size]]
            epoch, start = epoch + 1, 0


def auto_workers(world_size: int = 1) -> int:
    """Decoding workers per training process sized to the machine.

    The CPUs this process may run on, shared by the ``world_size`` processes
    of a run, less one each for the training process itself (at most 8; 0 on
    a single CPU, where decoding stays in the training process).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus // max(1, world_size) - 1))


def make_loader(dataset: SampleDataset, *, batch_size: int, num_workers: "int | str" = 0, seed: int = 0,
                shuffle: bool = True, drop_last: bool = True, rank: int = 0, world_size: int = 1,
                pin_memory: bool = False) -> SampleLoader:
    """A deterministic loader of :class:`RawBatch` over ``dataset``.

    Parameters
    ----------
    dataset : SampleDataset
    batch_size : int
        Clips per batch on this process (before skipping unreadable ones).
    num_workers : int or "auto"
        Decoding worker processes (0: decode in the main process; ``"auto"``:
        :func:`auto_workers`). Batches do not depend on it.
    seed : int
        Fixes the order of every epoch (the dataset's own seed fixes the items).
    shuffle, drop_last : bool
    rank, world_size : int
        Shard of a distributed run.
    pin_memory : bool
        Page-locked batches, for fast copies to a GPU.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers == "auto":
        num_workers = auto_workers(world_size)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise InputError(f"num_workers must be an integer >= 0 or 'auto', got {num_workers!r}")
    return SampleLoader(dataset, batch_size=batch_size, num_workers=num_workers, seed=seed, shuffle=shuffle,
                        drop_last=drop_last, rank=rank, world_size=world_size, pin_memory=pin_memory)
