"""One synthetic 360° video: render (arrays) and write (MP4 + ground-truth JSON).

:func:`render_scene` is the reusable entry point (the synthetic
scene-classification task calls it with ``scene=``); :func:`write_scene`
stores a rendered scene as ``<stem>.mp4`` + ``<stem>.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.media.groundtruth import GroundTruth
from avsa.media.synth.config import SynthConfig
from avsa.media.synth.conventions import to_convention
from avsa.media.synth.eac import equirect_to_eac
from avsa.media.synth.render_audio import render_foa
from avsa.media.synth.render_video import render_frames
from avsa.media.synth.scenes import SceneLayout, sample_layout

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
