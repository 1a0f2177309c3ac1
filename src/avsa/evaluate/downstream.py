"""Downstream evaluation of a trained checkpoint: every task through one harness.

:func:`evaluate_downstream` turns a task name into items, turns each item into
the encoder inputs of the checkpoint's own front-ends (:class:`Pretrained`),
and runs :func:`avsa.evaluate.probe.run_probe` (frozen encoder + linear
classifier, or fine-tuning)::

    p = load_pretrained("runs/demo")
    result = evaluate_downstream(p, "synth-foa-scenes")            # a Result with its 95 % CI
    result = evaluate_downstream(p, "ucf101", root="data/UCF101", split=1, mode="finetune")

Tasks and what each encoder eats:

=======================  ==========  ==================================================
task                     encoder     input of one item (``n_clips`` windows of it)
=======================  ==========  ==================================================
synth-foa-scenes         audio       FOA scene → 1-s windows, the model's format/features
synth-binaural-scenes    audio       the same scenes at two ears (stereo/mono models)
synth-video-motion       video       one 8-frame perspective clip
eigenscape               audio       30-s FOA segment (channels W, Y, Z, X) → 1-s windows
tau-audio                audio       binaural 10-s segment → 1-s windows (stereo/mono models)
tau-video                video       10-s video → 8-frame clips, centre square
tau-fusion               both        audio and video embeddings concatenated
ucf101, hmdb51           video       8-frame clips at 16 fps, evenly spaced, centre square
=======================  ==========  ==================================================

An FOA-trained (``ambi``) model cannot take two-channel binaural audio: those
tasks raise :class:`InputError` before any work. EigenScape runs its four
cross-validation folds and pools the test predictions (every recording is
tested once) unless one fold is asked for. A file that cannot be read is
skipped and reported in ``Result.details["skipped"]``; the run goes on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avsa.errors import AvsaError, InputError
from avsa.evaluate.datasets.common import Item, clip_starts, read_item_audio, read_item_frames
from avsa.evaluate.intervals import accuracy_interval
from avsa.inference.pretrained import Pretrained
from avsa.evaluate.probe import ProbeResult, run_probe
from avsa.evaluate.results import Result

SYNTHETIC_TASKS = ("synth-foa-scenes", "synth-binaural-scenes", "synth-video-motion")
REAL_TASKS = ("eigenscape", "tau-audio", "tau-video", "tau-fusion", "ucf101", "hmdb51")
TASKS = SYNTHETIC_TASKS + REAL_TASKS
MODALITY = {"synth-foa-scenes": "audio", "synth-binaural-scenes": "audio", "synth-video-motion": "video",
            "eigenscape": "audio", "tau-audio": "audio", "tau-video": "video", "tau-fusion": "both",
            "ucf101": "video", "hmdb51": "video"}
BINAURAL_TASKS = ("synth-binaural-scenes", "tau-audio", "tau-fusion")


@dataclass
class ProbeSettings:
    """Classifier training of :func:`run_probe` (see there)."""

    mode: str = "linear"
    epochs: int = 50
    lr: float = 1e-2
    backbone_lr: float = 1e-4
    batch_size: int = 64
    seed: int = 0


@dataclass
class _Split:
    """Items of one train/test split and how to make their encoder inputs."""

    classes: tuple[str, ...]
    train: list[Item]
    test: list[Item]
    raw: Callable[[Item], object]  # item → decoded arrays (may raise AvsaError)
    protocol: str
    skipped: list[tuple[str, str]] = field(default_factory=list)


def result_name(task: str, mode: str, split: int | None = None) -> str:
    """``task`` + ``-finetune`` for fine-tuning + ``-split<k>``/``-fold<k>`` for one non-default split."""
    name = task + ("-finetune" if mode == "finetune" else "")
    if task == "eigenscape" and split is not None:
        return f"{name}-fold{split}"
    return name + (f"-split{split}" if split not in (None, 1) else "")


def check_compatible(p: Pretrained, task: str) -> None:
    """Raise :class:`InputError` when the checkpoint's audio format cannot take the task's audio."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose from {', '.join(TASKS)} (or indomain)")
    if task in BINAURAL_TASKS and p.fmt == "ambi":
        raise InputError(f"task {task!r} has two-channel binaural audio, but {p.checkpoint} was trained on "
                         "4-channel FOA (format ambi); use a stereo- or mono-trained checkpoint")


# ------------------------------------------------------------------ inputs
def audio_clips(p: Pretrained, audio: torch.Tensor, *, layout: str, n_clips: int | None) -> torch.Tensor:
    """Encoder inputs ``(n, C', 100, 128)`` of 1-s windows of ``audio (C, N)`` at the model's rate.

    ``layout`` ``"foa"`` (ambiX W, Y, Z, X) is formatted as in training; ``"binaural"``
    (L, R) goes to a stereo model as is and to a mono model as the mean of both
    ears. ``n_clips`` evenly spaced windows (``None``: consecutive windows).
    """
    n = p.sample_rate
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.shape[-1] < n:
        audio = torch.nn.functional.pad(audio, (0, n - audio.shape[-1]))
    if n_clips is None:
        starts = np.arange(0, audio.shape[-1] - n + 1, n)
    else:
        starts = clip_starts(audio.shape[-1], n, n_clips)
    windows = torch.stack([audio[:, s:s + n] for s in starts])  # (W, C, n)
    if layout == "foa":
        return p.foa_input(windows).cpu()
    if p.fmt == "stereo":
        return p.audio_input(windows).cpu()
    if p.fmt == "mono":
        return p.audio_input(windows.mean(-2, keepdim=True)).cpu()
    raise InputError(f"a {p.fmt!r}-format model cannot take {layout} audio")


def video_clips(p: Pretrained, frames: np.ndarray, *, fps: float, n_clips: int) -> torch.Tensor:
    """Encoder inputs ``(n, 3, T, S, S)`` of ``n_clips`` evenly spaced clips of ordinary (perspective) video."""
    span = p.n_frames / float(p.config.data.fps)
    duration = frames.shape[0] / fps
    hop = max((duration - span) / max(n_clips - 1, 1), 1.0 / fps)
    inputs, _ = p.video_clips(frames, fps, hop_s=hop, projection_type="perspective")
    keep = np.unique(np.linspace(0, inputs.shape[0] - 1, n_clips).round().astype(int))
    return inputs[torch.as_tensor(keep)].cpu()


# ------------------------------------------------------------------- tasks
@functools.lru_cache(maxsize=2)
def _synthetic_task(task: str, seed: int, crop_size: int, small: bool, test_per_class: int | None):
    """The rendered task, kept for the next checkpoint evaluated in this process (it is deterministic)."""
    from avsa.evaluate.synthetic import make_task

    return make_task(task, seed=seed, crop_size=crop_size, small=small, test_per_class=test_per_class)


def _synthetic(p: Pretrained, task: str, seed: int, small: bool, test_per_class: int | None = None) -> _Split:
    t = _synthetic_task(task, seed, p.crop_size, small, test_per_class)
    if task == "synth-video-motion":
        def raw(item):
            return p.video_input(torch.as_tensor(t.data[item.id])).cpu()  # (1, 3, T, S, S)
    else:
        layout = "binaural" if task == "synth-binaural-scenes" else "foa"
        if t.sample_rate != p.sample_rate:
            raise InputError(f"{task} is rendered at {t.sample_rate} Hz; the model expects {p.sample_rate} Hz")

        def raw(item):
            windows = torch.as_tensor(t.data[item.id])  # (W, C, N) 1-s windows
            return audio_clips(p, windows.permute(1, 0, 2).flatten(1), layout=layout, n_clips=None)
    return _Split(t.classes, list(t.train), list(t.test), raw, f"synthetic {task} (seed {seed})")


def _real(p: Pretrained, task: str, root: Path, split: int, n_clips: int, segment_s: float) -> _Split:
    from avsa.evaluate import datasets

    fps = float(p.config.data.fps)

    def audio_of(item, layout):
        channels = 4 if layout == "foa" else 2
        return audio_clips(p, read_item_audio(item, sample_rate=p.sample_rate, channels=channels),
                           layout=layout, n_clips=n_clips)

    def video_of(item):
        return video_clips(p, read_item_frames(item, fps=fps), fps=fps, n_clips=n_clips)

    if task == "eigenscape":
        t, _ = datasets.load_eigenscape(root, fold=split, folds_path=datasets.eigenscape_folds_path(root),
                                       segment_s=segment_s)
        raw = lambda item: audio_of(item, "foa")  # noqa: E731
    elif task.startswith("tau-"):
        modality = {"tau-audio": "audio", "tau-video": "video", "tau-fusion": "both"}[task]
        t = datasets.load_tau(root, fold=split, modality=modality)
        if modality == "audio":
            raw = lambda item: audio_of(item, "binaural")  # noqa: E731
        elif modality == "video":
            raw = video_of
        else:
            def raw(item):
                a, v = audio_of(item, "binaural"), video_of(item)
                k = min(len(a), len(v))
                return v[:k], a[:k]
    elif task == "ucf101":
        t, raw = datasets.load_ucf101(root, split=split), video_of
    elif task == "hmdb51":
        t, raw = datasets.load_hmdb51(root, split=split), video_of
    else:
        raise InputError(f"unknown task {task!r}")
    return _Split(t.classes, list(t.train), list(t.test), raw, t.protocol)


def _encoders(p: Pretrained, task: str) -> list[torch.nn.Module]:
    modality = MODALITY[task]
    if modality == "audio":
        return [p.model.audio_encoder]
    if modality == "video":
        return [p.model.video_encoder]
    return [p.model.video_encoder, p.model.audio_encoder]


def _decode_all(split: _Split, *, progress: bool, budget_bytes: int) -> dict[str, object]:
    """Decode every item once (skipping and recording bad ones); keep inputs while they fit the budget."""
    kept: dict[str, object] = {}
    used = 0
    for part in ("train", "test"):
        good = []
        for item in tqdm(getattr(split, part), desc=f"decode {part}", unit="item", disable=not progress):
            try:
                x = split.raw(item)
            except AvsaError as exc:
                split.skipped.append((item.id, str(exc)))
                continue
            good.append(item)
            size = sum(t.numel() * t.element_size() for t in (x if isinstance(x, tuple) else (x,)))
            if used + size <= budget_bytes:
                kept[item.id] = x
                used += size
        setattr(split, part, good)
    if not split.train or not split.test:
        raise AvsaError(f"no readable {'training' if not split.train else 'test'} items left "
                        f"({len(split.skipped)} skipped, first: {split.skipped[:1]})")
    return kept


def _probe(p: Pretrained, task: str, split: _Split, settings: ProbeSettings, *, progress: bool,
           budget_bytes: int) -> ProbeResult:
    kept = _decode_all(split, progress=progress, budget_bytes=budget_bytes)

    def inputs(item):
        x = kept.get(item.id)
        return split.raw(item) if x is None else x

    return run_probe(_encoders(p, task), split.train, split.test, inputs, n_classes=len(split.classes),
                     mode=settings.mode, epochs=settings.epochs, lr=settings.lr, backbone_lr=settings.backbone_lr,
                     batch_size=settings.batch_size, seed=settings.seed, device=p.device, progress=progress)


def _to_result(name: str, task: str, r: ProbeResult, split: _Split, *, classes, p: Pretrained,
               settings: ProbeSettings, extra: dict | None = None) -> Result:
    acc = r.item_accuracy
    details = {
        "mode": settings.mode, "protocol": split.protocol, "classes": list(classes),
        "clip_accuracy": {"value": r.clip_accuracy.estimate, "low": r.clip_accuracy.low,
                          "high": r.clip_accuracy.high, "n": r.n_clips},
        "video_accuracy" if MODALITY[task] != "audio" else "item_accuracy":
            {"value": acc.estimate, "low": acc.low, "high": acc.high, "n": r.n_items},
        "per_class_accuracy": [None if np.isnan(v) else float(v) for v in r.per_class_accuracy],
        "confusion": r.confusion.tolist(), "n_train": len(split.train), "epochs": settings.epochs,
        "item_ids": list(r.item_ids), "groups": [i.group for i in split.test],
        "item_correct": [int(pred == i.label) for pred, i in zip(r.item_predictions, split.test)],
        "skipped": [{"item": i, "problem": m} for i, m in split.skipped],
    }
    details.update(extra or {})
    return Result(task=name, value=float(acc.estimate), low=float(acc.low), high=float(acc.high), n=r.n_items,
                  n_groups=acc.n_groups, chance=1.0 / len(classes), checkpoint=p.checkpoint, details=details)


def evaluate_downstream(p: Pretrained, task: str, *, root: str | os.PathLike | None = None,
                        split: int | None = None, n_clips: int = 4, settings: ProbeSettings | None = None,
                        small: bool = False, test_per_class: int | None = None, progress: bool = True,
                        segment_s: float = 30.0, budget_bytes: int = 4 << 30) -> Result:
    """Probe (or fine-tune) the checkpoint on one downstream task.

    Parameters
    ----------
    p : Pretrained
    task : str
        One of :data:`TASKS`.
    root : path-like
        Dataset folder (real tasks only), in its official layout.
    split : int, optional
        UCF101/HMDB51 split (1–3, default 1), TAU fold (1), EigenScape fold
        (1–4; default: all four pooled).
    n_clips : int
        Windows/clips per item for real datasets (synthetic scenes use all their 1-s windows).
    settings : ProbeSettings
    small : bool
        Synthetic tasks with few items (tests).
    test_per_class : int, optional
        Synthetic tasks: test items per class instead of the task's default (the training items stay).
    progress : bool
    segment_s : float
        EigenScape segment length in seconds (the paper: 30).
    budget_bytes : int
        Decoded inputs kept in memory up to this size; the rest is decoded again when needed.

    Returns
    -------
    Result
        ``value`` = item (video) accuracy with its 95 % interval over ``Item.group``;
        ``details``: clip accuracy, per-class accuracy, confusion, skipped files.
    """
    settings = settings or ProbeSettings()
    check_compatible(p, task)
    if task in SYNTHETIC_TASKS:
        s = _synthetic(p, task, settings.seed, small, test_per_class)
        r = _probe(p, task, s, settings, progress=progress, budget_bytes=budget_bytes)
        return _to_result(result_name(task, settings.mode), task, r, s, classes=s.classes, p=p, settings=settings)
    if root is None:
        raise InputError(f"task {task!r} needs --root, the dataset folder")
    root = Path(root)
    if task == "eigenscape" and split is None:
        return _pooled_folds(p, root, n_clips, settings, progress=progress, budget_bytes=budget_bytes,
                             segment_s=segment_s)
    s = _real(p, task, root, split or 1, n_clips, segment_s)
    r = _probe(p, task, s, settings, progress=progress, budget_bytes=budget_bytes)
    return _to_result(result_name(task, settings.mode, split), task, r, s, classes=s.classes, p=p,
                      settings=settings, extra={"split": split or 1})


def _pooled_folds(p: Pretrained, root: Path, n_clips: int, settings: ProbeSettings, *, progress: bool,
                  budget_bytes: int, segment_s: float) -> Result:
    """EigenScape: every fold trained and tested; accuracy over all test items pooled."""
    from avsa.evaluate.datasets import eigenscape

    correct, groups, skipped, per_fold, classes, confusion = [], [], [], [], None, 0
    for fold in range(1, eigenscape.N_FOLDS + 1):
        s = _real(p, "eigenscape", root, fold, n_clips, segment_s)
        r = _probe(p, "eigenscape", s, settings, progress=progress, budget_bytes=budget_bytes)
        classes, confusion = s.classes, confusion + r.confusion
        labels = {i.id: i.label for i in s.test}
        correct += [int(pred == labels[i]) for i, pred in zip(r.item_ids, r.item_predictions)]
        groups += [i.group for i in s.test]
        skipped += s.skipped
        per_fold.append({"fold": fold, "value": r.item_accuracy.estimate, "low": r.item_accuracy.low,
                         "high": r.item_accuracy.high, "n": r.n_items})
    acc = accuracy_interval(np.array(correct, bool), groups=groups, seed=settings.seed)
    details = {"mode": settings.mode, "protocol": f"EigenScape, {eigenscape.N_FOLDS} folds pooled",
               "classes": list(classes), "per_fold": per_fold, "confusion": confusion.tolist(), "epochs": settings.epochs,
               "skipped": [{"item": i, "problem": m} for i, m in skipped]}
    return Result(task=result_name("eigenscape", settings.mode), value=float(acc.estimate), low=float(acc.low),
                  high=float(acc.high), n=len(correct), n_groups=acc.n_groups, chance=1.0 / len(classes),
                  checkpoint=p.checkpoint, details=details)
