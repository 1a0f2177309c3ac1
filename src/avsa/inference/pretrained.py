"""A trained checkpoint, loaded once, with the front-ends it was trained with.

:func:`load_pretrained` is the one way every evaluation (in-domain, embeddings,
localization, downstream probes) reads a checkpoint: the model in eval mode on
a device, plus the exact audio front-end of training (format, features and the
per-band normalisation saved in the checkpoint) and video front-end (crop
size, ImageNet normalisation)::

    p = load_pretrained("runs/demo/checkpoints/avsa.pt")
    emb, t = p.audio_embedding(foa, 48000)            # (T, 512·width), (T,) seconds
    emb, t = p.video_embedding(frames, 30.0)           # perspective video
    v, a = p.encode(video, audio)                      # batched encoder outputs
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

from avsa.data.augment import normalize_imagenet
from avsa.data.normalize import apply_stats
from avsa.data.samples import audio_features, audio_format
from avsa.errors import InputError
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
    """

    config: TrainConfig
    stage: str
    model: torch.nn.Module
    mean: torch.Tensor | None
    std: torch.Tensor | None
    device: torch.device
    checkpoint: str

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
    @torch.no_grad()
    def audio_windows(self, audio, sample_rate: int, *, hop_s: float = 0.1, layout: str = "auto",
                        batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Encoder inputs of 1-s windows of a recording, every ``hop_s`` seconds.

        Parameters
        ----------
        audio : array_like, (C, N) or (N,)
            ``foa`` (4 ch ambiX/SN3D), ``stereo``/``binaural`` (2 ch: L, R) or ``mono`` (1 ch).
        sample_rate : int
            Hz of ``audio``; resampled to the model's rate.
        hop_s : float
            Seconds between window starts.
        layout : {"auto", "foa", "stereo", "binaural", "mono"}
            ``auto`` decides by channel count (4 → foa, 2 → stereo, 1 → mono).

        Returns
        -------
        inputs : torch.Tensor (T, C', 100, 128) on the device
        timestamps : np.ndarray (T,), window centres in seconds

        Raises
        ------
        InputError
            For a layout the model cannot take: FOA-trained models (ambi, mono beam, stereo
            from FOA) take FOA; 2-channel audio only a stereo-trained model; 1-channel only mono.
        """
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise InputError(f"audio must be a finite (C, N) or (N,) array, got shape {x.shape}")
        channels = x.shape[0]
        if layout == "auto":
            layout = {4: "foa", 2: "stereo", 1: "mono"}.get(channels, "?")
        if layout not in INPUT_LAYOUTS:
            raise InputError(f"cannot tell the layout of {channels}-channel audio; pass layout=foa|stereo|mono")
        need = INPUT_LAYOUTS[layout]
        if channels != need:
            raise InputError(f"layout {layout!r} needs {need} channels, got {channels}")
        if sample_rate != self.sample_rate:
            g = np.gcd(int(sample_rate), self.sample_rate)
            x = resample_poly(x, self.sample_rate // g, int(sample_rate) // g, axis=-1).astype(np.float32)
        t = torch.as_tensor(x, device=self.device)
        if layout == "foa":
            formatted = audio_format(t, self.fmt)
        elif layout in ("stereo", "binaural"):
            if self.fmt != "stereo":
                raise InputError(f"this model was trained on {self.fmt!r} audio; 2-channel input needs a "
                                 "stereo-trained model (format=stereo)")
            formatted = t
        else:
            if self.fmt != "mono":
                raise InputError(f"this model was trained on {self.fmt!r} audio; 1-channel input needs format=mono")
            formatted = t
        n = self.sample_rate  # 1-s windows
        if formatted.shape[-1] < n:
            formatted = F.pad(formatted, (0, n - formatted.shape[-1]))
        hop = max(1, int(round(hop_s * self.sample_rate)))
        windows = formatted.unfold(-1, n, hop).movedim(-2, 0)  # (W, C, n)
        times = (np.arange(windows.shape[0]) * hop + n / 2) / self.sample_rate
        return self.audio_input(windows), times

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

    @torch.no_grad()
    def audio_embedding(self, audio, sample_rate: int, *, hop_s: float = 0.1, layout: str = "auto",
                        batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (T, dim) and window centres (T,) s of 1-s windows every ``hop_s`` (like OpenL3).

        Arguments and errors as :meth:`audio_windows`.
        """
        inputs, times = self.audio_windows(audio, sample_rate, hop_s=hop_s, layout=layout)
        _, emb = self.encode(None, inputs, batch_size=batch_size)
        return emb.cpu().numpy(), times

    @torch.no_grad()
    def video_embedding(self, frames, fps: float, *, hop_s: float = 0.5, batch_size: int = 32,
                        **view) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (W, dim) and window centres (W,) s of 8-frame windows; arguments as :meth:`video_clips`."""
        inputs, times = self.video_clips(frames, fps, hop_s=hop_s, **view)
        emb, _ = self.encode(inputs, None, batch_size=batch_size)
        return emb.cpu().numpy(), times


def load_pretrained(checkpoint: str | os.PathLike, *, device: str | torch.device | None = None) -> Pretrained:
    """Load a checkpoint written by ``avsa train`` (or a run folder: its ``avsa.pt``, else ``avc.pt``).

    Parameters
    ----------
    checkpoint : path to a ``.pt`` file or a run folder
    device : torch device; default CUDA when available, else CPU
    """
    path = find_checkpoint(checkpoint)
    payload = load_checkpoint(path)
    config, stage, model = load_model(path, payload=payload)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(dev).eval()
    stats = payload.get("audio_stats") or {}
    mean = stats["mean"].to(dev) if stats else None
    std = stats["std"].to(dev) if stats else None
    return Pretrained(config=config, stage=stage, model=model, mean=mean, std=std, device=dev,
                      checkpoint=str(path))
