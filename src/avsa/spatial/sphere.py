"""Directions on the sphere, equirectangular pixel coordinates and rotations.

Frame (``docs/conventions.md`` §1–§2, §4): x forward, y left, z up.
Azimuth θ is 0 at the front and positive to the left, in (−π, π]; elevation φ
is 0 at the horizon and positive up, in [−π/2, π/2]. All angles are radians.
Rotation matrices are active and right-handed (the same as scipy's
``Rotation.from_euler``).

Every function takes torch tensors or NumPy arrays (or Python numbers) and
returns torch tensors, broadcasting over leading dimensions; device and dtype
follow the inputs (integers and Python numbers become the default float dtype).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from avsa.errors import InputError

__all__ = [
    "direction_vector",
    "vector_direction",
    "direction_to_equirect",
    "equirect_to_direction",
    "wrap_angle",
    "angular_distance",
    "yaw",
    "pitch",
    "roll",
    "front_rotation",
]


# --------------------------------------------------------------------------- helpers
# Shared by the other modules of avsa.spatial (private to the package).


def _as_float(x: Any, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Turn ``x`` into a finite floating-point tensor (on ``like``'s device).

    Integers and Python numbers become the default dtype (or ``like``'s dtype);
    floating tensors keep theirs. Raises :class:`InputError` naming ``name``
    if ``x`` is not numeric or holds NaN/inf.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            if isinstance(x, np.ndarray):
                t = torch.as_tensor(np.ascontiguousarray(x))
            else:
                dtype = like.dtype if like is not None and like.is_floating_point() else None
                t = torch.as_tensor(x, dtype=dtype if isinstance(x, (int, float)) else None)
        except (TypeError, ValueError, RuntimeError) as error:
            raise InputError(f"{name} must be a number, NumPy array or torch tensor, got {type(x).__name__}") from error
    if t.is_complex():
        raise InputError(f"{name} must be real, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(like.dtype if like is not None and like.is_floating_point() else torch.get_default_dtype())
    if like is not None and t.device != like.device:
        t = t.to(like.device)
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} contains NaN or inf values")
    return t


def _common(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Cast tensors to their promoted floating dtype (devices must agree)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise InputError(f"inputs are on different devices: {sorted(str(d) for d in devices)}")
    return [t.to(dtype) for t in tensors]


def _broadcast(names: tuple[str, ...], *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Broadcast tensors, raising :class:`InputError` with their shapes if impossible."""
    try:
        return list(torch.broadcast_tensors(*tensors))
    except RuntimeError as error:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, tensors))
        raise InputError(f"shapes do not broadcast: {shapes}") from error


def _angles(azimuth: Any, elevation: Any, like: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    az = _as_float(azimuth, "azimuth", like=like)
    el = _as_float(elevation, "elevation", like=like)
    az, el = _common(az, el)
    az, el = _broadcast(("azimuth", "elevation"), az, el)
    return az, el


# --------------------------------------------------------------------------- directions


def direction_vector(azimuth: Any, elevation: Any) -> torch.Tensor:
    """Unit vector of a direction.

    Parameters
    ----------
    azimuth, elevation : array_like, shape (...)
        θ and φ in radians (broadcast against each other).

    Returns
    -------
    torch.Tensor, shape (..., 3)
        d(θ, φ) = [cos θ cos φ, sin θ cos φ, sin φ] (x forward, y left, z up).
    """
    az, el = _angles(azimuth, elevation)
    cos_el = torch.cos(el)
    return torch.stack([torch.cos(az) * cos_el, torch.sin(az) * cos_el, torch.sin(el)], dim=-1)


def vector_direction(vectors: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Direction of (not necessarily unit) vectors.

    Parameters
    ----------
    vectors : array_like, shape (..., 3)
        [x, y, z] with x forward, y left, z up.

    Returns
    -------
    azimuth : torch.Tensor, shape (...)
        θ = atan2(y, x) in radians, in (−π, π].
    elevation : torch.Tensor, shape (...)
        φ = atan2(z, √(x² + y²)) in radians, in [−π/2, π/2]. The zero vector
        gives (0, 0).
    """
    v = _as_float(vectors, "vectors")
    if v.ndim == 0 or v.shape[-1] != 3:
        raise InputError(f"vectors must have shape (..., 3), got {tuple(v.shape)}")
    x, y, z = v.unbind(-1)
    return torch.atan2(y, x), torch.atan2(z, torch.hypot(x, y))


def wrap_angle(angle: Any) -> torch.Tensor:
    """Wrap angles (radians, any shape) into (−π, π]."""
    a = _as_float(angle, "angle")
    wrapped = torch.remainder(a + math.pi, 2 * math.pi) - math.pi  # [−π, π)
    return torch.where(wrapped <= -math.pi, wrapped + 2 * math.pi, wrapped)


def angular_distance(azimuth_a: Any, elevation_a: Any, azimuth_b: Any, elevation_b: Any) -> torch.Tensor:
    """Great-circle angle between two directions.

    Parameters
    ----------
    azimuth_a, elevation_a, azimuth_b, elevation_b : array_like, shape (...)
        Radians, broadcast against each other.

    Returns
    -------
    torch.Tensor, shape (...)
        Angle in radians, in [0, π] (computed with atan2, accurate near 0 and π).
    """
    a = direction_vector(azimuth_a, elevation_a)
    b = direction_vector(azimuth_b, elevation_b)
    a, b = _common(a, b)
    a, b = _broadcast(("direction a", "direction b"), a, b)
    return torch.atan2(torch.linalg.vector_norm(torch.cross(a, b, dim=-1), dim=-1), (a * b).sum(-1))


# --------------------------------------------------------------------------- equirectangular


def _size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def direction_to_equirect(azimuth: Any, elevation: Any, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous pixel coordinates of directions in an equirectangular frame.

    Parameters
    ----------
    azimuth, elevation : array_like, shape (...)
        θ, φ in radians. Azimuths outside (−π, π] are wrapped.
    width, height : int
        Frame size W × H in pixels (normally W = 2H).

    Returns
    -------
    u : torch.Tensor, shape (...)
        Column coordinate u = W(½ − θ/2π), wrapped into [0, W). Pixel j covers
        [j, j + 1), so its centre is at j + ½; azimuth 0 is the image centre.
    v : torch.Tensor, shape (...)
        Row coordinate v = H(½ − φ/π) in [0, H]; the top edge is φ = +π/2.
    """
    w, h = _size(width, "width"), _size(height, "height")
    az, el = _angles(azimuth, elevation)
    return _equirect_uv(az, el, w, h)


def _equirect_uv(az: torch.Tensor, el: torch.Tensor, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`direction_to_equirect` of checked tensors (no input checks: for hot paths)."""
    u = torch.remainder(w * (0.5 - az / (2 * math.pi)), w)
    u = torch.where(u >= w, u - w, u)  # remainder can round up to w
    v = h * (0.5 - el / math.pi)
    return u, v


def equirect_to_direction(u: Any, v: Any, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Direction of continuous pixel coordinates in an equirectangular frame.

    Inverse of :func:`direction_to_equirect`. For the centre of pixel (i, j)
    pass u = j + ½, v = i + ½.

    Parameters
    ----------
    u, v : array_like, shape (...)
        Column and row coordinates in pixels (u may lie outside [0, W): it wraps).
    width, height : int
        Frame size W × H in pixels.

    Returns
    -------
    azimuth : torch.Tensor, shape (...)
        θ = π(1 − 2u/W) wrapped into (−π, π], radians.
    elevation : torch.Tensor, shape (...)
        φ = (π/2)(1 − 2v/H), radians.
    """
    w, h = _size(width, "width"), _size(height, "height")
    uu = _as_float(u, "u")
    vv = _as_float(v, "v")
    uu, vv = _common(uu, vv)
    uu, vv = _broadcast(("u", "v"), uu, vv)
    return wrap_angle(math.pi * (1 - 2 * uu / w)), (math.pi / 2) * (1 - 2 * vv / h)


# --------------------------------------------------------------------------- rotations


def _rotation(angle: Any, name: str, axis: int) -> torch.Tensor:
    return _axis_rotation(_as_float(angle, name), axis)


def _axis_rotation(a: torch.Tensor, axis: int) -> torch.Tensor:
    """:func:`_rotation` of a checked tensor (no input checks: for hot paths)."""
    c, s = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    if axis == 2:  # z
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    elif axis == 1:  # y
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:  # x
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def yaw(angle: Any) -> torch.Tensor:
    """Active rotation Rz(α) about the up axis: azimuth θ → θ + α.

    Parameters
    ----------
    angle : array_like, shape (...)
        α in radians.

    Returns
    -------
    torch.Tensor, shape (..., 3, 3)
        Same matrix as ``scipy.spatial.transform.Rotation.from_euler("z", α)``.
    """
    return _rotation(angle, "yaw angle", 2)


def pitch(angle: Any) -> torch.Tensor:
    """Active rotation Ry(β) about the left axis; positive β tips the front down.

    Parameters
    ----------
    angle : array_like, shape (...)
        β in radians.

    Returns
    -------
    torch.Tensor, shape (..., 3, 3)
        Same matrix as ``Rotation.from_euler("y", β)``.
    """
    return _rotation(angle, "pitch angle", 1)


def roll(angle: Any) -> torch.Tensor:
    """Active rotation Rx(γ) about the forward axis.

    Parameters
    ----------
    angle : array_like, shape (...)
        γ in radians.

    Returns
    -------
    torch.Tensor, shape (..., 3, 3)
        Same matrix as ``Rotation.from_euler("x", γ)``.
    """
    return _rotation(angle, "roll angle", 0)


def front_rotation(azimuth: Any, elevation: Any) -> torch.Tensor:
    """Rotation that brings direction (θ0, φ0) to the front: M = Ry(φ0)·Rz(−θ0).

    Yaw first, then pitch (``docs/conventions.md`` §4): ``M @ direction_vector(θ0, φ0)`` is
    exactly [1, 0, 0]. Its transpose is the camera of a gnomonic crop centred
    at (θ0, φ0).

    Parameters
    ----------
    azimuth, elevation : array_like, shape (...)
        θ0, φ0 in radians (broadcast against each other).

    Returns
    -------
    torch.Tensor, shape (..., 3, 3)
    """
    return _front_rotation(*_angles(azimuth, elevation))


def _front_rotation(az: torch.Tensor, el: torch.Tensor) -> torch.Tensor:
    """:func:`front_rotation` of checked tensors of one dtype and shape (no input checks: for hot paths)."""
    return _axis_rotation(el, 1) @ _axis_rotation(-az, 2)


def perturb_directions(azimuth: Any, elevation: Any, sigma: float,
                       rng: "np.random.Generator") -> tuple[torch.Tensor, torch.Tensor]:
    """Directions moved like a detector's error: by an angle ~|N(0, σ)| towards a uniform heading.

    Parameters
    ----------
    azimuth, elevation : array_like, same shape
        Radians.
    sigma : float
        Radians (0 returns the directions unchanged).
    rng : numpy.random.Generator
        Draws the angle and heading of every direction.

    Returns
    -------
    azimuth, elevation : torch.Tensor, float64, the input's shape
        The moved directions; each lies exactly ``|angle|`` from its original.
    """
    az, el = _angles(azimuth, elevation)
    az, el = az.double(), el.double()
    angle = torch.as_tensor(np.abs(rng.normal(0.0, sigma, size=tuple(az.shape))), dtype=torch.float64)
    heading = torch.as_tensor(rng.uniform(-math.pi, math.pi, size=tuple(az.shape)), dtype=torch.float64)
    centre = direction_vector(az, el)  # (..., 3)
    # local east and north at each centre (at a pole: any tangent pair)
    east = torch.stack([-torch.sin(az), torch.cos(az), torch.zeros_like(az)], dim=-1)
    north = torch.linalg.cross(centre, east)
    tangent = torch.cos(heading)[..., None] * east + torch.sin(heading)[..., None] * north
    moved = torch.cos(angle)[..., None] * centre + torch.sin(angle)[..., None] * tangent
    return vector_direction(moved)
