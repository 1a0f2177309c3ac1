"""Turn a decoded batch into what the encoders eat, on the training device.

The loader (:mod:`avsa.data.loader`) only decodes and draws crop centres and
augmentation parameters on the CPU; :func:`build_batch` does the heavy,
per-sample work as batched tensor code on whatever device the
:class:`~avsa.data.loader.RawBatch` is on (docs/system.md §3–4)::

    frames (B, T, 3, H, W) uint8 ──gnomonic_crop (one call, all K crops)──▶ (B, K, T, 3, S, S)
        ──flip──▶ ──colour jitter──▶ ──ImageNet mean/std──▶ video (B, K, 3, T, S, S)
    foa (B, 4, N) ──rotate_to_front (crop centre → front)──▶ (B, K, 4, N)
        ──mirror where flipped (Y → −Y)──▶ ──gain──▶ ──format──▶ ──features──▶
        ──per-band normalisation──▶ audio (B, K, C, 100, 128)

The audio chain is computed per clip, not per crop: rotation, mirror, gain
and format are one linear map of the FOA per crop (:func:`crop_mixing`), and
every feature is a quadratic or bilinear form of the channels, so the STFT
and the mel-band cross-spectra of each clip are computed once and every
crop's features follow from its matrix (:func:`crop_audio_features`; the
chain above, :func:`rotated_audio` then :func:`audio_features`, is the
reference it equals up to rounding).

Why mirroring the *rotated* field matches a flipped crop: after the rotation
the crop centre is the front (x) and the crop's horizontal axis is y (left),
so a left↔right flip of the crop about its vertical centre line is the
reflection y → −y of the camera frame, i.e. Y → −Y of the rotated field.

Formats: ``ambi`` = the 4 rotated channels; ``mono`` = one cardioid beam at
the crop centre (the front after rotation) — the paper's Eq. 5 steers the
plain encoding vector, which is the same pattern at twice the level, a
constant offset that the per-band normalisation removes; ``stereo`` = the
two ±90° hypercardioids of Eq. 9. Features: ``mel`` (log-mel per channel),
``iv`` (ambi only: 4 log-mel + 3 intensity = 7 ch), ``icf`` (stereo only:
2 log-mel + ILD, cos IPD, sin IPD = 5 ch). The log-mel channels are
normalised per mel band with the dataset statistics of ``avsa stats``
(:mod:`avsa.data.normalize`); IV/ICF channels are left as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from avsa.data.augment import color_jitter, flip_crops, normalize_imagenet
from avsa.audio_inputs import FEATURES, FORMATS, check_audio_config
from avsa.data.normalize import BandStats, apply_stats
from avsa.errors import ConfigError, InputError
from avsa.spatial import ambisonics, features as spatial_features, projection

MONO_PATTERN = "cardioid"
"""Beam of the ``mono`` format (see the module docstring)."""


def audio_format(foa: torch.Tensor, fmt: str) -> torch.Tensor:
    """The audio format of a field already rotated so the crop centre is the front.

    Parameters
    ----------
    foa : torch.Tensor, (..., 4, N)
        Rotated ambiX/SN3D.
    fmt : {"ambi", "mono", "stereo"}

    Returns
    -------
    torch.Tensor, (..., C, N) with C = 4, 1, 2.
    """
    if fmt == "ambi":
        return foa
    if fmt == "mono":
        return ambisonics.beamform(foa, 0.0, 0.0, pattern=MONO_PATTERN).unsqueeze(-2)
    if fmt == "stereo":
        return ambisonics.to_stereo(foa)
    raise ConfigError(f"unknown audio format {fmt!r}; expected {', '.join(FORMATS)}")


def audio_features(x: torch.Tensor, features: str, *, sample_rate: int) -> torch.Tensor:
    """Feature stack of formatted audio (docs/system.md §4), one shared STFT.

    Parameters
    ----------
    x : torch.Tensor, (..., C, N)
        Output of :func:`audio_format`; 4 channels for ``iv``, 2 for ``icf``.
    features : {"mel", "iv", "icf"}
    sample_rate : int
        Hz.

    Returns
    -------
    torch.Tensor, (..., C', T, F): C log-mel channels first, then 3 IV or ICF channels.
    """
    if features not in FEATURES:
        raise ConfigError(f"unknown audio features {features!r}; expected {', '.join(FEATURES)}")
    return spatial_features.feature_stack(x, sample_rate, features=features)


def crop_audio_features(raw, fmt: str, features: str, *, sample_rate: int, augment: bool = True,
                        foa: torch.Tensor | None = None) -> torch.Tensor:
    """Features of every crop's audio, from one analysis of each clip.

    Equal (up to rounding) to ``audio_features(audio_format(rotated_audio(raw), fmt), features)``
    — rotate, mirror, scale and format each crop's FOA, then its features — but
    the STFT and the mel-band cross-spectra are computed once per clip and
    every crop's features follow from its :func:`crop_mixing` matrix
    (:func:`avsa.spatial.features.feature_stack_mixed`). Every format takes
    this path: its log-mel powers (and ILD) are quadratic forms of the
    clip's cross-spectra, the stereo IPD a ratio of two bilinear ones; for
    ``ambi`` the matrix is a gain times a (mirrored) rotation, so a crop's IV
    is that rotation applied to the clip's own IV. ``mono`` and ``stereo``
    gain less than ``ambi``: each crop has fewer channels than the clip.

    Parameters
    ----------
    raw : RawBatch
        ``foa`` (B, 4, N), crop centres, flips and gains (B, K).
    fmt : {"ambi", "mono", "stereo"}
    features : {"mel", "iv", "icf"}
    sample_rate : int
        Hz.
    augment : bool
        As :func:`rotated_audio`.
    foa : torch.Tensor, (B, 4, N), optional
        Another sound field to put through the crops' transforms instead of
        ``raw.foa`` (e.g. another clip's, for :func:`other_clip_foa`).

    Returns
    -------
    torch.Tensor, (B, K, C', T, F), the dtype of ``raw.foa``.
    """
    if features not in FEATURES:
        raise ConfigError(f"unknown audio features {features!r}; expected {', '.join(FEATURES)}")
    foa = raw.foa if foa is None else foa
    return spatial_features.feature_stack_mixed(foa, crop_mixing(raw, fmt, augment=augment), sample_rate,
                                                features=features)


def other_clip_foa(foa: torch.Tensor) -> torch.Tensor:
    """Each clip's sound field replaced by the next clip's in the batch: (B, 4, N) → (B, 4, N).

    Put through a clip's own crop transforms (``crop_audio_features(raw, …, foa=…)``)
    this gives another clip's sound rotated to the same crops: the sound
    negatives of training (a training batch holds one window per clip, so the
    next item is another clip; evaluation batches, which hold several windows
    of a clip, pick theirs in :mod:`avsa.evaluate.indomain`). Needs B ≥ 2 clips.
    """
    if foa.shape[0] < 2:
        raise InputError(f"another clip's sound needs at least 2 clips in the batch, got {foa.shape[0]}")
    return foa.roll(1, dims=0)


def crop_video(raw, *, crop_size: int = 112, augment: bool = True) -> torch.Tensor:
    """Crops of every frame at every crop centre, augmented and normalised.

    Parameters
    ----------
    raw : RawBatch
        ``frames`` (B, T, 3, H, W) uint8, crop centres (B, K) in radians.
    crop_size : int
        S, crop side in pixels.
    augment : bool
        Apply the batch's flips and colour jitter (False: ignore them).

    Returns
    -------
    torch.Tensor, float32 (B, K, 3, T, S, S), ImageNet-normalised.
    """
    crops = projection.gnomonic_crop(raw.frames, raw.azimuth, raw.elevation, raw.fov, crop_size)
    crops = crops / 255.0  # (B, K, T, 3, S, S)
    if augment:
        crops = flip_crops(crops, raw.flip)
        crops = color_jitter(crops, raw.jitter)
    crops = normalize_imagenet(crops, channel_dim=-3)
    return crops.permute(0, 1, 3, 2, 4, 5).contiguous()  # (B, K, 3, T, S, S)


def rotated_audio(raw, *, augment: bool = True) -> torch.Tensor:
    """The FOA of each crop, rotated so its centre is the front, flipped and scaled.

    Parameters
    ----------
    raw : RawBatch
        ``foa`` (B, 4, N), crop centres (B, K).
    augment : bool
        Mirror (Y → −Y) where the crop is flipped and apply the gain.

    Returns
    -------
    torch.Tensor, (B, K, 4, N), ambiX/SN3D.
    """
    return _crop_transform(raw.foa, raw, augment=augment)


def _crop_transform(foa: torch.Tensor, raw, *, augment: bool) -> torch.Tensor:
    """Rotation to each crop centre, then mirror and gain: (B, 4, N) → (B, K, 4, N)."""
    foa = ambisonics.rotate_to_front(foa[:, None], raw.azimuth, raw.elevation)  # (B, K, 4, N)
    if augment:
        foa = torch.where(raw.flip[..., None, None], ambisonics.mirror(foa), foa)
        foa = foa * raw.gain[..., None, None].to(foa.dtype)
    return foa


def crop_mixing(raw, fmt: str, *, augment: bool = True) -> torch.Tensor:
    """Each crop's audio as one linear map of the clip's FOA: rotation, mirror, gain and format.

    ``audio_format(rotated_audio(raw), fmt) == crop_mixing(raw, fmt) @ raw.foa``
    (every step is linear in the channels and sample-wise), obtained by sending
    the 4 × 4 identity through those same steps, in float64.

    Parameters
    ----------
    raw : RawBatch
        Crop centres, flips and gains (B, K).
    fmt : {"ambi", "mono", "stereo"}
    augment : bool
        As :func:`rotated_audio`.

    Returns
    -------
    torch.Tensor, float64 (B, K, C, 4), C = 4, 1, 2.
    """
    b = raw.azimuth.shape[0]
    identity = torch.eye(4, dtype=torch.float64, device=raw.azimuth.device).expand(b, 4, 4)  # 4 "samples"
    return audio_format(_crop_transform(identity, raw, augment=augment), fmt)


def build_batch(raw, *, fmt: str, features: str, crop_size: int = 112, sample_rate: int = 24000,
                stats: BandStats | None = None, normalize: bool = True,
                augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Video and audio inputs of a batch, computed on the batch's device.

    Parameters
    ----------
    raw : RawBatch
        Decoded batch (:mod:`avsa.data.loader`), already moved to the device.
    fmt : {"ambi", "mono", "stereo"}
        Audio format.
    features : {"mel", "iv", "icf"}
        Audio features (``iv`` needs ``ambi``, ``icf`` needs ``stereo``).
    crop_size : int
        S, video crop side (112).
    sample_rate : int
        Hz of ``raw.foa``.
    stats : BandStats, optional
        Per-band log-mel statistics (:func:`avsa.data.normalize.load_stats`).
    normalize : bool
        Normalise the log-mel channels with ``stats``; False leaves them raw
        (used by ``avsa stats`` itself).
    augment : bool
        Apply the flips, jitter and gains drawn by the loader.

    Returns
    -------
    video : torch.Tensor, (B, K, 3, T, S, S)
    audio : torch.Tensor, (B, K, C, 100, 128); C = 4 ambi+mel, 1 mono+mel,
        2 stereo+mel, 7 ambi+iv, 5 stereo+icf.

    Raises
    ------
    ConfigError
        For an invalid (format, features) pair, or ``normalize`` without stats.
    """
    n_channels = check_audio_config(fmt, features)
    if normalize and stats is None:
        raise ConfigError(
            "no normalisation statistics: run `avsa stats CACHE --format "
            f"{fmt} --features {features}` and load them, or pass normalize=False"
        )
    if stats is not None and (stats.fmt, stats.features) != (fmt, features):
        raise InputError(f"statistics are for {stats.fmt}+{stats.features}, the batch asks for {fmt}+{features}")
    video = crop_video(raw, crop_size=crop_size, augment=augment)
    audio = crop_audio_features(raw, fmt, features, sample_rate=sample_rate, augment=augment)
    if normalize:
        mean = torch.as_tensor(stats.mean, device=audio.device, dtype=audio.dtype)
        std = torch.as_tensor(stats.std, device=audio.device, dtype=audio.dtype)
        audio = apply_stats(audio, mean, std)
    assert audio.shape[2] == n_channels, (audio.shape, fmt, features)
    return video, audio


class SampleBuilder(nn.Module):
    """:func:`build_batch` as a module holding the normalisation statistics as buffers.

    ``.to(device)`` moves the statistics with the model; calling it on a
    :class:`~avsa.data.loader.RawBatch` on that device returns
    ``(video (B, K, 3, T, S, S), audio (B, K, C, 100, 128))``.

    Parameters
    ----------
    fmt, features, crop_size, sample_rate, augment
        As :func:`build_batch`.
    stats : BandStats or None
        None means no normalisation (must be asked for with ``normalize=False``).
    normalize : bool
    """

    def __init__(self, *, fmt: str, features: str, stats: BandStats | None, crop_size: int = 112,
                 sample_rate: int = 24000, normalize: bool = True, augment: bool = True):
        super().__init__()
        check_audio_config(fmt, features)
        if normalize and stats is None:
            raise ConfigError(
                f"no normalisation statistics: run `avsa stats CACHE --format {fmt} --features {features}`, "
                "or pass normalize=False"
            )
        self.fmt, self.features, self.crop_size = fmt, features, crop_size
        self.sample_rate, self.normalize, self.augment = sample_rate, normalize, augment
        self.stats = stats
        if stats is not None:
            self.register_buffer("mean", torch.as_tensor(stats.mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(stats.std, dtype=torch.float32))

    def forward(self, raw) -> tuple[torch.Tensor, torch.Tensor]:
        video, audio = build_batch(raw, fmt=self.fmt, features=self.features, crop_size=self.crop_size,
                                   sample_rate=self.sample_rate, stats=None, normalize=False,
                                   augment=self.augment)
        return video, self._normalized(audio)

    def other_audio(self, raw) -> torch.Tensor:
        """(B, K, C, 100, 128): the next clip's sound (:func:`other_clip_foa`) through this batch's crops."""
        audio = crop_audio_features(raw, self.fmt, self.features, sample_rate=self.sample_rate,
                                    augment=self.augment, foa=other_clip_foa(raw.foa))
        return self._normalized(audio)

    def _normalized(self, audio: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            audio = apply_stats(audio, self.mean.to(audio.dtype), self.std.to(audio.dtype))
        return audio
