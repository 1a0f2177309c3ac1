"""``avsa embed``: embeddings of audio/video files with a trained model (OpenL3-style).

    avsa embed runs/demo FILES... --out emb/ [--modality audio|video|both] [--hop 0.1] [--overwrite]

What is written: :mod:`avsa.inference.embed` (:func:`~avsa.inference.embed.embed_files`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.inference.embed import embed_files
from avsa.inference.pretrained import INPUT_LAYOUTS, VIEWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="saved model folder (avsa export), run folder or checkpoint .pt")
    parser.add_argument("files", nargs="+", type=Path, help="audio or video files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .npz files")
    parser.add_argument("--modality", choices=("audio", "video", "both"), default="audio")
    parser.add_argument("--layout", choices=("auto", *INPUT_LAYOUTS), default="auto",
                        help="audio channels: foa = 4-ch ambiX; auto decides by channel count")
    parser.add_argument("--hop", type=float, default=0.1, help="seconds between audio windows")
    parser.add_argument("--video-hop", type=float, default=0.5, help="seconds between video windows")
    parser.add_argument("--view", choices=VIEWS, default="around",
                        help="video view: around = mean embedding of four 60° gnomonic crops on the horizon, "
                             "90° apart, of the equirect frame (default, as in training); crop = the one crop "
                             "straight ahead; perspective = centre square (ordinary, non-360° video). "
                             "Frames are decoded one at a time at the model's resolution.")
    parser.add_argument("--overwrite", action="store_true", help="replace existing .npz files")
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    failed = embed_files(args.checkpoint, args.files, args.out, modality=args.modality, layout=args.layout,
                         hop_s=args.hop, video_hop_s=args.video_hop, view=args.view, device=args.device,
                         overwrite=args.overwrite)
    return 0 if len(failed) < len(args.files) else 1
