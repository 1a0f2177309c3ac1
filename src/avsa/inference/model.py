"""The public Python API: ``avsa.load(path)`` → a :class:`Model` that embeds, localizes and saves.

::

    import avsa

    model = avsa.load("runs/demo")                     # a run folder, a checkpoint .pt or a saved model folder
    emb, times = model.embed_audio(foa, 48000)          # foa (4, N) ambiX → (T, D), window centres (s)
    emb, times = model.embed_video("clip.mp4")          # 360° video → (W, D), window centres (s)
    heat = model.localize(frames, foa, 48000)           # scores over a grid of directions
    model.save_pretrained("my_model")                   # config.json, model.safetensors, README.md

Audio is first-order Ambisonics in the ambiX convention: ``(4, N)`` channels
in ACN order (W, Y, Z, X) with SN3D gains, at any sample rate (resampled to
the model's). Video is equirectangular 360° frames ``uint8 (T, H, W, 3)`` or a
file. Angles are radians, azimuth positive to the left, elevation up.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from scipy.signal import resample_poly

from avsa.errors import AvsaError, InputError
from avsa.inference import hub
from avsa.inference.card import model_card
from avsa.inference.pretrained import Pretrained, load_pretrained
from avsa.train.checkpoint import EVAL_DIR, run_of
from avsa.train.config import TrainConfig


@dataclass(frozen=True)
class Heatmap:
    """Scores of a model over a grid of directions (:meth:`Model.localize`).

    Attributes
    ----------
    scores : np.ndarray float32, (n_elevation, n_azimuth)
        Higher = the sound is more likely there.
    azimuth, elevation : np.ndarray float64, (n_elevation, n_azimuth)
        Radians; azimuth descends left → right like the equirect frame, elevation top → bottom.
    """

    scores: np.ndarray
    azimuth: np.ndarray
    elevation: np.ndarray

    def peak(self) -> tuple[float, float]:
        """(azimuth, elevation) in radians of the highest score."""
        i = int(np.argmax(self.scores))
        return float(self.azimuth.reshape(-1)[i]), float(self.elevation.reshape(-1)[i])


class Model:
    """A trained avsa model: audio and video encoders with the front-ends they were trained with.

    Made by :func:`load`. ``pretrained`` is the underlying
    :class:`~avsa.inference.pretrained.Pretrained` (batched encoders, alignment scores).
    """

    def __init__(self, pretrained: Pretrained):
        self.pretrained = pretrained

    def __repr__(self) -> str:
        d = self.config.data
        return (f"avsa.Model(stage={self.stage!r}, audio={d.format}+{d.features}, dim={self.dim}, "
                f"source={self.pretrained.checkpoint!r})")

    @property
    def config(self) -> TrainConfig:
        """The resolved training configuration."""
        return self.pretrained.config

    @property
    def stage(self) -> str:
        """``"avsa"`` or ``"avc"``: the training stage the weights come from."""
        return self.pretrained.stage

    @property
    def dim(self) -> int:
        """D, the size of an embedding."""
        return self.pretrained.dim

    @property
    def sample_rate(self) -> int:
        """Hz the model hears at (inputs of any rate are resampled to it)."""
        return self.pretrained.sample_rate

    @property
    def fps(self) -> float:
        """Frames per second the model sees (inputs are resampled to it)."""
        return float(self.config.data.fps)

    def embed_audio(self, foa, sample_rate: int, *, hop: float = 0.1,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Audio embeddings of 1-s windows every ``hop`` seconds, like ``openl3.get_audio_embedding``.

        Parameters
        ----------
        foa : np.ndarray or torch.Tensor, shape (4, N)
            First-order Ambisonics, ambiX convention: channels in ACN order
            (W, Y, Z, X), SN3D normalisation. Any float dtype.
        sample_rate : int
            Hz of ``foa``, any rate; resampled to the model's (:attr:`sample_rate`).
        hop : float, keyword-only
            Seconds between window starts.
        batch_size : int, keyword-only
            Windows per encoder call (memory does not grow with the recording's length).

        Returns
        -------
        embeddings : np.ndarray float32, shape (T, D)
        timestamps : np.ndarray float64, shape (T,)
            Window centres in seconds from the start of ``foa``.

        Raises
        ------
        InputError
            ``foa`` not of shape (4, N) (a (N, 4) array: pass its transpose), or not finite.
        """
        shape = tuple(foa.shape) if hasattr(foa, "shape") else np.shape(foa)
        if len(shape) != 2 or shape[0] != 4:
            hint = "; pass foa.T (soundfile and librosa give (N, 4))" if len(shape) == 2 and shape[1] == 4 else ""
            raise InputError(f"foa must have shape (4, N) (ambiX: W, Y, Z, X), got {shape}{hint}")
        return self.pretrained.audio_embedding(foa, sample_rate, hop_s=hop, layout="foa", batch_size=batch_size)

    def embed_video(self, frames_or_path, fps: float | None = None, *, hop: float = 0.5, view: str = "around",
                    fov_deg: float = 60.0, azimuth_deg: float = 0.0, elevation_deg: float = 0.0,
                    batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Video embeddings of windows of the model's frame count, every ``hop`` seconds.

        Parameters
        ----------
        frames_or_path : np.ndarray uint8 (T, H, W, 3), or a path
            Equirectangular 360° frames, or a video file (decoded a frame at a
            time and downscaled to the model's equirect width right away, so
            memory does not grow with its length or resolution).
        fps : float, optional
            Frame rate of ``frames`` (required for an array; ignored for a file).
        hop : float, keyword-only
            Seconds between window starts (rounded to whole frames at the model's rate).
        view : {"around", "crop", "perspective"}, keyword-only
            ``around`` (default): the mean embedding of four gnomonic crops of
            ``fov_deg`` at azimuths 0°, 90°, 180°, −90° on the horizon, as an
            AVSA training clip sees a 360° video; ``crop``: one crop at
            (``azimuth_deg``, ``elevation_deg``); ``perspective``: the centre
            square of ordinary, non-360° video.
        fov_deg, azimuth_deg, elevation_deg : float, keyword-only
            Degrees.
        batch_size : int, keyword-only
            Windows per encoder call (each window is four crops for ``around``); peak memory grows with it.

        Returns
        -------
        embeddings : np.ndarray float32, shape (W, D)
        timestamps : np.ndarray float64, shape (W,)
            Window centres in seconds.
        """
        from avsa.inference.video import video_file_embedding

        view_args = dict(hop_s=hop, view=view, fov=math.radians(fov_deg), azimuth=math.radians(azimuth_deg),
                         elevation=math.radians(elevation_deg), batch_size=batch_size)
        if isinstance(frames_or_path, (str, os.PathLike)):
            return video_file_embedding(self.pretrained, frames_or_path, **view_args)
        if fps is None:
            raise InputError("embed_video of frames needs their fps")
        return self.pretrained.video_embedding(frames_or_path, fps, **view_args)

    def localize(self, frames, foa, sample_rate: int, *, fps: float | None = None, grid: tuple[int, int] = (36, 9),
                 fov_deg: float = 60.0, score: str = "spatial") -> Heatmap:
        """Where the model hears the sound: a score for each direction of a grid, for one window.

        Parameters
        ----------
        frames : np.ndarray uint8, shape (T, H, W, 3)
            Equirectangular 360° frames around the moment to localize; the
            model's ``n_frames`` frames at its rate are taken about their middle.
        foa : np.ndarray or torch.Tensor, shape (4, N)
            ambiX FOA (ACN order, SN3D) of at least the model's window (1 s)
            around the same moment; the window at its middle is used.
        sample_rate : int
            Hz of ``foa``, any rate.
        fps : float, optional, keyword-only
            Frame rate of ``frames``; default the model's.
        grid : (int, int), keyword-only
            Azimuths × elevations (azimuths a multiple of 4).
        fov_deg : float, keyword-only
            Field of view of the crop at each direction, degrees.
        score : {"spatial", "alignment"}, keyword-only
            As :func:`avsa.inference.localize.alignment_map`.

        Returns
        -------
        Heatmap
        """
        from avsa.inference.localize import alignment_map

        p = self.pretrained
        x = np.asarray(frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise InputError(f"frames must be uint8 (T, H, W, 3) equirectangular, got {x.shape} {x.dtype}")
        rate = self.fps
        fps = rate if fps is None else float(fps)
        middle = len(x) / fps / 2
        times = middle + (np.arange(p.n_frames) - p.n_frames / 2) / rate
        window = x[np.clip(np.round(times * fps).astype(int), 0, len(x) - 1)]
        audio = np.asarray(foa.detach().cpu() if isinstance(foa, torch.Tensor) else foa, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != 4 or not np.all(np.isfinite(audio)):
            raise InputError(f"foa must be finite, of shape (4, N) (ambiX: W, Y, Z, X), got {audio.shape}")
        if int(sample_rate) != p.sample_rate:
            g = math.gcd(int(sample_rate), p.sample_rate)
            audio = resample_poly(audio, p.sample_rate // g, int(sample_rate) // g, axis=-1).astype(np.float32)
        audio = torch.from_numpy(audio)
        n = p.sample_rate
        if audio.shape[-1] < n:
            audio = torch.nn.functional.pad(audio, (0, n - audio.shape[-1]))
        start = (audio.shape[-1] - n) // 2
        scores, az, el = alignment_map(p, torch.from_numpy(window).permute(0, 3, 1, 2), audio[:, start:start + n],
                                       grid=grid, fov=math.radians(fov_deg), score=score)
        return Heatmap(scores.numpy(), az.numpy().astype(np.float64), el.numpy().astype(np.float64))

    def save_pretrained(self, folder: str | os.PathLike, *, results=None, overwrite: bool = False) -> Path:
        """Save as a folder in the Hugging Face Hub layout: ``config.json``, ``model.safetensors``, ``README.md``.

        :func:`load` reads it back without unpickling anything, with identical
        weights and embeddings.

        Parameters
        ----------
        folder : path
            Created if missing; an existing non-empty folder needs ``overwrite``.
        results : mapping of task name to result, optional, keyword-only
            Results for the model card (``avsa.evaluate.results.Result`` objects
            or their dicts); default those saved in the run folder the model
            was loaded from (``RUN/eval/*.json``), or those it was saved with.
        overwrite : bool, keyword-only
            Write into a non-empty folder, replacing the three files.

        Returns
        -------
        Path of the folder.
        """
        return save_pretrained(self.pretrained, folder, results=results, overwrite=overwrite)


def load(path: str | os.PathLike, *, device: str | torch.device | None = None) -> Model:
    """Load a trained model.

    Parameters
    ----------
    path : path
        A saved model folder (``config.json`` + ``model.safetensors``, read
        without unpickling), a run folder of ``avsa train`` (its AVSA
        checkpoint, else AVC, else the last), or a checkpoint ``.pt``.
    device : str or torch.device, optional, keyword-only
        Default CUDA when available, else CPU.

    Returns
    -------
    Model
    """
    return Model(load_pretrained(path, device=device))


def save_pretrained(source, folder: str | os.PathLike, *, results: Mapping | None = None,
                    overwrite: bool = False) -> Path:
    """Save a model as a Hugging Face Hub style folder (see :meth:`Model.save_pretrained`).

    Parameters
    ----------
    source : Model, Pretrained, or path
        A loaded model, or what :func:`load` takes (a checkpoint, run folder or saved model folder).
    folder, results, overwrite
        As :meth:`Model.save_pretrained`.

    Returns
    -------
    Path of the folder.
    """
    if isinstance(source, Model):
        p = source.pretrained
    elif isinstance(source, Pretrained):
        p = source
    else:
        p = load_pretrained(source, device="cpu")
    info = dict(p.info)
    if results is not None:
        info["results"] = [_result_dict(r) for r in results.values()]
    elif not hub.is_saved_model(p.checkpoint):
        info["results"] = run_results(run_of(p.checkpoint))
    if "training" not in info:
        info["training"] = training_data(p.config)
    d = p.config.data
    front_end = {"audio_convention": hub.AUDIO_CONVENTION, "sample_rate": d.sample_rate, "window_s": d.window_s,
                 "audio_format": d.format, "audio_features": d.features, "normalized": p.mean is not None,
                 "fps": d.fps, "n_frames": d.n_frames, "crop_size": d.crop_size,
                 "equirect_width": p.equirect_width, "embedding_dim": p.dim}
    meta = hub.model_meta(p.config, p.stage, front_end=front_end, info=info)
    return hub.write_model_folder(folder, meta=meta, state=p.model.state_dict(), mean=p.mean, std=p.std,
                                  card=model_card(meta), overwrite=overwrite)


RESULT_FIELDS = ("task", "metric", "value", "low", "high", "chance", "n")
"""The fields of a saved evaluation result (``avsa.evaluate.results.Result``) a model card shows."""


def _result_dict(result) -> dict:
    data = asdict(result) if is_dataclass(result) else dict(result)
    return {key: data.get(key) for key in RESULT_FIELDS}


def run_results(run: str | os.PathLike) -> list[dict]:
    """The results saved in ``RUN/eval/*.json`` (the format of :mod:`avsa.evaluate.results`), as plain dicts.

    Files that are not results are skipped: a model card is written without them.
    """
    out = []
    for path in sorted((Path(run) / EVAL_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and all(key in data for key in ("task", "value", "low", "high")):
            out.append(_result_dict(data))
    return out


def training_data(config: TrainConfig) -> dict:
    """The cache a model was trained on, with its number of clips when the cache is here."""
    from avsa.media.cache import Cache

    d = config.data
    info = {"cache": d.cache, "split": d.split, "n_clips": None}
    try:
        info["n_clips"] = len(Cache(d.cache).clips(d.split)) if d.cache else None
    except (OSError, ValueError, AvsaError):  # a cache moved, edited or gone: the card says "not known"
        info["n_clips"] = None
    return info
