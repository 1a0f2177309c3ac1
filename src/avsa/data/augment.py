"""Augmentation of training samples: parameters drawn on the CPU, applied on the device.

The loader draws one set of parameters per crop (:func:`draw_augmentation`);
:mod:`avsa.data.samples` applies them to whole batches at once
(:func:`flip_crops`, :func:`color_jitter`, :func:`normalize_imagenet`), so
no Python loop runs per sample. The same ``flip`` flag mirrors the crop and
the rotated sound field (docs/system.md §3), which keeps left and right aligned.

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

JITTER_ORDER = ("brightness", "contrast", "saturation", "hue")
JITTER_RANGES = (0.4, 0.4, 0.4, 0.2)
"""The baseline's ``ColorJitter(0.4, 0.4, 0.4, 0.2)`` (docs/system.md §3)."""
JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)
GAIN_RANGE = (0.9, 1.1)
"""Audio gain ×U(0.9, 1.1) (docs/system.md §4)."""
GREY_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G, B (torchvision's grayscale)."""
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


def _hue_rotation(turns: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations of RGB about the grey axis (1, 1, 1) by ``turns`` × 360°.

    A 1/3 turn maps red to green exactly as an HSV hue shift does; in between
    it approximates the HSV shift (and keeps greys and the channel mean).
    """
    angle = turns.to(torch.float64) * (2.0 * math.pi)
    k = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=torch.float64, device=turns.device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]],
                         dtype=torch.float64, device=turns.device) / math.sqrt(3.0)
    cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    eye = torch.eye(3, dtype=torch.float64, device=turns.device)
    return cos * eye + sin * cross + (1.0 - cos) * torch.outer(k, k)


def color_jitter(frames: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """Colour jitter with per-crop parameters, as one affine colour map per crop.

    In the order brightness b, contrast c, saturation s, hue h:
    brightness scales (``x·b``), contrast blends with the frame's mean grey
    level m (``c·x + (1 − c)·m``), saturation blends with the pixel's grey
    level (``s·x + (1 − s)·grey``, ITU-R 601 weights) and hue rotates the
    colour about the grey axis by h turns. All four are linear in the pixel,
    so they compose into ``y = c·b·H·S·x + (1 − c)·b·m`` (H·1 = S·1 = 1),
    clamped to [0, 1] once — one batched product instead of four passes and an
    HSV round trip. Differences from torchvision's
    ColorJitter: a fixed order, no clamping between the steps, and a hue shift
    that equals the HSV shift at multiples of 1/3 turn and approximates it in
    between. Identity parameters (1, 1, 1, 0) return the frames unchanged.

    Parameters
    ----------
    frames : torch.Tensor, float in [0, 1], (B, K, T, 3, S, S)
    jitter : torch.Tensor, (B, K, 4)
        Order :data:`JITTER_ORDER`.

    Returns
    -------
    torch.Tensor, (B, K, T, 3, S, S), in [0, 1]
    """
    p = jitter.to(device=frames.device, dtype=torch.float64)
    b, c, s, h = p.unbind(-1)  # (B, K)
    grey = torch.tensor(GREY_WEIGHTS, dtype=torch.float64, device=frames.device)
    eye = torch.eye(3, dtype=torch.float64, device=frames.device)
    saturation = s[..., None, None] * eye + (1.0 - s)[..., None, None] * grey.expand(3, 3)  # rows: s·e_i + (1−s)·g
    matrix = (c * b)[..., None, None] * (_hue_rotation(h) @ saturation)  # (B, K, 3, 3)
    mean_grey = frames.mean(dim=(-1, -2)) @ grey.to(frames.dtype)  # (B, K, T)
    offset = ((1.0 - c) * b).to(frames.dtype)[..., None] * mean_grey  # (B, K, T)
    out = torch.einsum("bkij,bktjyx->bktiyx", matrix.to(frames.dtype), frames)
    return (out + offset[..., None, None, None]).clamp_(0.0, 1.0)


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
