"""``avsa evaluate``: in-domain and downstream accuracies of a checkpoint, with 95 % intervals.

::

    avsa evaluate runs/demo --task indomain                      # AVC/AVSA binary + contrastive
    avsa evaluate runs/demo --task synth-foa-scenes --task synth-video-motion
    avsa evaluate runs/stereo/checkpoints/avsa.pt --task tau-audio --root data/TAU-urban-audio-visual-scenes-2021-development
    avsa evaluate runs/demo --task ucf101 --root data/UCF101 --split 2 --mode finetune
    avsa evaluate runs/demo --task starss23 --root data/STARSS23      # heatmap peak vs labelled directions

Each result is written to ``<run>/eval/<name>.json`` (see :mod:`avsa.evaluate.results`)
and printed as a table; ``avsa report`` gathers them into the paper's tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.evaluate.downstream import TASKS

ALL_TASKS = ("indomain",) + TASKS + ("starss23",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint .pt or run folder")
    parser.add_argument("--task", action="append", required=True, choices=ALL_TASKS,
                        help="task to evaluate (repeat for several)")
    parser.add_argument("--root", type=Path, default=None, help="dataset folder of a real task (official layout)")
    parser.add_argument("--cache", default=None, help="training cache for indomain (default: the run's)")
    parser.add_argument("--split", type=int, default=None,
                        help="UCF101/HMDB51 split 1-3, TAU fold 1, EigenScape fold 1-4 (default: all pooled)")
    parser.add_argument("--mode", choices=("linear", "finetune"), default="linear",
                        help="frozen encoder + linear classifier, or full fine-tuning")
    parser.add_argument("--clips", type=int, default=4, help="clips/windows per item of a real dataset")
    parser.add_argument("--epochs", type=int, default=50, help="classifier epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run folder for eval/*.json (default: the checkpoint's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--small", action="store_true", help="synthetic tasks with few items (quick check)")


def run(args: argparse.Namespace) -> int:
    from avsa.evaluate.downstream import ProbeSettings, check_compatible, evaluate_downstream
    from avsa.train.checkpoint import run_of
    from avsa.evaluate.pretrained import load_pretrained
    from avsa.evaluate.results import save_result

    p = load_pretrained(args.checkpoint, device=args.device)
    out = args.out or run_of(args.checkpoint)
    for task in args.task:  # refuse an impossible task before any long work
        if task == "starss23" and args.root is None:
            from avsa.errors import InputError

            raise InputError("--task starss23 needs --root (the STARSS23 folder)")
        if task not in ("indomain", "starss23"):
            check_compatible(p, task)
    settings = ProbeSettings(mode=args.mode, epochs=args.epochs, seed=args.seed)
    results = []
    reference = None  # an external result printed under the table (not measured here)
    for task in args.task:
        if task == "indomain":
            from avsa.evaluate.indomain import run_indomain

            new = list(run_indomain(p, args.cache or p.config.data.cache, seed=args.seed).values())
        elif task == "starss23":
            from avsa.evaluate.starss23 import DCASE2024_FOA_BASELINE, evaluate_localization, evaluate_seld

            new = evaluate_localization(p, args.root, windows_per_file=args.clips)
            for r in new:  # saved before the SELD head is trained
                save_result(out, r)
            new += evaluate_seld(p, args.root, epochs=args.epochs, seed=args.seed)
            reference = DCASE2024_FOA_BASELINE
        else:
            new = [evaluate_downstream(p, task, root=args.root, split=args.split, n_clips=args.clips,
                                       settings=settings, small=args.small)]
        for r in new:  # saved as soon as measured: a later failure loses nothing
            save_result(out, r)
        results += new
    print(f"\n{'result':<28} {'accuracy % [95% CI]':<24} {'chance %':>8} {'n':>6}")
    for r in results:
        chance = f"{100 * r.chance:.1f}" if r.chance is not None else "—"
        if r.metric.endswith("_deg"):  # an angle in degrees, not a percentage
            chance = f"{r.chance:.1f}" if r.chance is not None else "—"
            cell = r.cell(percent=False) + " deg"
        else:
            cell = r.cell()
        print(f"{r.task:<28} {cell:<24} {chance:>8} {r.n:>6}")
        for skipped in r.details.get("skipped", []):
            print(f"  skipped {skipped['item']}: {skipped['problem']}")
    if reference is not None:
        print(f"{'reference: DCASE2024 FOA':<28} F {100 * reference['f_score']:.1f} %, DOA error "
              f"{reference['doa_error_deg']:.1f} deg  ({reference['what']})")
    print(f"written to {Path(out) / 'eval'}")
    return 0
