"""``avsa localize``: where does the model hear each sound? An alignment heatmap over the 360° frame.

::

    avsa localize runs/demo/checkpoints/avsa.pt clip.mp4 --time 3.5 --out heat.png

The map and its scores: :mod:`avsa.inference.localize` (:func:`~avsa.inference.localize.localize_file`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.errors import InputError
from avsa.inference.localize import SCORES, localize_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="saved model folder (avsa export), run folder or checkpoint .pt")
    parser.add_argument("video", type=Path, help="a 360° video with FOA (a prepared clip, or any file)")
    parser.add_argument("--audio", type=Path, help="separate audio file (default: the video's track, or the "
                                                   "prepared clip's .flac beside it)")
    parser.add_argument("--layout", default="ambix", help="audio channel layout (ambix, fuma, n3d, youtube-aac, ...)")
    parser.add_argument("--time", type=float, default=None, help="window start in seconds (default: the middle)")
    parser.add_argument("--grid", default="36x9", help="azimuths x elevations (azimuths a multiple of 4)")
    parser.add_argument("--fov-deg", type=float, default=60.0)
    parser.add_argument("--score", choices=SCORES, default=SCORES[0],
                        help="spatial: the crop's video picks its own audio rotation among four (default); "
                             "alignment: the crop's alignment with its own audio")
    parser.add_argument("--out", type=Path, default=None,
                        help="PNG to write (default: VIDEO stem + -localization.png in the current folder; "
                             "never beside the video). Frames are decoded at the model's equirect width and "
                             "scored with gnomonic crops at every grid direction.")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    parser.add_argument("--cache", type=Path, help="(unused: kept for scripts) ")
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    try:
        n_az, n_el = (int(x) for x in args.grid.lower().split("x"))
    except ValueError:
        raise InputError(f"--grid {args.grid!r}: expected AZxEL, e.g. 36x9") from None
    localize_file(args.checkpoint, args.video, audio=args.audio, layout=args.layout, time_s=args.time,
                  grid=(n_az, n_el), fov_deg=args.fov_deg, score=args.score, out=args.out, device=args.device,
                  overwrite=args.overwrite)
    return 0
