"""Video encoder: the baseline's R(2+1)D-18 (docs/system.md §3).

Input ``(N, 3, T, H, W)`` float crops (ImageNet-normalised; T = 8, H = W = 112
at full scale), output ``(N, 512·width)`` after a global max pool over
T, H and W. Works for any T ≥ 1 and H, W ≥ 1.

Exact layout (``c = round(64·width)`` etc.; every convolution is bias-free
because a BatchNorm follows it):

* **stem**: Conv3d 3→c, kernel (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3)
  → BN → ReLU. No max pool.
* **stages 2–5**: two :class:`Block` each, widths c, 2c, 4c, 8c
  (64/128/256/512 at width 1). The first block of stages 3–5 has stride 2 in
  time *and* space; the spatial conv carries the (1, 2, 2) stride and the
  temporal conv the (2, 1, 1) stride.
* **block** (``x`` in, ``C_in → C_out``)::

      y = ReLU(BN(temporal(ReLU(BN(spatial(x))))))      # (2+1)D conv #1
      y = ReLU(BN(temporal(ReLU(BN(spatial(y))))))      # (2+1)D conv #2
      out = ReLU(BN(y + shortcut(x)))                   # BN + ReLU after the add

  spatial = Conv3d kernel (1, 3, 3), padding (0, 1, 1); temporal = Conv3d
  kernel (3, 1, 1), padding (1, 0, 0). The middle width of each (2+1)D
  factorisation equals ``C_out`` (no parameter-matched middle width).
  shortcut = identity, or Conv3d 1×1×1 stride (2, 2, 2) + BN when the block
  changes stride or width. So a block holds 4 convs + 5 BNs (+1 conv + 1 BN
  in the shortcut).
* **pool**: global max over (T, H, W) → ``(N, 8c)``.

At width 1 the encoder has 15,384,768 parameters (see
``tests/models/test_encoders.py`` for the formula).
"""

from __future__ import annotations

import torch
from torch import nn

from avsa.errors import InputError

BASE_WIDTHS = (64, 128, 256, 512)


def scaled(channels: int, width: float) -> int:
    """``channels · width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


class Conv2Plus1D(nn.Sequential):
    """spatial (1,3,3) → BN → ReLU → temporal (3,1,1) → BN → ReLU; ``(N,Ci,T,H,W) → (N,Co,T',H',W')``."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                      bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )


class Block(nn.Module):
    """Residual block: two (2+1)D convs, shortcut added, then BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2Plus1D(in_channels, out_channels, stride=stride)
        self.conv2 = Conv2Plus1D(out_channels, out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return self.relu(self.bn(y + self.shortcut(x)))


class R2Plus1D18(nn.Module):
    """R(2+1)D-18 video encoder of the baseline.

    Parameters
    ----------
    width : float, keyword-only
        Channel multiplier (1.0 → 64/128/256/512; 0.25 → 16/32/64/128).

    Attributes
    ----------
    dim : int
        Output size, ``round(512·width)``.
    """

    def __init__(self, *, width: float = 1.0):
        super().__init__()
        if not width > 0:
            raise InputError(f"video encoder width must be positive, got {width}")
        widths = [scaled(c, width) for c in BASE_WIDTHS]
        self.width = float(width)
        self.dim = widths[-1]
        self.stem = nn.Sequential(
            nn.Conv3d(3, widths[0], (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = widths[0]
        for i, out_channels in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(Block(in_channels, out_channels, stride=stride),
                                        Block(out_channels, out_channels)))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Embed crops.

        Parameters
        ----------
        video : Tensor, shape (N, 3, T, H, W)
            Float frames; T, H, W ≥ 1.

        Returns
        -------
        Tensor, shape (N, dim)
            Global max over (T, H, W) of the last stage.
        """
        if video.ndim != 5 or video.shape[1] != 3:
            raise InputError(f"video must have shape (N, 3, T, H, W), got {tuple(video.shape)}")
        x = self.stages(self.stem(video))  # N x 8c x T' x H' x W'
        return x.amax(dim=(2, 3, 4))  # N x 8c
