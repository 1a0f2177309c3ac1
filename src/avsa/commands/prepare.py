"""``avsa prepare SRC --out CACHE``: turn a folder of 360° videos into a training cache.

The work, the audio-layout rule and the robustness guarantees are those of
:mod:`avsa.media.prepare` (:func:`~avsa.media.prepare.prepare_cache`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.media.layouts import CHANNEL_MAP_HELP, FOA_LAYOUTS
from avsa.media.prepare import PrepareOptions, has_usable_clip, prepare_cache
from avsa.media.sources import parse_shard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PrepareOptions()
    parser.add_argument("src", type=Path, help="folder of 360° videos (or one file)")
    parser.add_argument("--out", type=Path, required=True, help="cache folder to write")
    parser.add_argument("--width", type=int, default=defaults.width, help="equirect width W (height W/2)")
    parser.add_argument("--fps", type=float, default=defaults.fps)
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate)
    parser.add_argument("--clip-seconds", type=float, default=defaults.clip_s)
    parser.add_argument("--min-clip-seconds", type=float, default=defaults.min_clip_s,
                        help="shortest single clip kept from a source shorter than --clip-seconds")
    parser.add_argument("--layout", default="auto", choices=("auto",) + FOA_LAYOUTS)
    parser.add_argument("--channel-map", default="", help="explicit map instead of --layout (as printed by "
                        "`avsa calibrate read`): " + CHANNEL_MAP_HELP.replace("%", "%%"))
    parser.add_argument("--min-loudness-db", type=float, default=defaults.min_loudness_db,
                        help="drop clips whose W RMS is below this (dBFS)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--shard", default="0/1", help="i/N: prepare only this part of the sources")
    parser.add_argument("--split-file", type=Path, action="append", default=None,
                        help="split list (file stem = split name, one source/id per line); repeatable")
    parser.add_argument("--equirect", action="store_true",
                        help="treat frames without spherical metadata (e.g. 16:9) as full-sphere equirect")
    parser.add_argument("--ground-truth", action="store_true",
                        help="read <stem>.json beside each video as avsa ground truth (the synthetic world of "
                        "avsa synth); off by default, so other apps' sidecar files are left alone")


def run(args: argparse.Namespace) -> int:
    options = PrepareOptions(
        width=args.width, fps=args.fps, sample_rate=args.sample_rate, clip_s=args.clip_seconds,
        min_clip_s=args.min_clip_seconds, layout=args.layout,
        min_loudness_db=args.min_loudness_db, equirect=args.equirect, channel_map=args.channel_map,
        ground_truth=args.ground_truth,
    )
    manifest = prepare_cache(args.src, args.out, options=options, jobs=args.jobs, shard=parse_shard(args.shard),
                             split_files=args.split_file)
    return 0 if has_usable_clip(manifest) else 1
