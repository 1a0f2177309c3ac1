"""Gnomonic (perspective) crops of equirectangular frames (conventions §2, §7).

A crop centred at (θ0, φ0) with horizontal field of view f and N × N pixels
looks along the camera C = Rz(θ0)·Ry(−φ0) = Mᵀ (M = ``front_rotation``). Its
pixel (row i, column j) has camera ray (1, −a_j, −b_i)/‖·‖ with
a_j, b_i = linspace(−tan(f/2), tan(f/2), N): columns run left → right, rows
top → bottom. All crops of all frames are sampled by one bilinear
``grid_sample`` call; columns wrap around the seam, rows are clamped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avsa.errors import InputError
from avsa.spatial.sphere import _as_float, _broadcast, _common, _size, direction_to_equirect, direction_vector, front_rotation

__all__ = ["gnomonic_rays", "gnomonic_crop", "crop_coordinates"]

_MAX_FOV = 3.0  # radians (≈ 172°): tan(f/2) must stay finite


def _crop_params(azimuth: Any, elevation: Any, fov: Any, like: torch.Tensor | None = None) -> list[torch.Tensor]:
    az = _as_float(azimuth, "azimuth", like=like)
    el = _as_float(elevation, "elevation", like=like)
    fv = _as_float(fov, "fov", like=like)
    if bool(((fv <= 0) | (fv > _MAX_FOV)).any()):
        raise InputError(f"fov must be in (0, {_MAX_FOV}] radians, got values in [{float(fv.min()):.4g}, {float(fv.max()):.4g}]")
    tensors = _common(az, el, fv)
    return _broadcast(("azimuth", "elevation", "fov"), *tensors)


def gnomonic_rays(azimuth: Any, elevation: Any, fov: Any, size: int) -> torch.Tensor:
    """World directions of every pixel of gnomonic crops.

    Parameters
    ----------
    azimuth, elevation : array_like, shape (...)
        Crop centre θ0, φ0 in radians.
    fov : array_like, shape (...)
        Horizontal (= vertical) field of view f in radians, in (0, 3].
    size : int
        N, the crop's side in pixels.

    Returns
    -------
    torch.Tensor, shape (..., N, N, 3)
        Unit vectors [x, y, z] (x forward, y left, z up); index [..., i, j, :]
        is row i (top → bottom), column j (left → right).
    """
    n = _size(size, "size")
    az, el, fv = _crop_params(azimuth, elevation, fov)
    t = torch.tan(fv / 2)[..., None]  # (..., 1)
    steps = torch.linspace(-1.0, 1.0, n, dtype=t.dtype, device=t.device) if n > 1 else t.new_zeros(1)
    ab = t * steps  # (..., N): a_j for columns, b_i for rows
    a = ab[..., None, :].expand(*ab.shape[:-1], n, n)  # varies along columns
    b = ab[..., :, None].expand(*ab.shape[:-1], n, n)  # varies along rows
    camera = torch.stack([torch.ones_like(a), -a, -b], dim=-1)
    camera = camera / torch.linalg.vector_norm(camera, dim=-1, keepdim=True)
    cam_to_world = front_rotation(az, el).transpose(-1, -2)  # C = Mᵀ, (..., 3, 3)
    return torch.einsum("...rc,...ijc->...ijr", cam_to_world, camera)


def gnomonic_crop(frames: Any, azimuth: Any, elevation: Any, fov: Any, size: int) -> torch.Tensor:
    """Perspective crops of equirectangular frames, all in one sampling call.

    Parameters
    ----------
    frames : array_like, shape (*L, C, H, W)
        Equirectangular frames (W = 2H normally), uint8 (0..255) or float.
        ``L`` are leading dimensions, e.g. ``(B, T)``.
    azimuth, elevation, fov : array_like
        Crop centres θ0, φ0 and horizontal field of view f, radians,
        broadcasting against each other to a shape ``A``:

        * ``A = ()`` (scalars): one crop of every frame; output ``(*L, C, N, N)``.
        * ``A = (*P, K)``: ``P`` broadcasts with the first ``len(P)``
          dimensions of ``L`` (``L = (*P', *R)``), ``K`` is the crop axis.
          Output ``(*P″, K, *R, C, N, N)`` with P″ the broadcast of P and P'.
          Examples: frames ``(T, C, H, W)`` with azimuth ``(K,)`` →
          ``(K, T, C, N, N)``; frames ``(B, T, C, H, W)`` with azimuth
          ``(B, K)`` → ``(B, K, T, C, N, N)``; for one crop per frame of
          ``(B, T, C, H, W)`` pass azimuth ``(B, T, 1)`` → ``(B, T, 1, C, N, N)``.
    size : int
        N, the crop side in pixels.

    Returns
    -------
    torch.Tensor, shape as above
        Bilinear samples. Float input keeps its dtype and scale; **uint8 input
        gives float32 in 0..255** (not rounded; ``.round().to(torch.uint8)``
        for images).
    """
    n = _size(size, "size")
    f = frames if isinstance(frames, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(frames))
    # uint8 stays uint8 until the one fused convert-and-pad copy below; floats are checked for NaN/inf.
    sample_dtype = torch.float32 if f.dtype == torch.uint8 else _as_float(f, "frames").dtype
    if f.dtype != torch.uint8:
        f = _as_float(f, "frames")
    if f.ndim < 3:
        raise InputError(f"frames must have shape (..., C, H, W), got {tuple(f.shape)}")
    c, h, w = f.shape[-3:]
    if h < 2 or w < 2:
        raise InputError(f"frames must be at least 2 × 2 pixels, got H = {h}, W = {w}")
    az, el, fv = _crop_params(azimuth, elevation, fov, like=f)
    az, el, fv = [x.to(sample_dtype) for x in (az, el, fv)]
    lead = f.shape[:-3]
    scalar = az.ndim == 0
    if scalar:
        az, el, fv = az[None], el[None], fv[None]  # K = 1
    p = az.ndim - 1
    if p > len(lead):
        raise InputError(
            f"crop angles of shape {tuple(az.shape)} have more batch dimensions than frames {tuple(f.shape)} "
            "(angles are (*P, K) with P matching the frames' first dimensions)"
        )
    k = az.shape[-1]
    try:
        batch = torch.broadcast_shapes(az.shape[:-1], lead[:p])
    except RuntimeError as error:
        raise InputError(
            f"crop angles of shape {tuple(az.shape)} (batch part {tuple(az.shape[:-1])}) do not broadcast with "
            f"the first dimensions {tuple(lead[:p])} of frames {tuple(f.shape)}"
        ) from error
    rest = lead[p:]
    n_batch = int(torch.Size(batch).numel())
    n_rest = int(torch.Size(rest).numel())

    # Grid: (P, K, N, N, 2) pixel positions in the frame (array index = coordinate − ½).
    rays = gnomonic_rays(az.expand(*batch, k), el.expand(*batch, k), fv.expand(*batch, k), n)
    ray_az = torch.atan2(rays[..., 1], rays[..., 0])
    ray_el = torch.atan2(rays[..., 2], torch.hypot(rays[..., 0], rays[..., 1]))
    u, v = direction_to_equirect(ray_az, ray_el, w, h)  # u in [0, W)
    x = u - 0.5 + 1.0  # index in the frame padded by one wrapped column on each side
    y = v - 0.5
    grid = torch.stack([2.0 * x / (w + 1) - 1.0, 2.0 * y / (h - 1) - 1.0], dim=-1)  # align_corners=True
    grid = grid.reshape(n_batch, k * n, n, 2)  # crops stacked along the output height

    # Frames: (P, R·C, H, W + 2), circularly padded in width; every crop shares the channels.
    frames_b = f.expand(*batch, *rest, c, h, w).reshape(n_batch, n_rest * c, h, w)
    padded = torch.empty((n_batch, n_rest * c, h, w + 2), dtype=sample_dtype, device=f.device)
    padded[..., 1 : w + 1] = frames_b  # converts uint8 → float32 in the same pass
    padded[..., 0] = frames_b[..., -1]
    padded[..., w + 1] = frames_b[..., 0]
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=True)
    out = out.reshape(n_batch, n_rest, c, k, n, n).permute(0, 3, 1, 2, 4, 5)  # (P, K, R, C, N, N)
    out = out.reshape(*batch, k, *rest, c, n, n)
    return out.squeeze(len(batch)) if scalar else out


def crop_coordinates(
    azimuth: Any, elevation: Any, center_azimuth: Any, center_elevation: Any, fov: Any, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where directions land in a gnomonic crop (inverse of :func:`gnomonic_rays`).

    Parameters
    ----------
    azimuth, elevation : array_like, shape (...)
        Directions θ, φ in radians.
    center_azimuth, center_elevation, fov : array_like, shape (...)
        The crop's centre θ0, φ0 and field of view f, radians (all broadcast).
    size : int
        N, the crop side in pixels.

    Returns
    -------
    col, row : torch.Tensor, shape (...)
        Array-index coordinates: pixel centre (i, j) is at row = i, col = j, so
        the crop centre is ((N − 1)/2, (N − 1)/2). Values outside [−½, N − ½]
        lie outside the crop. NaN for directions behind the camera.
    in_view : torch.Tensor of bool, shape (...)
        True where the direction is in front of the camera and inside the crop.
    """
    n = _size(size, "size")
    caz, cel, fv = _crop_params(center_azimuth, center_elevation, fov)
    d = direction_vector(azimuth, elevation)
    d, caz = _common(d, caz)
    m = front_rotation(caz, cel.to(caz.dtype))  # world → camera
    cam = (m @ d[..., None])[..., 0]
    cx, cy, cz = cam.unbind(-1)
    front = cx > 1e-12
    safe = torch.where(front, cx, torch.ones_like(cx))
    t = torch.tan(fv.to(cam.dtype) / 2)
    scale = (n - 1) / (2 * t)
    col = (-cy / safe + t) * scale
    row = (-cz / safe + t) * scale
    nan = torch.full_like(col, float("nan"))
    col, row = torch.where(front, col, nan), torch.where(front, row, nan)
    inside = front & (col >= -0.5) & (col <= n - 0.5) & (row >= -0.5) & (row <= n - 0.5)
    return col, row, inside
