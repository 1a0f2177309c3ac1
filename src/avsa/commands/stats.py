"""``avsa stats``: per-mel-band normalisation statistics of a training cache.

::

    avsa stats CACHE --format ambi --features iv            # → CACHE/stats/ambi-iv.npz
    avsa stats CACHE --format stereo --features icf --windows 2048 --num-workers 4

What is pooled and why: :mod:`avsa.data.cache_stats`.
"""

from __future__ import annotations

import argparse

from avsa.audio_inputs import FEATURES, FORMATS
from avsa.data.cache_stats import write_stats


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
    write_stats(args.cache, fmt=args.fmt, features=args.features, split=args.split, n_windows=args.windows,
                batch_size=args.batch_size, num_workers=args.num_workers, seed=args.seed, device=args.device)
    return 0
