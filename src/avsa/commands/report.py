"""``avsa report``: paper-style tables and training curves from run folders.

::

    avsa report runs/baseline runs/foa-iv-objects runs/stereo-icf --out report
    avsa report runs/a runs/b --out report --name "log-mel" --name "FOA-IV"

What the tables hold: :mod:`avsa.evaluate.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.evaluate.report import report
from avsa.media.outputs import check_output_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (rows, in this order)")
    parser.add_argument("--out", type=Path, required=True, help="report folder (report.md, CSVs, PNGs)")
    parser.add_argument("--name", action="append", default=None,
                        help="row label of each run, in order (repeat once per run; default: from its config)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out folder, replacing files of the same name (default: refuse)")


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out, overwrite=args.overwrite)
    report(args.runs, args.out, names=args.name)
    return 0
