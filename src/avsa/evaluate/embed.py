"""``avsa embed``: embeddings of audio/video files with a trained checkpoint (OpenL3-style).

    avsa embed runs/demo FILES... --out emb/ [--modality audio|video|both] [--hop 0.1]

Writes ``<out>/<file stem>.npz`` with ``audio``/``video`` (T, dim) arrays and
their ``audio_timestamps``/``video_timestamps`` (window centres, seconds).
The Python API is :func:`avsa.evaluate.pretrained.load_pretrained` →
``Pretrained.audio_embedding`` / ``Pretrained.video_embedding``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from avsa.errors import AvsaError


def embed_file(p, path: Path, *, modality: str, layout: str, hop_s: float, video_hop_s: float,
               projection: str) -> dict[str, np.ndarray]:
    """Embeddings of one file; raises an AvsaError naming the file when it cannot be used."""
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
        frames = io.read_frames(path, projection="auto" if projection == "equirect" else "equirectangular")
        emb, t = p.video_embedding(frames, info.fps, hop_s=video_hop_s, projection_type=projection)
        out["video"], out["video_timestamps"] = emb, t
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint .pt or run folder")
    parser.add_argument("files", nargs="+", type=Path, help="audio or video files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .npz files")
    parser.add_argument("--modality", choices=("audio", "video", "both"), default="audio")
    parser.add_argument("--layout", choices=("auto", "foa", "stereo", "binaural", "mono"), default="auto",
                        help="audio channels: foa = 4-ch ambiX; auto decides by channel count")
    parser.add_argument("--hop", type=float, default=0.1, help="seconds between audio windows")
    parser.add_argument("--video-hop", type=float, default=0.5, help="seconds between video windows")
    parser.add_argument("--projection", choices=("perspective", "equirect"), default="perspective")
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    from avsa.evaluate.pretrained import load_pretrained

    p = load_pretrained(args.checkpoint, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in tqdm(args.files, desc="embed", unit="file"):
        try:
            arrays = embed_file(p, path, modality=args.modality, layout=args.layout, hop_s=args.hop,
                                video_hop_s=args.video_hop, projection=args.projection)
        except AvsaError as exc:
            failed.append((path, str(exc)))
            continue
        target = args.out / f"{path.stem}.npz"
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=args.out)
        os.close(fd)
        np.savez(tmp, **arrays)
        os.replace(tmp, target)
    done = len(args.files) - len(failed)
    print(f"embedded {done} of {len(args.files)} file(s) into {args.out}")
    for path, problem in failed:
        print(f"  skipped {problem}")
    return 0 if done else 1
