"""``avsa check PATH...``: the paper's ambisonic validity test per file or clip.

What it measures and what it cannot see: :mod:`avsa.media.check`; ``--av``:
:mod:`avsa.data.avcheck`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.errors import InputError
from avsa.data.avcheck import check_av
from avsa.media.check import check_validity
from avsa.media.outputs import check_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                        help="media files, folders, or a prepared cache")
    parser.add_argument("--tau", type=float, default=0.1, help="pass when |rho - 1| <= tau")
    parser.add_argument("--csv", type=Path, default=None, help="write the table as CSV here")
    parser.add_argument("--subset", choices=("all", "pass", "fail", "random"), default=None,
                        help="write this Table I clip list to --out")
    parser.add_argument("--seed", type=int, default=0, help="seed of --subset random")
    parser.add_argument("--out", type=Path, default=None, help="clip list written by --subset")
    parser.add_argument("--av", action="store_true",
                        help="audio-visual convention check of prepared caches (audio intensity vs detections)")
    parser.add_argument("--detections", default=None, help="with --av: detector folder (default: the only one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --csv / --out file (default: refuse)")


def run(args: argparse.Namespace) -> int:
    if args.subset and args.out is None:
        raise InputError("--subset needs --out LIST")
    for output in (args.csv, args.out):
        if output is not None:
            check_output(output, overwrite=args.overwrite)
    if args.av:
        check_av(list(args.paths), detections=args.detections)
        return 0
    check_validity(list(args.paths), tau=args.tau, csv=args.csv, subset_kind=args.subset, seed=args.seed, out=args.out)
    return 0
