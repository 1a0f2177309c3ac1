"""Embeddings of audio/video files with a trained model, OpenL3-style (``avsa embed``).

    avsa embed runs/demo FILES... --out emb/ [--modality audio|video|both] [--hop 0.1] [--overwrite]

Writes ``<out>/<file stem>.npz`` (or, for inputs whose stems collide, a name
holding as much of their paths as tells them apart: ``e1__x.npz``,
``e2__x.npz``; see :func:`output_names`) with ``audio``/``video`` (T, dim) arrays and
their ``audio_timestamps``/``video_timestamps`` (window centres, seconds).
Existing ``.npz`` files are refused before anything is computed unless
``overwrite``; each file is written under a temporary name and renamed.

Video is streamed (:mod:`avsa.inference.video`): frames are decoded one at a
time at the model's rate and downscaled to its equirect width right away, so
memory does not depend on the file's length or resolution. The default view
of a 360° file, ``around``, is the mean embedding of four gnomonic crops on
the horizon 90° apart (as an AVSA training clip sees it).

The Python API is ``avsa.load(path)`` → ``Model.embed_audio`` / ``Model.embed_video``
(:mod:`avsa.inference.model`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from avsa.errors import AvsaError, InputError


def embed_file(p, path: Path, *, modality: str, layout: str, hop_s: float, video_hop_s: float,
               view: str = "around") -> dict[str, np.ndarray]:
    """Embeddings of one file; raises an AvsaError naming the file when it cannot be used.

    ``view`` is that of :meth:`~avsa.inference.pretrained.Pretrained.video_views`.
    """
    from avsa.inference.video import video_file_embedding
    from avsa.media import io

    out: dict[str, np.ndarray] = {}
    info = io.probe(path)
    if modality in ("audio", "both"):
        if not info.has_audio:
            raise AvsaError(f"{path}: no audio stream")
        raw_layout = {"foa": "ambix", "auto": "raw"}.get(layout, "raw")
        audio = io.read_audio(path, sample_rate=p.sample_rate, layout=raw_layout)
        emb, t = p.audio_embedding(audio, p.sample_rate, hop_s=hop_s, layout="foa" if layout == "foa" else
                                   ("auto" if layout == "auto" else layout))
        out["audio"], out["audio_timestamps"] = emb, t
    if modality in ("video", "both"):
        if not info.has_video:
            raise AvsaError(f"{path}: no video stream")
        emb, t = video_file_embedding(p, path, hop_s=video_hop_s, view=view)
        out["video"], out["video_timestamps"] = emb, t
    return out


def output_names(files: list[Path]) -> list[str]:
    """One distinct ``.npz`` file name per input file, the stem where it is unique.

    Inputs whose stems collide are named by their paths without the common
    leading folders, separators replaced by ``__`` (``e1/x.mp4``, ``e2/x.mp4``
    → ``e1__x``, ``e2__x``; ``x.mp4``, ``x.wav`` → ``x.mp4``, ``x.wav``).

    Raises
    ------
    InputError
        If one file is given twice, or two names still collide.
    """
    resolved = [Path(os.path.abspath(path)) for path in files]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise InputError(f"file(s) given more than once: {', '.join(twice)}")
    stems = [path.stem for path in resolved]
    names = []
    for path, stem in zip(resolved, stems):
        if stems.count(stem) == 1:
            names.append(f"{stem}.npz")
            continue
        clashing = [p for p, s in zip(resolved, stems) if s == stem]
        common = Path(os.path.commonpath([str(p.parent) for p in clashing]))
        relative = path.relative_to(common)
        same_folder_and_stem = [p for p in clashing if p.parent == path.parent]
        parts = relative.parts if len(same_folder_and_stem) > 1 else relative.with_suffix("").parts
        names.append("__".join(parts) + ".npz")
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise InputError("inputs would share an output file: " + "; ".join(
            f"{name} ← {', '.join(str(f) for f, n in zip(files, names) if n == name)}" for name in clashes))
    return names


def embed_files(checkpoint: str | os.PathLike, files: list[Path], out: Path, *, modality: str = "audio",
                layout: str = "auto", hop_s: float = 0.1, video_hop_s: float = 0.5, view: str = "around",
                device: str | None = None, overwrite: bool = False) -> list[tuple[Path, str]]:
    """``avsa embed``: write the embeddings of every file to ``out`` (see the module docstring); prints a summary.

    Arguments after ``out`` are those of :func:`embed_file`; ``device`` that of
    :func:`~avsa.inference.pretrained.load_pretrained` (``checkpoint`` may be
    a checkpoint, a run folder or a saved model folder). ``overwrite`` allows
    replacing existing ``.npz`` files.

    Raises
    ------
    InputError
        Before any work, if an output file exists and ``overwrite`` is false.

    Returns
    -------
    list of (Path, str)
        The files that could not be used, with the problem.
    """
    from avsa.inference.pretrained import load_pretrained

    from avsa.media.outputs import check_output, safe_output

    names = output_names(files)
    existing = [str(out / name) for name in names if (out / name).exists() and not overwrite]
    if existing:
        raise InputError(f"{len(existing)} output file(s) exist already ({', '.join(existing[:3])}"
                         f"{', ...' if len(existing) > 3 else ''}); pass --overwrite to replace them")
    for name in names:
        check_output(out / name, overwrite=overwrite)
    p = load_pretrained(checkpoint, device=device)
    failed = []
    for path, name in zip(tqdm(files, desc="embed", unit="file"), names):
        try:
            arrays = embed_file(p, path, modality=modality, layout=layout, hop_s=hop_s,
                                video_hop_s=video_hop_s, view=view)
        except AvsaError as exc:
            failed.append((path, str(exc)))
            continue
        with safe_output(out / name, overwrite=overwrite) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)
    done = len(files) - len(failed)
    print(f"embedded {done} of {len(files)} file(s) into {out}")
    for path, problem in failed:
        print(f"  skipped {problem}")
    return failed
