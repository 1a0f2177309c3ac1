"""Gnomonic (perspective) crops of equirectangular frames (``docs/conventions.md`` §2, §7).

A crop centred at (θ0, φ0) with horizontal field of view f and N × N pixels
looks along the camera C = Rz(θ0)·Ry(−φ0) = Mᵀ (M = ``front_rotation``). Its
pixel (row i, column j) has camera ray (1, −a_j, −b_i)/‖·‖ with
a_j, b_i = linspace(−tan(f/2), tan(f/2), N): columns run left → right, rows
top → bottom.

Sampling: one map of frame positions per crop, shared by all the frames it
is applied to; columns wrap around the ±180° seam, rows are clamped. uint8
frames give uint8 crops. On the CPU they are sampled with OpenCV's bilinear
``remap`` (fixed-point: positions in 1/32 pixel, values rounded to
integers), one call per frame for up to 4 channels (per channel plane
otherwise), from a scratch frame holding copies of just the rows the crops
read (sequential copies, then ``remap`` gathers from the cache: the same
samples, bit for bit, as from the frame itself); everything
else (float frames, CUDA tensors, or no OpenCV) goes through one torch
``grid_sample`` call for all crops of all frames, rounded for uint8 frames.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avsa.errors import InputError
from avsa.spatial.sphere import _as_float, _broadcast, _common, _front_rotation, _size, direction_vector, front_rotation

try:  # OpenCV is a dependency; the torch path below covers an install without it
    import cv2
except ImportError:  # pragma: no cover - exercised only without OpenCV
    cv2 = None

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
    rays = torch.stack(_camera_rays(az, el, fv, n), dim=-1)
    return rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True)


def _camera_rays(az: torch.Tensor, el: torch.Tensor, fv: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unnormalised world rays C·(1, −a_j, −b_i) of every pixel: x, y, z, each (..., N, N).

    Element-wise products only (no matrix product over the pixels), so every
    pixel's ray is computed the same way whatever the batch shape: component r
    is (C_r0 − a_j·C_r1) − b_i·C_r2, one (..., 1, N) − (..., N, 1) subtraction.
    Each component is a contiguous tensor of its own (fast element-wise
    kernels downstream; views into one shared tensor would change the last
    bits of ``atan2`` for some sizes).
    """
    t = torch.tan(fv / 2)[..., None]  # (..., 1)
    steps = torch.linspace(-1.0, 1.0, n, dtype=t.dtype, device=t.device) if n > 1 else t.new_zeros(1)
    ab = t * steps  # (..., N): a_j for columns, b_i for rows
    c = _front_rotation(az, el).movedim(-1, 0)[..., None]  # C = Mᵀ as [r][..., column r of M]: (3, ..., 3, 1)
    a_terms = (c[..., 0, :] - ab * c[..., 1, :])[..., None, :]  # C_r0 − a_j·C_r1, (3, ..., 1, N)
    b_terms = (ab * c[..., 2, :])[..., :, None]  # b_i·C_r2, (3, ..., N, 1)
    return tuple(torch.sub(a_terms[r], b_terms[r]) for r in range(3))


def _sampling_map(az: torch.Tensor, el: torch.Tensor, fv: torch.Tensor, n: int, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Array-index positions (x, y) in a W × H frame of every crop pixel, each (..., N, N).

    x = u − ½ in [−½, W − ½] with u = W(½ − θ/2π) (both samplers wrap columns
    around the seam, so x = W − ½ and x = −½ sample the same two columns);
    y = v − ½ clamped to [0, H − 1] (rows are clamped, as a replicated border
    would).

    Computed in the crop's own meridian plane: C = Rz(θ0)·Ry(−φ0), and
    Ry(−φ0)·(1, −a_j, −b_i) = (cos φ0 + b_i sin φ0, −a_j, sin φ0 − b_i cos φ0)
    = (f_i, −a_j, z_i), so pixel (i, j) lies at azimuth θ0 + atan2(−a_j, f_i)
    and elevation atan2(z_i, hypot(f_i, a_j)). Since a_{N−1−j} = −a_j, the
    right half of the columns mirrors the left (azimuth offsets negated,
    elevations equal): only the left half is computed. Its columns are padded
    so that every crop holds a multiple of 32 values, so that each value goes
    through the same (vectorised) kernel whatever the batch shape.
    """
    t = torch.tan(fv / 2)[..., None]  # (..., 1)
    steps = torch.linspace(-1.0, 1.0, n, dtype=t.dtype, device=t.device) if n > 1 else t.new_zeros(1)
    ab = t * steps  # (..., N): a_j for columns, b_i for rows
    half, mirrored = (n + 1) // 2, n // 2
    padded = next(m for m in range(half, half + 33) if (n * m) % 32 == 0)
    left = ab.new_zeros((*ab.shape[:-1], n, padded))
    left[..., :half] = torch.neg(ab[..., None, :half])  # −a_j ≥ 0: left of the centre
    cos_el, sin_el = torch.cos(el)[..., None], torch.sin(el)[..., None]
    forward = (cos_el + ab * sin_el)[..., :, None].expand_as(left).contiguous()  # f_i, (..., N, padded)
    up = (sin_el - ab * cos_el)[..., :, None].expand_as(left).contiguous()  # z_i
    offset = torch.atan2(left, forward)  # azimuth − θ0
    elevation = torch.atan2(up, torch.hypot(forward, left, out=forward), out=up)
    centre = torch.remainder(w * (0.5 - az / (2 * math.pi)), w)[..., None, None]  # u of θ0
    u = torch.cat([offset[..., :half], offset[..., :mirrored].flip(-1).neg_()], dim=-1)
    u = u.mul_(-w / (2 * math.pi)).add_(centre)  # in [−W/2, 3W/2]
    u = u.sub_(torch.floor(u * (1.0 / w)).mul_(w))  # in [0, W]
    v = torch.cat([elevation[..., :half], elevation[..., :mirrored].flip(-1)], dim=-1)
    return u.sub_(0.5), v.mul_(-h / math.pi).add_(h / 2 - 0.5).clamp_(0.0, h - 1.0)


def gnomonic_crop(frames: Any, azimuth: Any, elevation: Any, fov: Any, size: int) -> torch.Tensor:
    """Perspective crops of equirectangular frames, one sampling map per crop.

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
        gives uint8**, as an image sampler (and py360convert) does: on the CPU
        straight from OpenCV's fixed-point kernel, elsewhere ``grid_sample``
        rounded to the nearest integer (the two differ by at most 1). May be a
        non-contiguous view (channels-last for uint8 frames of 2 to 4
        channels on the CPU).
    """
    n = _size(size, "size")
    f = frames if isinstance(frames, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(frames))
    # uint8 stays uint8 (sampled as float32 off the OpenCV path); floats are checked for NaN/inf.
    if f.dtype != torch.uint8:
        f = _as_float(f, "frames")
    sample_dtype = torch.float32 if f.dtype == torch.uint8 else f.dtype
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
        batch = az.shape[:-1] if az.shape[:-1] == lead[:p] else torch.broadcast_shapes(az.shape[:-1], lead[:p])
    except RuntimeError as error:
        raise InputError(
            f"crop angles of shape {tuple(az.shape)} (batch part {tuple(az.shape[:-1])}) do not broadcast with "
            f"the first dimensions {tuple(lead[:p])} of frames {tuple(f.shape)}"
        ) from error
    rest = lead[p:]
    n_batch = int(torch.Size(batch).numel())
    n_rest = int(torch.Size(rest).numel())

    if cv2 is not None and f.dtype == torch.uint8 and f.device.type == "cpu":
        x, y = _map_float32(az, el, fv, batch, k, n, w, h)
        out = _remap_uint8(f, x, y, batch, rest, k, n)  # (P, K, R, C, N, N) uint8
    else:
        out = _grid_sample(f, az, el, fv, batch, rest, k, n, sample_dtype)
        if f.dtype == torch.uint8:
            out = out.round_().clamp_(0, 255).to(torch.uint8)
    out = out.reshape(*batch, k, *rest, c, n, n)
    return out.squeeze(len(batch)) if scalar else out


def _map_float32(az, el, fv, batch, k, n, w, h):
    """:func:`_sampling_map` for (*batch, K) crops as float32 (P, K·N, N) NumPy arrays."""
    with torch.inference_mode():  # maps for NumPy: no autograd bookkeeping on their ≈ 35 small tensor operations
        x, y = _sampling_map(*(t.expand(*batch, k) for t in (az, el, fv)), n, w, h)  # float32 already
    n_batch = int(torch.Size(batch).numel())
    return x.reshape(n_batch, k * n, n).numpy(), y.reshape(n_batch, k * n, n).numpy()


def _remap_uint8(f: torch.Tensor, x: np.ndarray, y: np.ndarray, batch, rest, k: int, n: int) -> torch.Tensor:
    """OpenCV bilinear samples of uint8 frames (*L, C, H, W) at maps (P, K·N, N) → (P, K, R, C, N, N).

    ``remap`` samples a scratch frame into which the rows the crops read
    (:func:`_source_rows`) were first copied, each at its own place: whole
    rows, so each band of them is one sequential block of memory, and
    ``remap`` then gathers from the cache instead of from a frame that does
    not fit in it. ``remap`` reads the same values at the same positions as
    from the frame itself, so the samples are the same, bit for bit. The
    scratch frame is kept per thread (:func:`_scratch`); the samples stay uint8.

    One ``remap`` per frame samples all its channels (up to 4): frames
    channels-last in memory are copied as they are, frames with 2 to 4
    separate channel planes are interleaved by the copy (``cv2.merge``, about
    as fast, where three one-channel ``remap`` calls cost 1.6 times one
    three-channel call). One plane, or more than 4, is sampled plane by plane.
    """
    c, h, w = f.shape[-3:]
    n_batch, n_rest = x.shape[0], int(torch.Size(rest).numel())
    frames = f.expand(*batch, *rest, c, h, w)
    interleaved = c <= 4 and frames.stride(-3) == 1  # channels-last in memory
    merged = not interleaved and 2 <= c <= 4  # channel planes, interleaved by the copy
    if interleaved:  # "planes" (1, H, W, C)
        frames = frames.movedim(-3, -1).unsqueeze(-4).numpy()
    else:  # planes (C, H, W)
        frames = frames.numpy()
    if interleaved or merged:
        out = np.empty((n_batch, n_rest, 1, k * n, n, c), dtype=np.uint8)
    else:
        out = np.empty((n_batch, n_rest, c, k * n, n), dtype=np.uint8)
    # Only these rows are written; remap reads nothing else but the row it wraps to below the bottom one, with weight 0
    scratch = _scratch((h, w, c) if interleaved or merged else (h, w))
    maps = [cv2.convertMaps(x[p], y[p], cv2.CV_16SC2) for p in range(n_batch)]  # one per crop set, all frames
    bands = _source_rows(y.reshape(n_batch, k, n * n), h)
    for index, lead in enumerate(np.ndindex(*batch, *rest)):
        p, r = divmod(index, n_rest)
        fixed, fractions = maps[p]
        if merged:
            for rows in bands[p]:
                band = scratch[rows]
                written = cv2.merge([plane[rows] for plane in frames[lead]], dst=band)
                if written is not band:  # OpenCV wrote elsewhere (it does not for these arrays): copy it in
                    band[...] = written
            cv2.remap(scratch, fixed, fractions, cv2.INTER_LINEAR, dst=out[p, r, 0], borderMode=cv2.BORDER_WRAP)
            continue
        for plane, target in zip(frames[lead], out[p, r]):
            for rows in bands[p]:
                scratch[rows] = plane[rows]
            cv2.remap(scratch, fixed, fractions, cv2.INTER_LINEAR, dst=target, borderMode=cv2.BORDER_WRAP)
    samples = torch.from_numpy(out)
    if interleaved or merged:  # (P, R, K, N, N, C) → (P, K, R, C, N, N), a channels-last view
        return samples.reshape(n_batch, n_rest, k, n, n, c).permute(0, 2, 1, 5, 3, 4)
    return samples.reshape(n_batch, n_rest, c, k, n, n).permute(0, 3, 1, 2, 4, 5)


_scratch_frames = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 scratch frame of ``shape``, kept per thread: a fresh one would page-fault on every call."""
    frame = getattr(_scratch_frames, "frame", None)
    if frame is None or frame.shape != shape:
        frame = _scratch_frames.frame = np.empty(shape, dtype=np.uint8)
    return frame


def _source_rows(y: np.ndarray, h: int) -> list[list[slice]]:
    """The rows of an H-row frame that bilinear sampling reads, per set of crops.

    Parameters
    ----------
    y : np.ndarray, shape (P, K, M)
        Row positions of P sets of K crops of M pixels each (:func:`_sampling_map`).

    Returns
    -------
    list of list of slice
        Per set, disjoint bands of rows, in order, whose union holds, for
        every crop of the set, rows ⌊y⌋ to ⌊y⌋ + 2 of each of its positions
        (``remap`` reads rows ⌊y⌋ and ⌊y⌋ + 1 of a position rounded to 1/32
        pixel, which may add one to ⌊y⌋), clamped to the frame. The row below
        the bottom one, which ``remap`` wraps to the top, is only asked for by
        positions clamped to the bottom row, with weight 0. Copying whole rows
        is faster than copying just the columns the crops read (a third of
        these rows' pixels on 90° crops): a band of rows is one block of memory.
    """
    tops = np.floor(y.min(axis=2)).astype(int).tolist()
    bottoms = (np.minimum(np.floor(y.max(axis=2)).astype(int) + 2, h - 1) + 1).tolist()
    bands = []
    for top, bottom in zip(tops, bottoms):
        merged: list[list[int]] = []
        for start, stop in sorted(zip(top, bottom)):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        bands.append([slice(start, stop) for start, stop in merged])
    return bands


def _grid_sample(f, az, el, fv, batch, rest, k, n, sample_dtype) -> torch.Tensor:
    """Bilinear ``grid_sample`` of frames (*L, C, H, W) for (*batch, K) crops → (P, K, R, C, N, N)."""
    c, h, w = f.shape[-3:]
    n_batch = int(torch.Size(batch).numel())
    n_rest = int(torch.Size(rest).numel())
    x, y = _sampling_map(az.expand(*batch, k), el.expand(*batch, k), fv.expand(*batch, k), n, w, h)
    x = x + 1.0  # index in the frame padded by one wrapped column on each side
    grid = torch.stack([2.0 * x / (w + 1) - 1.0, 2.0 * y / (h - 1) - 1.0], dim=-1)  # align_corners=True
    grid = grid.reshape(n_batch, k * n, n, 2)  # crops stacked along the output height

    # Frames: (P, R·C, H, W + 2), circularly padded in width; every crop shares the channels.
    frames_b = f.expand(*batch, *rest, c, h, w).reshape(n_batch, n_rest * c, h, w)
    padded = torch.empty((n_batch, n_rest * c, h, w + 2), dtype=sample_dtype, device=f.device)
    padded[..., 1 : w + 1] = frames_b  # converts uint8 → float32 in the same pass
    padded[..., 0] = frames_b[..., -1]
    padded[..., w + 1] = frames_b[..., 0]
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(n_batch, n_rest, c, k, n, n).permute(0, 3, 1, 2, 4, 5)  # (P, K, R, C, N, N)


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
