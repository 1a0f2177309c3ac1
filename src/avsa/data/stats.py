"""``avsa stats``: per-mel-band normalisation statistics of a training cache.

::

    avsa stats CACHE --format ambi --features iv            # → CACHE/stats/ambi-iv.npz
    avsa stats CACHE --format stereo --features icf --windows 2048 --num-workers 4

Draws ``--windows`` random windows of the training split with one random
crop each (the rotation to a crop centre changes the level of the
directional channels, so the statistics pool over crop directions), builds
their features exactly as training does but without augmentation or
normalisation, and saves the mean and std of every log-mel channel and mel
band (:mod:`avsa.data.normalize`). Run it once per cache and audio
configuration; ``avsa train`` loads the file.
"""

from __future__ import annotations

import argparse
import logging

import torch
from tqdm.auto import tqdm

from avsa.data.loader import SampleDataset, make_loader
from avsa.audio_inputs import FEATURES, FORMATS, check_audio_config
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Compute per-mel-band normalisation statistics of a prepared cache."
    parser.add_argument("cache", help="cache folder made by `avsa prepare`")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, required=True,
                        help="audio format")
    parser.add_argument("--features", choices=FEATURES, required=True,
                        help="audio features (iv: ambi only; icf: stereo only)")
    parser.add_argument("--split", default="train", help="manifest split (default: train)")
    parser.add_argument("--windows", type=int, default=1024, help="random windows to pool (default: 1024)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0, help="decoding processes (default: 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device for the features (default: cpu)")


def run(args: argparse.Namespace) -> int:
    check_audio_config(args.fmt, args.features)
    stats = compute_stats(args.cache, fmt=args.fmt, features=args.features, split=args.split,
                          n_windows=args.windows, batch_size=args.batch_size, num_workers=args.num_workers,
                          seed=args.seed, device=args.device)
    path = stats_path(args.cache, args.fmt, args.features)
    save_stats(path, stats)
    print(f"wrote {path} ({stats.n_windows} windows; log-mel mean {stats.mean.mean():.2f}, "
          f"std {stats.std.mean():.2f} averaged over channels and bands)")
    return 0
