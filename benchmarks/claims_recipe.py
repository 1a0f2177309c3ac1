"""Claims 1–3 with another training recipe: the small scale's runs with config overrides added.

    python benchmarks/claims_recipe.py OUT --seeds 0,1 [--cache CACHE] [key=value ...]

Trains and scores what ``avsa experiments paper --scale small --only claims`` does for claims 1–3 (no
stereo model, no Table I), every run with the given overrides, and writes ``OUT/claims.md``. Measured with
it (``data.crop_jitter_deg=0 model.direction_encoding=true model.relative_directions=true``):
docs/learning.md ("What the audio encoder sees").
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("overrides", nargs="*", help="training config overrides (key=value)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--cache", type=Path, default=None, help="a prepared world of the small scale to reuse")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    from avsa.experiments import SCALES, parse_seeds, run_paper

    scale = dataclasses.replace(SCALES["small"], overrides=tuple(args.overrides), stereo_seeds=0)
    run_paper(args.out, scale, cache=args.cache, only="claims", jobs=args.jobs, seeds=parse_seeds(args.seeds))


if __name__ == "__main__":  # the training workers are spawned: they import this file
    main()
