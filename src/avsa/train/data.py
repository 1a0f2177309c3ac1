"""Training batches for one stage: decode on the CPU, build samples on the device.

The batch of optimisation step ``s`` is fixed by (seed, stage, s): the
loader's epoch order and every item's randomness depend only on the seed, the
epoch and the item index (:mod:`avsa.data.loader`), so a resumed run replays
exactly the batches an uninterrupted one would have seen, and ``W`` processes
with ``B/W`` clips each see the same global batch as one process with ``B``.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import torch

from avsa.data.loader import SampleDataset, make_loader
from avsa.data.normalize import load_stats
from avsa.data.samples import SampleBuilder
from avsa.errors import ConfigError
from avsa.train.config import STAGES, TrainConfig


def read_clip_list(path: str) -> list[str] | None:
    """Clip ids of a list file (one per line, ``#`` comments); ``""`` → None (all clips)."""
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"data.clips={path}: cannot read the clip list ({exc})") from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise ConfigError(f"data.clips={path}: the clip list is empty")
    return ids


class TrainBatches:
    """Endless iterator of ``(video, audio, directions)`` on ``device`` for one stage.

    ``video`` (B, K, 3, T, S, S), ``audio`` (B, K, C, 100, 128), ``directions``
    (B, K, 2) crop centres (azimuth, elevation) in radians; K = 1 for AVC and
    4 for AVSA; B = this process's share of the stage's batch size.
    """

    def __init__(self, config: TrainConfig, *, stage: str, start_step: int = 0, rank: int = 0,
                 world_size: int = 1, device: torch.device | str = "cpu"):
        d = config.data
        stage_cfg = getattr(config, stage)
        if stage_cfg.batch_size % world_size:
            raise ConfigError(
                f"{stage}.batch_size={stage_cfg.batch_size} does not split over {world_size} processes"
            )
        self.device = torch.device(device)
        seed = config.seed * len(STAGES) + STAGES.index(stage)
        self.dataset = SampleDataset(
            d.cache, split=d.split, crop_mode=d.crops, n_crops=1 if stage == "avc" else 4,
            detector=d.detector, window_s=d.window_s, n_frames=d.n_frames, fps=d.fps,
            sample_rate=d.sample_rate, seed=seed, augment=d.augment, clip_ids=read_clip_list(d.clips),
            in_memory="auto",  # training reads every clip epoch after epoch: small caches stay decoded
        )
        self.loader = make_loader(
            self.dataset, batch_size=stage_cfg.batch_size // world_size, num_workers=d.num_workers,
            seed=seed, rank=rank, world_size=world_size, pin_memory=self.device.type == "cuda",
        )
        per_epoch = self.loader.batches_per_epoch()
        if per_epoch == 0:
            raise ConfigError(
                f"{d.cache}: {len(self.dataset)} clips in split {d.split!r} give no batch of "
                f"{stage_cfg.batch_size} clips; lower {stage}.batch_size or prepare more clips"
            )
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

    def _build(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = next(self._batches).to(self.device, non_blocking=True)
        with torch.no_grad():
            video, audio = self.builder(raw)
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
