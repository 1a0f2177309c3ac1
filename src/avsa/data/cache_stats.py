"""Per-mel-band normalisation statistics of a prepared cache (``avsa stats``).

:func:`compute_stats` draws random windows of the training split with one
random crop each (the rotation to a crop centre changes the level of the
directional channels, so the statistics pool over crop directions), builds
their features exactly as training does but without augmentation or
normalisation, and returns the mean and std of every log-mel channel and mel
band; :func:`write_stats` saves them where ``avsa train`` reads them
(``CACHE/stats/<format>-<features>.npz``, :mod:`avsa.data.normalize`). Run it
once per cache and audio configuration.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avsa.audio_inputs import check_audio_config
from avsa.data.loader import SampleDataset, make_loader
from avsa.data.normalize import BandStats, StatsAccumulator, save_stats, stats_path
from avsa.data.samples import audio_features, audio_format, rotated_audio
from avsa.errors import InputError

log = logging.getLogger(__name__)


def compute_stats(cache, *, fmt: str, features: str, split: str = "train", n_windows: int = 1024,
                  batch_size: int = 16, num_workers: int = 0, seed: int = 0,
                  device: torch.device | str = "cpu", progress: bool = True) -> BandStats:
    """Mean and std per log-mel channel and band over random windows of a cache.

    Parameters
    ----------
    cache : Cache or path
    fmt, features : str
        Audio configuration (a valid pair).
    split : str
        Manifest split (``train``).
    n_windows : int
        Windows to draw (one random crop each); the clips are cycled epoch by
        epoch (a new random window per clip each time) until enough were seen.
    batch_size, num_workers : int
        Loader settings.
    seed : int
        Fixes the windows and crops.
    device : torch.device or str
        Where the features are computed.
    progress : bool
        Show a progress bar.
    """
    check_audio_config(fmt, features)
    if n_windows < 1:
        raise InputError(f"--windows must be >= 1, got {n_windows}")
    dataset = SampleDataset(cache, split=split, crop_mode="random", n_crops=1, seed=seed, augment=False)
    loader = make_loader(dataset, batch_size=min(batch_size, len(dataset)), num_workers=num_workers,
                         seed=seed, drop_last=False)
    accumulator = StatsAccumulator(fmt, features)
    max_epochs = 1 + 4 * -(-n_windows // len(dataset))  # stop even if most clips are unreadable
    with tqdm(total=n_windows, desc=f"stats {fmt}-{features}", unit="window", disable=not progress) as bar:
        for epoch in range(max_epochs):
            loader.set_epoch(epoch)
            for raw in loader:
                raw = raw.to(device)
                take = min(len(raw), n_windows - accumulator.n_windows)
                foa = rotated_audio(raw, augment=False)  # no video needed
                audio = audio_features(audio_format(foa, fmt), features, sample_rate=dataset.sample_rate)
                accumulator.update(audio[:take])
                bar.update(take)
                if accumulator.n_windows >= n_windows:
                    break
            if accumulator.n_windows >= n_windows:
                break
    if loader.skipped:
        log.warning("%d unreadable window(s) skipped", loader.skipped)
    if accumulator.n_windows == 0:
        raise InputError(f"{dataset.cache.root}: no readable window in split {split!r}")
    return accumulator.result()


def write_stats(cache: str | os.PathLike, *, fmt: str, features: str, n_windows: int = 1024, **options) -> Path:
    """:func:`compute_stats`, saved to ``CACHE/stats/<format>-<features>.npz``; prints a summary line.

    ``options`` are the other keyword arguments of :func:`compute_stats`.

    Returns
    -------
    Path
        The statistics file.
    """
    check_audio_config(fmt, features)
    stats = compute_stats(cache, fmt=fmt, features=features, n_windows=n_windows, **options)
    path = stats_path(cache, fmt, features)
    save_stats(path, stats)
    print(f"wrote {path} ({stats.n_windows} windows; log-mel mean {stats.mean.mean():.2f}, "
          f"std {stats.std.mean():.2f} averaged over channels and bands)")
    return path
