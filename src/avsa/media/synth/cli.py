"""``avsa synth``: write a synthetic 360° audio-visual world.

    avsa synth --out DIR --videos N [--seed S] [--duration 10] [--width 512]
               [--convention ambix|fuma|n3d|youtube-aac|stereo-upmix|swapped]
               [--projection equirect|eac] [--audio-codec flac|opus|pcm|aac] [--jobs J]

Writes ``DIR/synth-<i>.mp4`` + ``DIR/synth-<i>.json`` (ground truth), the
split lists ``DIR/train.txt`` / ``DIR/test.txt`` (every fifth video is test)
and ``DIR/synth-config.json`` (the resolved configuration). Scenes cycle
through :data:`~avsa.media.synth.scenes.SCENES` so classes stay balanced.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from avsa.errors import AvsaError, InputError
from avsa.media.synth.config import CONVENTIONS, PROJECTIONS, SynthConfig
from avsa.media.synth.scenes import video_seed, world_scene, world_split
from avsa.media.synth.world import AUDIO_CODECS, render_scene, write_scene
from avsa.media.workers import spawn_context

def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--videos", required=True, type=int, help="number of videos")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds per video")
    parser.add_argument("--width", type=int, default=defaults.width, help="equirect width (height = width/2)")
    parser.add_argument("--fps", type=float, default=defaults.fps)
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate)
    parser.add_argument("--convention", choices=CONVENTIONS, default="ambix", help="audio channel convention")
    parser.add_argument("--projection", choices=PROJECTIONS, default="equirect", help="video projection")
    parser.add_argument("--audio-codec", choices=tuple(AUDIO_CODECS), default=None,
                        help="default flac (aac for --convention youtube-aac)")
    parser.add_argument("--max-sources", type=int, default=defaults.max_sources)
    parser.add_argument("--max-distractors", type=int, default=defaults.max_distractors)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")


def _one(config: SynthConfig, out: Path, index: int, seed: int, codec: str) -> str:
    stem = f"synth-{index:05d}"
    synth = render_scene(config, seed, scene=world_scene(index))
    write_scene(synth, out, stem, config=config, audio_codec=codec)
    return stem


def run(args: argparse.Namespace) -> int:
    if args.videos < 1:
        raise InputError(f"--videos must be at least 1, got {args.videos}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    config = SynthConfig(duration_s=args.duration, width=args.width, fps=args.fps,
                         sample_rate=args.sample_rate, convention=args.convention,
                         projection=args.projection, max_sources=args.max_sources,
                         max_distractors=args.max_distractors)
    codec = args.audio_codec or ("aac" if args.convention == "youtube-aac" else "flac")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth-config.json").write_text(
        json.dumps({"seed": args.seed, "videos": args.videos, "audio_codec": codec, **asdict(config)}, indent=1))
    tasks = [(i, video_seed(args.seed, i)) for i in range(args.videos)]
    done: dict[int, str] = {}
    failures: list[tuple[int, str]] = []
    with tqdm(total=len(tasks), desc="avsa synth", unit="video") as bar:
        if args.jobs == 1:
            for i, seed in tasks:
                try:
                    done[i] = _one(config, out, i, seed, codec)
                except AvsaError as exc:
                    failures.append((i, str(exc)))
                bar.update()
        else:
            with ProcessPoolExecutor(args.jobs, mp_context=spawn_context()) as pool:
                futures = {pool.submit(_one, config, out, i, seed, codec): i for i, seed in tasks}
                for future in as_completed(futures):
                    try:
                        done[futures[future]] = future.result()
                    except AvsaError as exc:
                        failures.append((futures[future], str(exc)))
                    bar.update()
    for split in ("train", "test"):
        (out / f"{split}.txt").write_text("".join(f"{done[i]}\n" for i in sorted(done) if world_split(i) == split))
    print(f"wrote {len(done)} videos to {out}" + (f"; {len(failures)} failed:" if failures else ""))
    for i, problem in failures:
        print(f"  video {i}: {problem}")
    return 1 if failures else 0
