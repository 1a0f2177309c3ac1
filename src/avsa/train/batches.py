"""Training batches for one stage: decode on the CPU, build samples on the device.

The batch of optimisation step ``s`` is fixed by (seed, stage, s): the
loader's epoch order and every item's randomness depend only on the seed, the
epoch and the item index (:mod:`avsa.data.loader`), so a resumed run replays
exactly the batches an uninterrupted one would have seen, and ``W`` processes
with ``B/W`` clips each see the same global batch as one process with ``B``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from pathlib import Path

import torch

from avsa.data.loader import SampleDataset, auto_workers, make_loader
from avsa.data.normalize import load_stats
from avsa.data.samples import SampleBuilder
from avsa.errors import AvsaError, ConfigError
from avsa.media.cache import check_cache_matches
from avsa.models.build import STAGES
from avsa.train.config import TrainConfig

log = logging.getLogger(__name__)

MIN_CONTRASTIVE_BATCH = 2
"""Fewest clips in a global batch for a contrastive loss (with one, the loss is 0 and nothing is learnt)."""


class UnfillableBatchError(AvsaError):
    """A stage cannot fill a batch from the readable clips of its cache."""


def read_clip_list(path: str) -> list[str] | None:
    """Clip ids of a list file; ``""`` → None (all clips).

    One id per line; a line whose first non-blank character is ``#`` is a
    comment, and so is the rest of a line after `` #`` (a blank, then ``#``).
    A ``#`` inside an id (``take#2_c000``) belongs to the id.
    """
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"data.clips={path}: cannot read the clip list ({exc})") from None
    ids = []
    for line in lines:
        line = line.strip()
        if line.startswith("#"):
            continue
        for mark in (" #", "\t#"):
            line = line.split(mark, 1)[0]
        if line.strip():
            ids.append(line.strip())
    if not ids:
        raise ConfigError(f"data.clips={path}: the clip list is empty")
    return ids


def stage_dataset(config: TrainConfig, stage: str, *, stores: int = 1) -> SampleDataset:
    """The training dataset of ``stage``, after checking the cache against the config.

    ``stores``: processes that will each read it (training processes × decoding
    workers), which share the memory that keeps a small cache decoded.

    Raises
    ------
    InputError
        If the cache was prepared at another sample rate, frame rate or audio
        layout than ``config.data`` reads it with.
    """
    d = config.data
    check_cache_matches(d.cache, sample_rate=d.sample_rate, fps=d.fps, what="data")
    seed = config.seed * len(STAGES) + STAGES.index(stage)
    dataset = SampleDataset(
        d.cache, split=d.split, crop_mode=d.crops, n_crops=1 if stage == "avc" else 4,
        detector=d.detector, window_s=d.window_s, n_frames=d.n_frames, fps=d.fps,
        sample_rate=d.sample_rate, seed=seed, augment=d.augment, clip_ids=read_clip_list(d.clips),
        crop_jitter=math.radians(d.crop_jitter_deg) if d.augment else 0.0,
        elevation_range=(-math.radians(d.random_elevation_deg), math.radians(d.random_elevation_deg)),
        in_memory="auto", stores=stores,  # training reads every clip epoch after epoch: small caches stay decoded
    )
    if d.crop_jitter_warmup > 0 and len(dataset):
        stage_cfg = getattr(config, stage)  # epochs of the warm-up: its share of the stage's clips over the split's
        dataset.crop_jitter_ramp = d.crop_jitter_warmup * stage_cfg.steps * stage_cfg.batch_size / len(dataset)
    return dataset


def check_batch_size(config: TrainConfig, stage: str, n_clips: int, world_size: int) -> None:
    """Raise a ConfigError if ``stage``'s batch cannot be filled from ``n_clips`` clips."""
    d, batch_size = config.data, getattr(config, stage).batch_size
    if batch_size % world_size:
        raise ConfigError(f"{stage}.batch_size={batch_size} does not split over {world_size} processes")
    if batch_size < MIN_CONTRASTIVE_BATCH:
        raise ConfigError(f"{stage}.batch_size={batch_size}: a contrastive loss needs at least "
                          f"{MIN_CONTRASTIVE_BATCH} clips per batch")
    if n_clips // world_size < batch_size // world_size:
        raise ConfigError(
            f"{d.cache}: {n_clips} clips in split {d.split!r}"
            + (f" (data.clips={d.clips})" if d.clips else "")
            + f" give no batch of {batch_size} clips"
            + (f" on {world_size} processes" if world_size > 1 else "")
            + f"; lower {stage}.batch_size or prepare more clips"
        )


def check_stages(config: TrainConfig, *, world_size: int = 1) -> None:
    """Check every stage's data and batch size before any training (a late stage fails now, not hours in)."""
    for stage in config.stages:
        check_batch_size(config, stage, len(stage_dataset(config, stage)), world_size)


class TrainBatches:
    """Endless iterator of ``(video, audio, directions)`` on ``device`` for one stage.

    ``video`` (B, K, 3, T, S, S), ``audio`` (B, K, C, 100, 128), ``directions``
    (B, K, 2) crop centres (azimuth, elevation) in radians; K = 1 for AVC and
    4 for AVSA; B = this process's share of the stage's batch size. With AVSA
    sound negatives (``avsa.sound_negatives > 0``) ``audio`` is (B, 2K, C, 100, 128):
    the K crops' own sound, then the next clip's sound rotated to the same K
    crops (:meth:`~avsa.data.samples.SampleBuilder.other_audio`).
    """

    def __init__(self, config: TrainConfig, *, stage: str, start_step: int = 0, rank: int = 0,
                 world_size: int = 1, device: torch.device | str = "cpu"):
        d = config.data
        stage_cfg = getattr(config, stage)
        self.device = torch.device(device)
        self.stage, self.world_size = stage, world_size
        self.other_audio = stage == "avsa" and config.avsa.sound_negatives > 0
        workers = auto_workers(world_size) if d.num_workers == "auto" else d.num_workers
        stores = world_size * max(1, workers if isinstance(workers, int) else 1)  # each reading process keeps one
        self.dataset = stage_dataset(config, stage, stores=stores)
        check_batch_size(config, stage, len(self.dataset), world_size)
        self.batch_size = stage_cfg.batch_size // world_size
        self.loader = make_loader(
            self.dataset, batch_size=self.batch_size, num_workers=workers,
            seed=self.dataset.seed, rank=rank, world_size=world_size, pin_memory=self.device.type == "cuda",
        )
        per_epoch = self.loader.batches_per_epoch()
        self.per_epoch = per_epoch
        self._prefetch: concurrent.futures.Future | None = None
        self._batches = self.loader.forever(start_epoch=start_step // per_epoch,
                                            start_batch=start_step % per_epoch)
        stats = load_stats(d.cache, d.format, d.features) if d.normalize else None
        self.builder = SampleBuilder(
            fmt=d.format, features=d.features, stats=stats, crop_size=d.crop_size,
            sample_rate=d.sample_rate, normalize=d.normalize, augment=d.augment,
        ).to(self.device)

    def audio_stats(self) -> dict:
        """The per-band log-mel statistics in use, for the checkpoint (empty without normalisation)."""
        if not self.builder.normalize:
            return {}
        return {"mean": self.builder.mean.detach().cpu(), "std": self.builder.std.detach().cpu(),
                "format": self.builder.fmt, "features": self.builder.features}

    @property
    def skipped(self) -> int:
        """Unreadable clips skipped so far (this process)."""
        return self.loader.skipped

    def __iter__(self):
        return self

    def _next_usable(self):
        """The next batch with enough readable clips for the loss; bounded attempts.

        A batch that lost clips to unreadable files is used (with a warning)
        if it still holds :data:`MIN_CONTRASTIVE_BATCH` clips over all
        processes; else it is dropped. After a whole epoch's worth of
        dropped batches in a row the stage stops with an
        :class:`UnfillableBatchError`.
        """
        least = max(1, -(-MIN_CONTRASTIVE_BATCH // self.world_size))
        for _ in range(self.per_epoch + 1):
            raw = next(self._batches)
            if len(raw) < self.batch_size:
                log.warning("%s: a batch shrank to %d of %d clips (unreadable clips skipped; %d so far)",
                            self.stage, len(raw), self.batch_size, self.loader.skipped)
            if len(raw) >= least:
                return raw
        raise UnfillableBatchError(
            f"{self.stage}: {self.per_epoch + 1} batches in a row had fewer than {least} readable clip(s) "
            f"of {self.batch_size} ({self.loader.skipped} unreadable clips skipped, named in the warnings "
            f"above); repair the cache (rerun avsa prepare) or lower {self.stage}.batch_size"
        )

    def _build(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = self._next_usable().to(self.device, non_blocking=True)
        with torch.no_grad():
            video, audio = self.builder(raw)
            if self.other_audio:
                audio = torch.cat([audio, self.builder.other_audio(raw)], dim=1)  # B x 2K x C x T' x F
        directions = torch.stack([raw.azimuth, raw.elevation], dim=-1)
        return video, audio, directions

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.device.type != "cpu":  # the device runs the building asynchronously already
            return self._build()
        # On the CPU the next batch is built in a background thread while the caller trains on this one
        # (torch, OpenCV and the decoders release the GIL): the same batches, in the same order.
        if self._prefetch is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="avsa-batches")
            self._prefetch = self._executor.submit(self._build)
        batch = self._prefetch.result()
        self._prefetch = self._executor.submit(self._build)
        return batch

    def close(self) -> None:
        if self._prefetch is not None:
            concurrent.futures.wait([self._prefetch])  # the generator must not be running when closed
            self._executor.shutdown()
            self._prefetch = None
        self._batches.close()
