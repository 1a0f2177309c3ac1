"""Audio encoder: the baseline's 9-layer 2-D CNN (docs/system.md §4).

Input ``(N, C, T, F)`` audio features — C ∈ {1, 2, 4, 5, 7} channels set by
the format and features (mono log-mel 1, stereo 2, ambi 4, stereo+ICF 5,
ambi+FOA-IV 7), T = 100 frames, F = 128 mel bands at full scale — output
``(N, 512·width)``.

Exact layout (``c = round(64·width)``; convolutions bias-free, each followed
by BN and ReLU)::

    conv 7×7, stride 2, padding 3, C → c                      (stem)
    conv 3×3 c → c,  conv 3×3 c → c                           (block 1)
    conv 3×3 c → 2c stride 2,  conv 3×3 2c → 2c               (block 2)
    conv 3×3 2c → 4c stride 2, conv 3×3 4c → 4c               (block 3)
    conv 3×3 4c → 8c,          conv 3×3 8c → 8c               (block 4)
    global max over (T, F)                                    → (N, 8c)

``pool="mean"`` averages over (T, F) instead of the maximum (not the paper's).

No residual connections and no max pool after the stem. At width 1 the
encoder has 4,725,696 parameters for C = 1, plus 3,136 per extra input channel
(4,735,104 for C = 4).
"""

from __future__ import annotations

import torch
from torch import nn

from avsa.audio_inputs import AUDIO_CHANNELS
from avsa.errors import InputError
from avsa.models.video import BASE_WIDTHS, scaled



POOLS = ("max", "mean")
"""Global pooling of the audio encoder over (T, F): the paper's ``max``, or ``mean``."""


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    """Conv2d (bias-free, 'same'-style padding) → BN → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class AudioCNN(nn.Module):
    """2-D CNN audio encoder of the baseline.

    Parameters
    ----------
    in_channels : int
        Feature channels C, one of 1, 2, 4, 5, 7.
    width : float, keyword-only
        Channel multiplier (1.0 → 64/128/256/512).
    pool : {"max", "mean"}, keyword-only
        Global pooling over (T, F): the paper's maximum, or the mean.

    Attributes
    ----------
    dim : int
        Output size, ``round(512·width)``.
    """

    def __init__(self, in_channels: int, *, width: float = 1.0, pool: str = "max"):
        super().__init__()
        if pool not in POOLS:
            raise InputError(f"audio pooling must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        if in_channels not in AUDIO_CHANNELS:
            raise InputError(f"audio in_channels must be one of {AUDIO_CHANNELS}, got {in_channels!r}")
        if not width > 0:
            raise InputError(f"audio encoder width must be positive, got {width}")
        w = [scaled(c, width) for c in BASE_WIDTHS]
        self.in_channels = in_channels
        self.width = float(width)
        self.dim = w[-1]
        self.stem = conv_bn_relu(in_channels, w[0], 7, 2)
        self.blocks = nn.Sequential(
            nn.Sequential(conv_bn_relu(w[0], w[0], 3, 1), conv_bn_relu(w[0], w[0], 3, 1)),
            nn.Sequential(conv_bn_relu(w[0], w[1], 3, 2), conv_bn_relu(w[1], w[1], 3, 1)),
            nn.Sequential(conv_bn_relu(w[1], w[2], 3, 2), conv_bn_relu(w[2], w[2], 3, 1)),
            nn.Sequential(conv_bn_relu(w[2], w[3], 3, 1), conv_bn_relu(w[3], w[3], 3, 1)),
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Embed audio features.

        Parameters
        ----------
        audio : Tensor, shape (N, C, T, F)
            Float features; C must equal ``in_channels``.

        Returns
        -------
        Tensor, shape (N, dim)
        """
        if audio.ndim != 4 or audio.shape[1] != self.in_channels:
            raise InputError(
                f"audio must have shape (N, {self.in_channels}, T, F), got {tuple(audio.shape)}"
            )
        x = self.blocks(self.stem(audio))  # N x 8c x T/8 x F/8
        return x.amax(dim=(2, 3)) if self.pool == "max" else x.mean(dim=(2, 3))  # N x 8c
