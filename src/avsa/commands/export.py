"""``avsa export``: a trained model as a shareable folder in the Hugging Face Hub layout.

::

    avsa export runs/demo --out models/demo [--overwrite]

Writes ``config.json``, ``model.safetensors`` and a model card ``README.md``
(:mod:`avsa.inference.hub`, :mod:`avsa.inference.card`); ``avsa.load(FOLDER)``
reads it back without unpickling anything. The card lists the results saved
in the run folder by ``avsa evaluate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.inference.model import save_pretrained


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="run folder, checkpoint .pt, or saved model folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder, replacing its config.json, model.safetensors, README.md")


def run(args: argparse.Namespace) -> int:
    folder = save_pretrained(args.checkpoint, args.out, overwrite=args.overwrite)
    print(f"wrote {folder} (config.json, model.safetensors, README.md)")
    return 0
