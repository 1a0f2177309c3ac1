"""``avsa synth``: write a synthetic 360° audio-visual world.

    avsa synth --out DIR --videos N [--seed S] [--duration 10] [--width 512]
               [--convention ambix|fuma|n3d|youtube-aac|stereo-upmix|swapped]
               [--projection equirect|eac] [--audio-codec flac|opus|pcm|aac] [--jobs J]

Writes ``DIR/synth-<i>.mp4`` + ``DIR/synth-<i>.json`` (ground truth), the
split lists ``DIR/train.txt`` / ``DIR/test.txt`` (every fifth video is test)
and ``DIR/synth-config.json`` (the resolved configuration) with
:func:`avsa.media.synth.world.write_world`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.media.synth.config import CONVENTIONS, PROJECTIONS, SynthConfig
from avsa.media.outputs import check_output_folder
from avsa.media.synth.world import AUDIO_CODECS, write_world


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--videos", required=True, type=int, help="number of videos")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds per video")
    parser.add_argument("--width", type=int, default=defaults.width, help="equirect width (height = width/2)")
    parser.add_argument("--fps", type=float, default=defaults.fps)
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate)
    parser.add_argument("--convention", choices=CONVENTIONS, default="ambix", help="audio channel convention")
    parser.add_argument("--projection", choices=PROJECTIONS, default="equirect", help="video projection")
    parser.add_argument("--audio-codec", choices=tuple(AUDIO_CODECS), default=None,
                        help="default flac (aac for --convention youtube-aac)")
    parser.add_argument("--max-sources", type=int, default=defaults.max_sources)
    parser.add_argument("--max-distractors", type=int, default=defaults.max_distractors)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out folder, replacing files of the same name (default: refuse)")


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out, overwrite=args.overwrite)
    config = SynthConfig(duration_s=args.duration, width=args.width, fps=args.fps,
                         sample_rate=args.sample_rate, convention=args.convention,
                         projection=args.projection, max_sources=args.max_sources,
                         max_distractors=args.max_distractors)
    failures = write_world(args.out, videos=args.videos, seed=args.seed, config=config,
                           audio_codec=args.audio_codec, jobs=args.jobs)
    return 1 if failures else 0
