"""Per-mel-band normalisation statistics of the log-mel channels.

Computed once from the training cache by ``avsa stats`` (:mod:`avsa.data.cache_stats`)
and saved as ``CACHE/stats/<format>-<features>.npz``; the trainer loads them
with :func:`load_stats` and :mod:`avsa.data.samples` applies them with
:func:`apply_stats`.

Only the log-mel channels are normalised (mean and std per channel and mel
band, pooled over time and windows). The intensity-vector channels (in
[−1, 1]) and the inter-channel features (ILD in dB, cos/sin IPD in [−1, 1])
are left as they are: their zero means "centred" and must stay so, and the
encoder's first convolution + batch norm absorbs their scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avsa.audio_inputs import FORMAT_CHANNELS, check_audio_config
from avsa.errors import InputError

STATS_DIR = "stats"
STD_FLOOR = 1e-3
"""Smallest std used (natural-log mel energy); guards bands that never vary (empty mel filters)."""


@dataclass(frozen=True)
class BandStats:
    """Mean and std of each log-mel channel and mel band.

    Attributes
    ----------
    mean, std : np.ndarray of float32, (C_mel, F)
        C_mel = log-mel channels of the format (4 ambi, 1 mono, 2 stereo),
        F = mel bands (128).
    fmt, features : str
        The audio configuration they were computed for.
    n_windows : int
        Windows (crops) the statistics pool over.
    """

    mean: np.ndarray
    std: np.ndarray
    fmt: str
    features: str
    n_windows: int


def stats_path(cache_root: str | os.PathLike, fmt: str, features: str) -> Path:
    """``CACHE/stats/<format>-<features>.npz``."""
    check_audio_config(fmt, features)
    return Path(cache_root) / STATS_DIR / f"{fmt}-{features}.npz"


class StatsAccumulator:
    """Running per-channel, per-band sums (float64) of log-mel features.

    Parameters
    ----------
    fmt, features : str
        The audio configuration (decides how many leading channels are log-mel).
    """

    def __init__(self, fmt: str, features: str):
        check_audio_config(fmt, features)
        self.fmt, self.features = fmt, features
        self.n_mel = FORMAT_CHANNELS[fmt]
        self.count = 0
        self.n_windows = 0
        self._sum: torch.Tensor | None = None
        self._sumsq: torch.Tensor | None = None

    def update(self, audio: torch.Tensor) -> None:
        """Add a batch of features.

        Parameters
        ----------
        audio : torch.Tensor, (..., C, T, F)
            Unnormalised features; the first ``C_mel`` channels are log-mel.
        """
        x = audio[..., : self.n_mel, :, :].detach().to(torch.float64)
        x = x.reshape(-1, self.n_mel, x.shape[-2], x.shape[-1])
        s = x.sum(dim=(0, 2)).cpu()
        q = (x * x).sum(dim=(0, 2)).cpu()
        self._sum = s if self._sum is None else self._sum + s
        self._sumsq = q if self._sumsq is None else self._sumsq + q
        self.count += x.shape[0] * x.shape[2]
        self.n_windows += x.shape[0]

    def result(self) -> BandStats:
        """The statistics so far (std floored at :data:`STD_FLOOR`)."""
        if self._sum is None or self.count == 0:
            raise InputError("no windows were seen: cannot compute normalisation statistics")
        mean = self._sum / self.count
        var = (self._sumsq / self.count - mean * mean).clamp_min(0.0)
        std = var.sqrt().clamp_min(STD_FLOOR)
        return BandStats(mean=mean.numpy().astype(np.float32), std=std.numpy().astype(np.float32),
                         fmt=self.fmt, features=self.features, n_windows=self.n_windows)


def save_stats(path: str | os.PathLike, stats: BandStats) -> None:
    """Write statistics to ``path`` (``.npz``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, mean=stats.mean, std=stats.std, format=np.array(stats.fmt),
             features=np.array(stats.features), n_windows=np.array(stats.n_windows))
    os.replace(temporary, path)


def load_stats(cache_root: str | os.PathLike, fmt: str, features: str) -> BandStats:
    """Load ``CACHE/stats/<format>-<features>.npz``.

    Raises
    ------
    InputError
        When the file is missing (with the ``avsa stats`` command that makes
        it), unreadable, or made for another configuration.
    """
    path = stats_path(cache_root, fmt, features)
    if not path.is_file():
        raise InputError(
            f"no normalisation statistics {path}: run `avsa stats {cache_root} --format {fmt} "
            f"--features {features}` first (or train with data.normalize=false)"
        )
    try:
        with np.load(path) as data:
            mean, std = data["mean"], data["std"]
            saved = (str(data["format"]), str(data["features"]))
            n_windows = int(data["n_windows"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: unreadable statistics file ({exc}); rerun `avsa stats`") from None
    n_mel = FORMAT_CHANNELS[fmt]
    if saved != (fmt, features) or mean.shape != std.shape or mean.ndim != 2 or mean.shape[0] != n_mel:
        raise InputError(
            f"{path}: statistics for {saved[0]}+{saved[1]} with shape {mean.shape}, expected "
            f"{fmt}+{features} with {n_mel} log-mel channels; rerun `avsa stats`"
        )
    if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
        raise InputError(f"{path}: non-finite mean or non-positive std; rerun `avsa stats`")
    return BandStats(mean=mean.astype(np.float32), std=std.astype(np.float32), fmt=fmt,
                     features=features, n_windows=n_windows)


def apply_stats(audio: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalise the log-mel channels per band: ``(x − mean) / std``.

    Parameters
    ----------
    audio : torch.Tensor, (..., C, T, F)
        Features whose first ``C_mel`` channels are log-mel.
    mean, std : torch.Tensor, (C_mel, F)

    Returns
    -------
    torch.Tensor, same shape; channels from ``C_mel`` on are unchanged.
    """
    n_mel, n_bands = mean.shape
    if audio.shape[-1] != n_bands or audio.shape[-3] < n_mel:
        raise InputError(
            f"statistics of shape {tuple(mean.shape)} do not fit features of shape {tuple(audio.shape)}"
        )
    mel = (audio[..., :n_mel, :, :] - mean[:, None, :]) / std[:, None, :]
    return torch.cat([mel, audio[..., n_mel:, :, :]], dim=-3)
