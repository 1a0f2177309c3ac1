"""One synthetic 360° video: render (arrays) and write (MP4 + ground-truth JSON).

:func:`render_scene` is the reusable entry point (the synthetic
scene-classification task calls it with ``scene=``); :func:`write_scene`
stores a rendered scene as ``<stem>.mp4`` + ``<stem>.json``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avsa.errors import AvsaError, InputError

from avsa.media.groundtruth import GroundTruth
from avsa.media.synth.config import SynthConfig
from avsa.media.synth.conventions import to_convention
from avsa.media.synth.eac import equirect_to_eac
from avsa.media.synth.render_audio import render_foa
from avsa.media.synth.render_video import render_frames
from avsa.media.synth.scenes import SceneLayout, sample_layout, video_seed, world_scene, world_split
from avsa.media.workers import spawn_context

#: audio codec name of the CLI → PyAV encoder used by ``write_av``
AUDIO_CODECS = {"flac": "flac", "opus": "opus", "pcm": "pcm_s16le", "aac": "aac"}


@dataclass
class SynthScene:
    """A rendered synthetic video.

    Attributes
    ----------
    frames : np.ndarray, uint8, shape (T, H, W, 3)
        Equirectangular frames (also when the file is written as EAC).
    foa : np.ndarray, float32, shape (4, N)
        ambiX / SN3D sound field.
    audio : np.ndarray, float32, shape (C, N)
        The sound field in ``config.convention`` (what the file holds).
    groundtruth : GroundTruth
    layout : SceneLayout
    """

    frames: np.ndarray
    foa: np.ndarray
    audio: np.ndarray
    groundtruth: GroundTruth
    layout: SceneLayout


def render_scene(config: SynthConfig, seed: int, *, scene: str | None = None) -> SynthScene:
    """Render one synthetic video in memory; same seed → identical arrays.

    Parameters
    ----------
    config : SynthConfig
    seed : int
    scene : str, optional
        One of :data:`avsa.media.synth.scenes.SCENES`; drawn from the seed
        when omitted.

    Returns
    -------
    SynthScene
    """
    layout = sample_layout(config, seed, scene=scene)
    frames = render_frames(layout, width=config.width, height=config.height)
    foa = render_foa(layout, config)
    gt = GroundTruth(
        seed=int(seed), scene=layout.scene.name, fps=float(config.fps), duration_s=float(config.duration_s),
        width=config.width, height=config.height, sample_rate=config.sample_rate,
        frame_times_s=layout.frame_times_s.copy(), objects=[o.track() for o in layout.objects],
        audio_convention=config.convention,
        video_projection="cubemap" if config.projection == "eac" else "equirectangular",
    )
    return SynthScene(frames, foa, to_convention(foa, config.convention), gt, layout)


def write_scene(synth: SynthScene, directory: str | os.PathLike, stem: str, *, config: SynthConfig,
                audio_codec: str = "flac", crf: int = 20) -> Path:
    """Write ``<directory>/<stem>.mp4`` (H.264 + audio) and ``<stem>.json``.

    Parameters
    ----------
    synth : SynthScene
    directory : path
    stem : str
    config : SynthConfig
        Frame rate, sample rate and projection of the file.
    audio_codec : {"flac", "opus", "pcm", "aac"}, keyword-only
    crf : int, keyword-only
        x264 quality.

    Returns
    -------
    Path of the MP4 file.
    """
    from avsa.media.io import write_av

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    video = Path(out) / f"{stem}.mp4"
    if config.projection == "eac":
        frames = np.stack([equirect_to_eac(f) for f in synth.frames])
        projection = "cubemap"
    else:
        frames, projection = synth.frames, "equirectangular"
    write_av(video, frames, config.fps, audio=synth.audio, sample_rate=config.sample_rate,
             audio_codec=AUDIO_CODECS[audio_codec], crf=crf, spherical=True, projection=projection,
             raw_audio_channels="5.1" if synth.audio.shape[0] == 6 else None)
    synth.groundtruth.save(out / f"{stem}.json")
    return video


def _write_video(config: SynthConfig, out: Path, index: int, seed: int, codec: str) -> str:
    stem = f"synth-{index:05d}"
    synth = render_scene(config, seed, scene=world_scene(index))
    write_scene(synth, out, stem, config=config, audio_codec=codec)
    return stem


def write_world(out: str | os.PathLike, *, videos: int, seed: int = 0, config: SynthConfig | None = None,
                audio_codec: str | None = None, jobs: int = 1) -> list[tuple[int, str]]:
    """Write a synthetic world (``avsa synth``): ``videos`` videos, their ground truth and split lists.

    Writes ``OUT/synth-<i>.mp4`` + ``OUT/synth-<i>.json``, the split lists
    ``OUT/train.txt`` / ``OUT/test.txt`` (:func:`~avsa.media.synth.scenes.world_split`)
    and ``OUT/synth-config.json`` (the resolved configuration); scenes cycle
    through :data:`~avsa.media.synth.scenes.SCENES` so classes stay balanced.
    Prints a progress bar and a summary.

    Parameters
    ----------
    out : path
    videos : int, keyword-only
        Number of videos (>= 1).
    seed : int, keyword-only
        Base seed; video i renders with ``video_seed(seed, i)``.
    config : SynthConfig, keyword-only
        Default ``SynthConfig()``.
    audio_codec : {"flac", "opus", "pcm", "aac"}, keyword-only
        Default flac (aac for the ``youtube-aac`` convention).
    jobs : int, keyword-only
        Parallel processes.

    Returns
    -------
    list of (int, str)
        The videos that failed, with the problem (empty when all were written).
    """
    if videos < 1:
        raise InputError(f"--videos must be at least 1, got {videos}")
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    config = config or SynthConfig()
    codec = audio_codec or ("aac" if config.convention == "youtube-aac" else "flac")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth-config.json").write_text(
        json.dumps({"seed": seed, "videos": videos, "audio_codec": codec, **asdict(config)}, indent=1))
    tasks = [(i, video_seed(seed, i)) for i in range(videos)]
    done: dict[int, str] = {}
    failures: list[tuple[int, str]] = []
    with tqdm(total=len(tasks), desc="avsa synth", unit="video") as bar:
        if jobs == 1:
            for i, video in tasks:
                try:
                    done[i] = _write_video(config, out, i, video, codec)
                except AvsaError as exc:
                    failures.append((i, str(exc)))
                bar.update()
        else:
            with ProcessPoolExecutor(jobs, mp_context=spawn_context()) as pool:
                futures = {pool.submit(_write_video, config, out, i, video, codec): i for i, video in tasks}
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
    return failures
