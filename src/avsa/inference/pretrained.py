"""A trained checkpoint, loaded once, with the front-ends it was trained with.

:func:`load_pretrained` is the one way every evaluation (in-domain, embeddings,
localization, downstream probes) reads a checkpoint: the model in eval mode on
a device, plus the exact audio front-end of training (format, features and the
per-band normalisation saved in the checkpoint) and video front-end (crop
size, ImageNet normalisation)::

    p = load_pretrained("runs/demo/checkpoints/avsa.pt")   # or a run folder, or a saved model folder
    emb, t = p.audio_embedding(foa, 48000)            # (T, 512·width), (T,) seconds
    emb, t = p.video_embedding(frames, 30.0)           # 360° video: four crops around the horizon
    v, a = p.encode(video, audio)                      # batched encoder outputs
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

from avsa.data.augment import normalize_imagenet
from avsa.data.normalize import apply_stats
from avsa.data.samples import audio_features, audio_format
from avsa.errors import AvsaError, InputError
from avsa.spatial import ambisonics, projection
from avsa.spatial.features import feature_stack_mixed
from avsa.train.checkpoint import find_checkpoint, load_checkpoint, load_model
from avsa.train.config import TrainConfig


INPUT_LAYOUTS: dict[str, int] = {"foa": 4, "stereo": 2, "binaural": 2, "mono": 1}
"""The audio layouts :meth:`Pretrained.audio_windows` takes, with their channel counts (``auto`` picks one)."""


@dataclass
class Pretrained:
    """A loaded checkpoint (see :func:`load_pretrained`).

    Attributes
    ----------
    config : TrainConfig
        The run's resolved configuration.
    stage : {"avc", "avsa"}
    model : AVCModel or AVSAModel, in eval mode on ``device``
    mean, std : torch.Tensor (C_mel, 128) or None
        Log-mel normalisation of training (None: trained unnormalised).
    device : torch.device
    checkpoint : str
        Where it was loaded from (checkpoint file or saved model folder).
    equirect_width : int
        Width W (pixels) at which 360° frames are decoded for it (frames W × W/2; see
        :func:`default_equirect_width`).
    info : dict
        What is known of its making: ``commit``, ``step``, and for saved models
        ``training`` (cache, clips) and ``results`` (see :mod:`avsa.inference.hub`).
    """

    config: TrainConfig
    stage: str
    model: torch.nn.Module
    mean: torch.Tensor | None
    std: torch.Tensor | None
    device: torch.device
    checkpoint: str
    equirect_width: int = 512
    info: dict = field(default_factory=dict)

    # ----------------------------------------------------------------- shapes
    @property
    def sample_rate(self) -> int:
        return self.config.data.sample_rate

    @property
    def crop_size(self) -> int:
        return self.config.data.crop_size

    @property
    def n_frames(self) -> int:
        return self.config.data.n_frames

    @property
    def fmt(self) -> str:
        return self.config.data.format

    @property
    def features(self) -> str:
        return self.config.data.features

    @property
    def dim(self) -> int:
        """Size of the encoders' embeddings (512·width)."""
        return self.model.video_encoder.dim

    # ------------------------------------------------------------ front-ends
    def audio_input(self, formatted: torch.Tensor) -> torch.Tensor:
        """Features of formatted audio ``(..., C, N)`` → ``(..., C', 100, 128)``, normalised as in training."""
        x = audio_features(formatted.to(self.device, torch.float32), self.features, sample_rate=self.sample_rate)
        if self.mean is not None:
            x = apply_stats(x, self.mean, self.std)
        return x

    def foa_input(self, foa: torch.Tensor, azimuth=None, elevation=None) -> torch.Tensor:
        """Encoder input of FOA ``(..., 4, N)``: rotated so (azimuth, elevation) is front, formatted, featurised.

        ``azimuth`` and ``elevation`` (radians) broadcast with ``foa.shape[:-2]``.
        Every direction's features come from one analysis of each signal, as
        in training (:func:`~avsa.spatial.features.feature_stack_mixed` of the
        rotate-and-format matrices): equal to rotating, formatting and then
        featurising, up to rounding.
        """
        foa = torch.as_tensor(foa, dtype=torch.float32, device=self.device)
        if azimuth is None:
            return self.audio_input(audio_format(foa, self.fmt))
        az, el = torch.broadcast_tensors(torch.as_tensor(azimuth, dtype=torch.float64, device=self.device),
                                         torch.as_tensor(elevation, dtype=torch.float64, device=self.device))
        lead = torch.broadcast_shapes(foa.shape[:-2], az.shape)
        identity = torch.eye(4, dtype=torch.float64, device=self.device).expand(*az.shape, 4, 4)  # 4 "samples"
        mixing = audio_format(ambisonics.rotate_to_front(identity, az, el), self.fmt)  # (*az, C, 4)
        if foa.shape[:-2].numel() == 1:  # one signal heard from many directions (heatmaps): one analysis
            x = feature_stack_mixed(foa.reshape(4, -1), mixing.reshape(-1, *mixing.shape[-2:]), self.sample_rate,
                                    features=self.features)
        else:
            x = feature_stack_mixed(foa, mixing.unsqueeze(-3), self.sample_rate, features=self.features).squeeze(-4)
        x = x.reshape(*lead, *x.shape[-3:])
        if self.mean is not None:
            x = apply_stats(x, self.mean, self.std)
        return x

    def video_input(self, crops: torch.Tensor) -> torch.Tensor:
        """Encoder input of crops ``(..., T, 3, S, S)`` in 0..255 → ``(..., 3, T, S, S)`` normalised."""
        x = normalize_imagenet(crops.to(self.device, torch.float32) / 255.0, channel_dim=-3)
        return x.transpose(-4, -3).contiguous()

    # --------------------------------------------------------------- encoders
    @torch.no_grad()
    def encode(self, video: torch.Tensor | None, audio: torch.Tensor | None, *, batch_size: int = 64):
        """Encoder embeddings of ``video (N, 3, T, S, S)`` and/or ``audio (N, C, 100, 128)`` → (N, dim) each."""
        def run(encoder, x):
            if x is None:
                return None
            return torch.cat([encoder(x[i:i + batch_size].to(self.device)) for i in range(0, len(x), batch_size)])

        return run(self.model.video_encoder, video), run(self.model.audio_encoder, audio)

    def _heads(self, video_emb: torch.Tensor, audio_emb: torch.Tensor, directions: torch.Tensor | None):
        if self.stage == "avc":
            return self.model.heads(video_emb, audio_emb)
        return self.model.heads(video_emb, audio_emb, directions=directions)

    @torch.no_grad()
    def alignment(self, video_emb: torch.Tensor, audio_emb: torch.Tensor,
                  directions: torch.Tensor | None = None) -> torch.Tensor:
        """Alignment score of each crop with its own audio, from encoder embeddings ``(B, K, dim)`` → ``(B, K)``.

        AVC checkpoints: cos(ṽ_k, ã_k) of the two heads. AVSA checkpoints: the K
        crops of a clip go through the model's heads together (as in training);
        the score of crop k is the mean of cos(v̂_k, ṽ_k) and cos(â_k, ã_k).
        ``directions`` (B, K, 2), radians: the crop centres, needed by
        direction-encoding models.
        """
        e = self._heads(video_emb, audio_emb, directions)
        if self.stage == "avc":
            return (e.video * e.audio).sum(-1)
        return self.model.alignment(e)

    @torch.no_grad()
    def spatial_scores(self, video_emb: torch.Tensor, audio_emb: torch.Tensor,
                       directions: torch.Tensor | None = None) -> torch.Tensor:
        """Audio of each crop against the video of each crop of the same clip, ``(B, K audio, K video)``."""
        e = self._heads(video_emb, audio_emb, directions)
        if self.stage == "avc":
            return torch.einsum("bld,bjd->blj", e.audio, e.video)
        return self.model.spatial_scores(e)

    @torch.no_grad()
    def clip_scores(self, video_emb: torch.Tensor, audio_emb: torch.Tensor,
                    directions: torch.Tensor | None = None) -> torch.Tensor:
        """Audio of clip b's crop k against the video of clip c's crop k, ``(B audio, K, B video)``."""
        e = self._heads(video_emb, audio_emb, directions)
        if self.stage == "avc":
            return torch.einsum("bkd,ckd->bkc", e.audio, e.video)
        return self.model.clip_scores(e)

    # ------------------------------------------------------------ embeddings
    def foa_signal(self, audio, sample_rate: int, *, layout: str = "auto") -> torch.Tensor:
        """A recording in the model's audio format at the model's rate, ``(C_fmt, N')`` on the device.

        Parameters
        ----------
        audio : array_like or torch.Tensor, (C, N) or (N,)
            ``foa`` (4 ch ambiX: ACN order, SN3D gains), ``stereo``/``binaural`` (2 ch: L, R)
            or ``mono`` (1 ch).
        sample_rate : int
            Hz of ``audio``; resampled to the model's rate.
        layout : {"auto", "foa", "stereo", "binaural", "mono"}
            ``auto`` decides by channel count (4 → foa, 2 → stereo, 1 → mono).

        Raises
        ------
        InputError
            For a layout the model cannot take: FOA-trained models (ambi, mono beam, stereo
            from FOA) take FOA; 2-channel audio only a stereo-trained model; 1-channel only mono.
        """
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise InputError(f"audio must be a finite (C, N) or (N,) array, got shape {x.shape}")
        if not (isinstance(sample_rate, (int, np.integer)) or float(sample_rate).is_integer()) or sample_rate <= 0:
            raise InputError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
        channels = x.shape[0]
        if layout == "auto":
            layout = {4: "foa", 2: "stereo", 1: "mono"}.get(channels, "?")
        if layout not in INPUT_LAYOUTS:
            raise InputError(f"cannot tell the layout of {channels}-channel audio; pass layout=foa|stereo|mono")
        need = INPUT_LAYOUTS[layout]
        if channels != need:
            raise InputError(f"layout {layout!r} needs {need} channels, got {channels}")
        if int(sample_rate) != self.sample_rate:
            g = np.gcd(int(sample_rate), self.sample_rate)
            x = resample_poly(x, self.sample_rate // g, int(sample_rate) // g, axis=-1).astype(np.float32)
        t = torch.as_tensor(x, device=self.device)
        if layout == "foa":
            return audio_format(t, self.fmt)
        if layout in ("stereo", "binaural"):
            if self.fmt != "stereo":
                raise InputError(f"this model was trained on {self.fmt!r} audio; 2-channel input needs a "
                                 "stereo-trained model (format=stereo)")
            return t
        if self.fmt != "mono":
            raise InputError(f"this model was trained on {self.fmt!r} audio; 1-channel input needs format=mono")
        return t

    @torch.no_grad()
    def audio_embedding(self, audio, sample_rate: int, *, hop_s: float = 0.1, layout: str = "auto",
                        batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of 1-s windows of a recording every ``hop_s`` seconds, like OpenL3.

        Windows are featurised and encoded ``batch_size`` at a time, so memory
        beyond the recording itself does not grow with its length. A
        recording shorter than a window is padded with silence.

        Parameters
        ----------
        audio, sample_rate, layout
            As :meth:`foa_signal`.
        hop_s : float
            Seconds between window starts (rounded to whole samples at the model's rate).
        batch_size : int
            Windows per encoder call.

        Returns
        -------
        embeddings : np.ndarray float32, (T, dim)
        timestamps : np.ndarray float64, (T,)
            Window centres in seconds from the start of ``audio``.
        """
        if not hop_s > 0:
            raise InputError(f"hop_s must be positive, got {hop_s!r}")
        formatted = self.foa_signal(audio, sample_rate, layout=layout)
        n = self.sample_rate  # 1-s windows
        if formatted.shape[-1] < n:
            formatted = F.pad(formatted, (0, n - formatted.shape[-1]))
        hop = max(1, int(round(hop_s * self.sample_rate)))
        windows = formatted.unfold(-1, n, hop).movedim(-2, 0)  # (W, C, n), a view
        times = (np.arange(windows.shape[0]) * hop + n / 2) / self.sample_rate
        out = []
        for i in range(0, windows.shape[0], batch_size):
            _, emb = self.encode(None, self.audio_input(windows[i:i + batch_size]), batch_size=batch_size)
            out.append(emb.cpu())
        return torch.cat(out).numpy(), times

    def video_views(self, window: torch.Tensor, *, view: str = "around", azimuth: float = 0.0,
                    elevation: float = 0.0, fov: float = np.radians(60.0)) -> torch.Tensor:
        """Encoder inputs of the views of one window of frames.

        Parameters
        ----------
        window : torch.Tensor uint8, (T, H, W, 3)
            The model's ``n_frames`` frames (equirectangular for the 360° views).
        view : {"around", "crop", "perspective"}
            ``around``: four gnomonic crops of field of view ``fov`` at azimuths
            0°, 90°, 180°, −90° and elevation 0 (the four directions of an AVSA
            training clip); ``crop``: one gnomonic crop at (``azimuth``,
            ``elevation``); ``perspective``: the centre square, resized (ordinary,
            non-360° video).
        azimuth, elevation, fov : float
            Radians (``crop``; ``fov`` also for ``around``).

        Returns
        -------
        torch.Tensor (V, 3, T, S, S) on the device; V = 4 for ``around``, else 1.
        """
        clip = window.permute(0, 3, 1, 2)  # (T, 3, H, W)
        if view == "around":
            az = torch.tensor([0.0, 0.5, 1.0, -0.5], dtype=torch.float64) * np.pi
            crops = projection.gnomonic_crop(clip.to(self.device), az, torch.zeros(4, dtype=torch.float64),
                                             torch.full((4,), float(fov), dtype=torch.float64), self.crop_size)
        elif view == "crop":
            crops = projection.gnomonic_crop(clip.to(self.device), azimuth, elevation, fov, self.crop_size)[None]
        elif view == "perspective":
            h, w = clip.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = clip[..., top:top + side, left:left + side].to(self.device).float()
            crops = F.interpolate(square, size=(self.crop_size, self.crop_size), mode="bilinear",
                                  align_corners=False, antialias=True)[None]
        else:
            raise InputError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        return self.video_input(crops)  # (V, 3, T, S, S)

    @torch.no_grad()
    def video_embedding(self, frames, fps: float, *, hop_s: float = 0.5, view: str = "around",
                        azimuth: float = 0.0, elevation: float = 0.0, fov: float = np.radians(60.0),
                        batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of windows of ``n_frames`` frames at the model's rate, every ``hop_s`` seconds.

        Parameters
        ----------
        frames : array_like uint8, (T, H, W, 3)
            Equirectangular 360° frames (or ordinary frames for ``view="perspective"``).
        fps : float
            Frame rate of ``frames``; each window takes the frame nearest to each model frame time.
        hop_s : float
            Seconds between window starts, rounded to whole frames at the model's rate.
        view, azimuth, elevation, fov
            As :meth:`video_views`; with several views (``around``) a window's
            embedding is the mean of theirs.
        batch_size : int
            Windows per encoder call.

        Returns
        -------
        embeddings : np.ndarray float32, (W, dim)
        timestamps : np.ndarray float64, (W,), window centres in seconds
        """
        from avsa.inference.video import embed_windows, resampled_frames

        x = np.asarray(frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise InputError(f"frames must be uint8 (T, H, W, 3), got {x.shape} {x.dtype}")
        if not (fps > 0 and np.isfinite(fps)):
            raise InputError(f"fps must be positive, got {fps!r}")
        return embed_windows(self, resampled_frames(x, fps, self.config.data.fps), hop_s=hop_s, view=view,
                             azimuth=azimuth, elevation=elevation, fov=fov, batch_size=batch_size)

    @torch.no_grad()
    def video_clips(self, frames, fps: float, *, hop_s: float = 0.5, projection_type: str = "perspective",
                    azimuth: float = 0.0, elevation: float = 0.0,
                    fov: float = np.radians(60.0)) -> tuple[torch.Tensor, np.ndarray]:
        """Encoder inputs of 8-frame windows (0.5 s at the model's 16 fps), every ``hop_s`` seconds.

        Parameters
        ----------
        frames : array_like uint8, (T, H, W, 3)
        fps : float
            Frame rate of ``frames``; windows are resampled to the model's rate.
        projection_type : {"perspective", "equirect"}
            ``perspective``: centre square crop resized to the model's crop size (UCF101-style video);
            ``equirect``: the gnomonic crop at (azimuth, elevation) with field of view ``fov`` (radians).

        Returns
        -------
        inputs : torch.Tensor (W, 3, T, S, S) on the device; timestamps : np.ndarray (W,), window centres, s
        """
        x = torch.as_tensor(np.asarray(frames))
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise InputError(f"frames must be uint8 (T, H, W, 3), got {tuple(x.shape)} {x.dtype}")
        rate = float(self.config.data.fps)
        span = self.n_frames / rate
        duration = x.shape[0] / float(fps)
        starts = np.arange(0.0, max(duration - span, 0.0) + 1e-9, hop_s)
        # nearest source frame for each model frame of each window
        index = np.clip(np.round((starts[:, None] + np.arange(self.n_frames) / rate) * fps).astype(int),
                        0, x.shape[0] - 1)
        clip = x[torch.as_tensor(index)].permute(0, 1, 4, 2, 3).to(self.device)  # (W, T, 3, H, W)
        if projection_type == "equirect":
            crops = projection.gnomonic_crop(clip, azimuth, elevation, fov, self.crop_size)
        elif projection_type == "perspective":
            h, w = clip.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = clip[..., top:top + side, left:left + side].flatten(0, 1).float()
            crops = F.interpolate(square, size=(self.crop_size, self.crop_size), mode="bilinear",
                                  align_corners=False, antialias=True).unflatten(0, clip.shape[:2])
        else:
            raise InputError(f"projection_type must be 'perspective' or 'equirect', got {projection_type!r}")
        return self.video_input(crops), starts + span / 2



VIEWS = ("around", "crop", "perspective")
"""The video views of :meth:`Pretrained.video_views`; ``around`` is the default for 360° video."""


def default_equirect_width(config: TrainConfig) -> int:
    """The equirect width a model's frames are decoded at: that of its training cache, when it says.

    ``CACHE/prepare.json``'s width when the cache is here; else the width at
    which a 60° crop of the model's crop size samples one frame pixel per crop
    pixel (6 × crop size).
    """
    from avsa.media.cache import read_prepare_options

    try:
        options = read_prepare_options(config.data.cache) if config.data.cache else None
    except (OSError, ValueError, AvsaError):
        options = None
    width = int((options or {}).get("width") or 0)
    return width if width >= 2 else 6 * config.data.crop_size


def load_pretrained(checkpoint: str | os.PathLike, *, device: str | torch.device | None = None) -> Pretrained:
    """Load a model: a saved model folder, a checkpoint written by ``avsa train``, or a run folder.

    Parameters
    ----------
    checkpoint : path
        A folder written by ``save_pretrained`` / ``avsa export``
        (``config.json`` + ``model.safetensors``, :mod:`avsa.inference.hub`: read
        without unpickling), a ``.pt`` checkpoint, or a run folder (its
        ``checkpoints/avsa.pt``, else ``avc.pt``, else ``last.pt``).
    device : torch device; default CUDA when available, else CPU
    """
    from avsa.inference import hub

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if hub.is_saved_model(checkpoint):
        meta, config, stage, model, mean, std = hub.read_model_folder(checkpoint)
        front = meta.get("front_end") or {}
        info = {key: meta[key] for key in ("commit", "step", "training", "results") if key in meta}
        width = int(front.get("equirect_width") or default_equirect_width(config))
        source = str(checkpoint)
    else:
        path = find_checkpoint(checkpoint)
        payload = load_checkpoint(path)
        config, stage, model = load_model(path, payload=payload)
        stats = payload.get("audio_stats") or {}
        mean, std = (stats["mean"], stats["std"]) if stats else (None, None)
        info = {"commit": payload.get("commit", "unknown"), "step": payload.get("step")}
        width = default_equirect_width(config)
        source = str(path)
    model.to(dev).eval()
    return Pretrained(config=config, stage=stage, model=model, mean=None if mean is None else mean.to(dev),
                      std=None if std is None else std.to(dev), device=dev, checkpoint=source,
                      equirect_width=width, info=info)
