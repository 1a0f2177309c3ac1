"""A picture of what AVSA learns from: the four crops of a window and where their audio points.

Top: the equirectangular frame with the K crop outlines (colour = crop) and the
ground-truth objects (filled = sounding). Bottom: each crop (middle frame) with
the direction of its rotated sound field's energy-weighted intensity vector
drawn as a cross when it falls inside the crop — after rotation a source at the
crop centre lands at the crop centre, so a cross on the object means video and
audio agree on that angle.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from avsa.spatial import ambisonics, features, projection, sphere

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")


def mean_intensity_direction(foa: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy-weighted mean FOA intensity direction of each field.

    Parameters
    ----------
    foa : torch.Tensor, (..., 4, N) ambiX/SN3D
    sample_rate : int, Hz

    Returns
    -------
    azimuth, elevation : torch.Tensor, (...), radians
    length : torch.Tensor, (...), in [0, 1] (1 = one plane wave)
    """
    iv = features.foa_intensity(foa, sample_rate)  # (..., 3, T, F)
    energy = features.log_mel(foa[..., :1, :], sample_rate).exp()  # (..., 1, T, F) W power per band
    mean = (iv * energy).sum(dim=(-1, -2)) / energy.sum(dim=(-1, -2)).clamp_min(1e-20)  # (..., 3)
    az, el = sphere.vector_direction(mean)
    return az, el, mean.norm(dim=-1)


def crops_figure(path: str | os.PathLike, frames: torch.Tensor, foa: torch.Tensor, azimuth, elevation, fov, *,
                 sample_rate: int = 24000, crop_size: int = 112, kinds=None, groundtruth=None,
                 title: str = "") -> Path:
    """Draw the crops of one window and their rotated-audio intensity directions to a PNG.

    Parameters
    ----------
    path : output PNG
    frames : torch.Tensor, uint8 (T, 3, H, W) equirectangular
    foa : torch.Tensor, float (4, N) ambiX/SN3D of the window
    azimuth, elevation, fov : array_like (K,), radians — crop centres and fields of view
    sample_rate : int, Hz
    crop_size : int, pixels of each drawn crop
    kinds : sequence of str, optional — crop kinds ("object", "random", "audio") for the captions
    groundtruth : GroundTruth, optional — objects at the window's middle (``.at(t)``) drawn on the frame
    title : str
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    az = torch.as_tensor(np.asarray(azimuth), dtype=torch.float32)
    el = torch.as_tensor(np.asarray(elevation), dtype=torch.float32)
    fv = torch.as_tensor(np.asarray(fov), dtype=torch.float32)
    k = az.shape[0]
    middle = frames[frames.shape[0] // 2]  # (3, H, W)
    _, h, w = middle.shape
    crops = projection.gnomonic_crop(middle.float(), az, el, fv, crop_size)  # (K, 3, S, S)
    rotated = ambisonics.rotate_to_front(foa.float()[None], az, el)  # (K, 4, N)
    iaz, iel, ilen = mean_intensity_direction(rotated, sample_rate)
    # the rotated direction, seen from the crop camera (centre = front)
    col, row, inside = projection.crop_coordinates(iaz, iel, torch.zeros(k), torch.zeros(k), fv, crop_size)

    fig = plt.figure(figsize=(3.2 * max(k, 2), 6.4), constrained_layout=True)
    grid = fig.add_gridspec(2, k, height_ratios=[1.1, 1])
    top = fig.add_subplot(grid[0, :])
    top.imshow(middle.permute(1, 2, 0).numpy(), extent=(0, w, h, 0))
    rays = projection.gnomonic_rays(az, el, fv, 16)  # (K, 16, 16, 3) outline of each crop
    for i in range(k):
        edge = torch.cat([rays[i, 0, :], rays[i, :, -1], rays[i, -1, :].flip(0), rays[i, :, 0].flip(0)])
        ea, ee = sphere.vector_direction(edge)
        u, v = sphere.direction_to_equirect(ea, ee, w, h)
        u, v = u.numpy(), v.numpy()
        breaks = np.where(np.abs(np.diff(u)) > w / 2)[0] + 1  # split at the seam
        for seg_u, seg_v in zip(np.split(u, breaks), np.split(v, breaks)):
            top.plot(seg_u, seg_v, color=COLOURS[i % len(COLOURS)], lw=2)
    if groundtruth is not None:
        t = groundtruth.duration_s / 2
        for obj in groundtruth.at(t):
            u, v = sphere.direction_to_equirect(obj.azimuth, obj.elevation, w, h)
            top.plot(float(u), float(v), "o", ms=9, mfc="yellow" if obj.sounding else "none", mec="k",
                     label="sounding object" if obj.sounding else "silent object")
        handles, labels = top.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        top.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    top.set_xlim(0, w)
    top.set_ylim(h, 0)
    top.set_xticks([0, w / 4, w / 2, 3 * w / 4, w], ["180°", "90°", "0°", "−90°", "−180°"])
    top.set_yticks([0, h / 2, h], ["90°", "0°", "−90°"])
    top.set_title(title or "crops on the 360° frame (yellow = sounding object)")
    for i in range(k):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow((crops[i].permute(1, 2, 0).clamp(0, 255) / 255).numpy())
        if bool(inside[i]):
            ax.plot(float(col[i]), float(row[i]), "x", color="white", ms=14, mew=4)
            ax.plot(float(col[i]), float(row[i]), "x", color=COLOURS[i % len(COLOURS)], ms=12, mew=2)
        kind = f"{kinds[i]} crop, " if kinds is not None else ""
        where = "in view" if bool(inside[i]) else "out of view"
        ax.set_title(f"{kind}θ0={np.degrees(float(az[i])):.0f}° φ0={np.degrees(float(el[i])):.0f}°\n"
                     f"audio intensity {where} (|i|={float(ilen[i]):.2f})", fontsize=8,
                     color=COLOURS[i % len(COLOURS)])
        ax.set_xticks([])
        ax.set_yticks([])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
