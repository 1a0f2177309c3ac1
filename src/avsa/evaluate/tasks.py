"""Every evaluation of a checkpoint by task name (``avsa evaluate``), saved and printed as a table.

:func:`evaluate_tasks` runs the tasks of :data:`ALL_TASKS` on a loaded
checkpoint, writes each result to ``<run>/eval/<name>.json`` as soon as it is
measured (:mod:`avsa.evaluate.results`) and prints the table
(:func:`print_results`); ``avsa report`` gathers them into the paper's tables.
"""

from __future__ import annotations

import os
from pathlib import Path

from avsa.errors import InputError
from avsa.evaluate.downstream import TASKS, ProbeSettings, check_compatible, evaluate_downstream
from avsa.inference.pretrained import Pretrained, load_pretrained
from avsa.evaluate.results import PERCENT_METRICS, Result, save_result
from avsa.train.checkpoint import run_of

ALL_TASKS = ("indomain",) + TASKS + ("starss23",)


def evaluate_tasks(checkpoint: str | os.PathLike | Pretrained, tasks: list[str], *, root: Path | None = None,
                   cache: str | None = None, split: int | None = None, mode: str = "linear", clips: int = 4,
                   epochs: int = 50, seed: int = 0, out: Path | None = None, device: str | None = None,
                   small: bool = False) -> list[Result]:
    """Evaluate a checkpoint on ``tasks``, save every result and print the table.

    Parameters
    ----------
    checkpoint : path or Pretrained
        A checkpoint ``.pt``, a run folder, or an already loaded checkpoint.
    tasks : list of str
        Names of :data:`ALL_TASKS`, evaluated in this order.
    root : Path, optional
        Dataset folder of a real task (official layout); needed by ``starss23``.
    cache : str, optional
        Training cache of ``indomain`` (default: the run's).
    split : int, optional
        UCF101/HMDB51 split 1-3, TAU fold 1, EigenScape fold 1-4 (default: all pooled).
    mode : {"linear", "finetune"}
        Frozen encoder + linear classifier, or full fine-tuning.
    clips : int
        Clips/windows per item of a real dataset.
    epochs : int
        Classifier epochs.
    seed : int
    out : Path, optional
        Run folder for ``eval/*.json`` (default: the checkpoint's).
    device : str, optional
    small : bool
        Synthetic tasks with few items (quick check).

    Returns
    -------
    list of Result
    """
    p = checkpoint if isinstance(checkpoint, Pretrained) else load_pretrained(checkpoint, device=device)
    out = out or run_of(p.checkpoint if isinstance(checkpoint, Pretrained) else checkpoint)
    for task in tasks:  # refuse an impossible task before any long work
        if task == "starss23" and root is None:
            raise InputError("--task starss23 needs --root (the STARSS23 folder)")
        if task not in ("indomain", "starss23"):
            check_compatible(p, task)
    settings = ProbeSettings(mode=mode, epochs=epochs, seed=seed)
    results = []
    reference = None  # an external result printed under the table (not measured here)
    for task in tasks:
        if task == "indomain":
            from avsa.evaluate.indomain import run_indomain

            new = list(run_indomain(p, cache or p.config.data.cache, seed=seed).values())
        elif task == "starss23":
            from avsa.evaluate.seld import DCASE2024_FOA_BASELINE, evaluate_localization, evaluate_seld

            new = evaluate_localization(p, root, windows_per_file=clips)
            for r in new:  # saved before the SELD head is trained
                save_result(out, r)
            new += evaluate_seld(p, root, epochs=epochs, seed=seed)
            reference = DCASE2024_FOA_BASELINE
        else:
            new = [evaluate_downstream(p, task, root=root, split=split, n_clips=clips, settings=settings,
                                       small=small)]
        for r in new:  # saved as soon as measured: a later failure loses nothing
            save_result(out, r)
        results += new
    print_results(results, out, reference=reference)
    return results


def print_results(results: list[Result], out: str | os.PathLike, *, reference: dict | None = None) -> None:
    """The table of ``results`` (value [95 % interval], chance, n), an external reference, and where they went."""
    print(f"\n{'result':<28} {'accuracy % [95% CI]':<24} {'chance %':>8} {'n':>6}")
    for r in results:
        chance = f"{100 * r.chance:.1f}" if r.chance is not None else "—"
        if r.metric.endswith("_deg"):  # an angle in degrees, not a percentage
            chance = f"{r.chance:.1f}" if r.chance is not None else "—"
            cell = r.cell(percent=False) + " deg"
        else:
            cell = r.cell(percent=r.metric in PERCENT_METRICS) + (" pts" if r.metric == "accuracy difference" else "")
        print(f"{r.task:<28} {cell:<24} {chance:>8} {r.n:>6}")
        if r.metric == "accuracy difference":  # AVSA decided by the sound: where, by crop kind
            for kind, part in r.details.get("per_kind", {}).items():
                print(f"  {kind + ' crops':<26} {100 * part['value']:.1f} pts = {100 * part['avsa']:.1f} - "
                      f"{100 * part['control']:.1f} (control)  n {part['n']}")
        for skipped in r.details.get("skipped", []):
            print(f"  skipped {skipped['item']}: {skipped['problem']}")
    if reference is not None:
        print(f"{'reference: DCASE2024 FOA':<28} F {100 * reference['f_score']:.1f} %, DOA error "
              f"{reference['doa_error_deg']:.1f} deg  ({reference['what']})")
    print(f"written to {Path(out) / 'eval'}")
