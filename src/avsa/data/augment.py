"""Augmentation of training samples: parameters drawn on the CPU, applied on the device.

The loader draws one set of parameters per crop (:func:`draw_augmentation`);
:mod:`avsa.data.samples` applies them to whole batches at once
(:func:`flip_crops`, :func:`color_jitter`, :func:`normalize_imagenet`), so
no Python loop runs per sample. The same ``flip`` flag mirrors the crop and
the rotated sound field (system.md §3), which keeps left and right aligned.

Jitter parameters are stored as ``(..., 4)`` in the order brightness,
contrast, saturation, hue (``JITTER_ORDER``), with torchvision's meaning:
brightness, contrast and saturation are factors drawn from
``U(1 − r, 1 + r)`` (1 = unchanged) and hue is a shift in turns drawn from
``U(−r, r)`` (0 = unchanged), for ranges ``r = JITTER_RANGES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from kornia import enhance

JITTER_ORDER = ("brightness", "contrast", "saturation", "hue")
JITTER_RANGES = (0.4, 0.4, 0.4, 0.2)
"""The baseline's ``ColorJitter(0.4, 0.4, 0.4, 0.2)`` (system.md §3)."""
JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)
GAIN_RANGE = (0.9, 1.1)
"""Audio gain ×U(0.9, 1.1) (system.md §4)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Augmentation:
    """Augmentation parameters of the ``K`` crops of one sample.

    Attributes
    ----------
    flip : np.ndarray of bool, (K,)
        Mirror the crop left↔right (and the rotated audio, Y → −Y).
    jitter : np.ndarray of float32, (K, 4)
        Colour jitter, order :data:`JITTER_ORDER` (see the module docstring).
    gain : np.ndarray of float32, (K,)
        Linear audio gain.
    """

    flip: np.ndarray
    jitter: np.ndarray
    gain: np.ndarray


def identity_augmentation(n_crops: int) -> Augmentation:
    """Parameters that change nothing, for ``n_crops`` crops."""
    return Augmentation(
        flip=np.zeros(n_crops, dtype=bool),
        jitter=np.tile(np.asarray(JITTER_IDENTITY, dtype=np.float32), (n_crops, 1)),
        gain=np.ones(n_crops, dtype=np.float32),
    )


def draw_augmentation(rng: np.random.Generator, n_crops: int) -> Augmentation:
    """Draw independent flip, colour-jitter and gain parameters for each crop.

    Parameters
    ----------
    rng : numpy.random.Generator
        The item's generator (the loader derives it from seed, epoch, index).
    n_crops : int
        K, crops of the sample.
    """
    flip = rng.random(n_crops) < 0.5
    r = np.asarray(JITTER_RANGES)
    centre = np.asarray(JITTER_IDENTITY)
    jitter = centre + rng.uniform(-1.0, 1.0, size=(n_crops, 4)) * r
    gain = rng.uniform(*GAIN_RANGE, size=n_crops)
    return Augmentation(flip=flip, jitter=jitter.astype(np.float32), gain=gain.astype(np.float32))


def flip_crops(crops: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the crops whose flag is set, left↔right (last axis).

    Parameters
    ----------
    crops : torch.Tensor, (B, K, ..., S, S)
    flip : torch.Tensor of bool, (B, K)
    """
    mask = flip.reshape(flip.shape + (1,) * (crops.dim() - flip.dim()))
    return torch.where(mask, crops.flip(-1), crops)


def color_jitter(frames: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """Colour jitter with per-crop parameters, batched (no loop over samples).

    Applied in the fixed order brightness, contrast, saturation, hue
    (torchvision draws a random order; a fixed one keeps the batch in one call
    per operation). Identity parameters return the frames unchanged up to
    rounding of the hue round trip (< 1e-6).

    Parameters
    ----------
    frames : torch.Tensor, float in [0, 1], (B, K, T, 3, S, S)
    jitter : torch.Tensor, (B, K, 4)
        Order :data:`JITTER_ORDER`.

    Returns
    -------
    torch.Tensor, (B, K, T, 3, S, S), in [0, 1]
    """
    b, k, t = frames.shape[:3]
    x = frames.reshape(b * k * t, *frames.shape[3:])
    p = jitter.to(frames.dtype).repeat_interleave(t, dim=1).reshape(b * k * t, 4)
    x = enhance.adjust_brightness_accumulative(x, p[:, 0])
    x = enhance.adjust_contrast_with_mean_subtraction(x, p[:, 1])
    x = enhance.adjust_saturation_with_gray_subtraction(x, p[:, 2])
    x = enhance.adjust_hue(x, p[:, 3] * (2.0 * math.pi))
    return x.reshape(frames.shape)


def normalize_imagenet(frames: torch.Tensor, *, channel_dim: int = -3) -> torch.Tensor:
    """Subtract the ImageNet mean and divide by its std, per RGB channel.

    Parameters
    ----------
    frames : torch.Tensor, float in [0, 1], RGB on ``channel_dim``
    """
    shape = [1] * frames.dim()
    shape[channel_dim] = 3
    mean = torch.tensor(IMAGENET_MEAN, dtype=frames.dtype, device=frames.device).reshape(shape)
    std = torch.tensor(IMAGENET_STD, dtype=frames.dtype, device=frames.device).reshape(shape)
    return (frames - mean) / std
