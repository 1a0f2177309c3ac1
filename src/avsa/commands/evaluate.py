"""``avsa evaluate``: in-domain and downstream accuracies of a checkpoint, with 95 % intervals.

::

    avsa evaluate runs/demo --task indomain                      # AVC/AVSA binary + contrastive
    avsa evaluate runs/demo --task synth-foa-scenes --task synth-video-motion
    avsa evaluate runs/stereo/checkpoints/avsa.pt --task tau-audio --root data/TAU-urban-audio-visual-scenes-2021-development
    avsa evaluate runs/demo --task ucf101 --root data/UCF101 --split 2 --mode finetune
    avsa evaluate runs/demo --task starss23 --root data/STARSS23      # heatmap peak vs labelled directions

Each result is written to ``<run>/eval/<name>.json`` (see :mod:`avsa.evaluate.results`)
and printed as a table; ``avsa report`` gathers them into the paper's tables.

The work is :func:`avsa.evaluate.tasks.evaluate_tasks`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.evaluate.probe import MODES
from avsa.evaluate.tasks import ALL_TASKS, evaluate_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint .pt or run folder")
    parser.add_argument("--task", action="append", required=True, choices=ALL_TASKS,
                        help="task to evaluate (repeat for several)")
    parser.add_argument("--root", type=Path, default=None, help="dataset folder of a real task (official layout)")
    parser.add_argument("--cache", default=None, help="training cache for indomain (default: the run's)")
    parser.add_argument("--split", type=int, default=None,
                        help="UCF101/HMDB51 split 1-3, TAU fold 1, EigenScape fold 1-4 (default: all pooled)")
    parser.add_argument("--mode", choices=MODES, default="linear",
                        help="frozen encoder + linear classifier, or full fine-tuning")
    parser.add_argument("--clips", type=int, default=4, help="clips/windows per item of a real dataset")
    parser.add_argument("--epochs", type=int, default=50, help="classifier epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run folder for eval/*.json (default: the checkpoint's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--small", action="store_true", help="synthetic tasks with few items (quick check)")


def run(args: argparse.Namespace) -> int:
    evaluate_tasks(args.checkpoint, args.task, root=args.root, cache=args.cache, split=args.split, mode=args.mode,
                   clips=args.clips, epochs=args.epochs, seed=args.seed, out=args.out, device=args.device,
                   small=args.small)
    return 0
