"""First-order Ambisonics: encoding, conventions, rotation, beams, validity.

Internal format everywhere (``docs/conventions.md`` §3–§5, §8):
ambiX = ACN channel order **W, Y, Z, X** with SN3D normalisation. A plane wave
s from (θ, φ) is ``[s, s·sin θ cos φ, s·sin φ, s·cos θ cos φ]``. The channel
axis is the one before samples: FOA signals have shape ``(..., 4, N)``.

Every function takes torch tensors or NumPy arrays and returns torch tensors;
leading dimensions are batch dimensions that broadcast between angles and
signals; device and dtype follow the signal (angles are cast to it). Angles
are radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from avsa.errors import InputError
from avsa.spatial.sphere import _angles, _as_float, direction_vector, front_rotation

__all__ = [
    "CONVENTIONS",
    "BEAM_PATTERNS",
    "encode",
    "to_ambix",
    "from_ambix",
    "rotate",
    "rotate_to_front",
    "mirror",
    "beamform",
    "to_stereo",
    "validity_ratio",
    "Diagnosis",
    "diagnose",
]

#: Channel conventions accepted by :func:`to_ambix` / :func:`from_ambix`, with their channel counts.
CONVENTIONS: dict[str, int] = {
    "ambix": 4,  # W, Y, Z, X — SN3D
    "fuma": 4,  # W, X, Y, Z — W scaled by 1/√2
    "n3d": 4,  # W, Y, Z, X — N3D (dipoles ×√3 of SN3D)
    "youtube-aac": 6,  # raw decoded AAC "5.1": X, Y, W, 0, Z, 0
    "ambix+headlocked": 6,  # W, Y, Z, X, L, R (L, R head-locked stereo)
}

#: First-order beam patterns: the omni weight a of a + (1 − a) cos γ (None = steering vector gᵀx).
BEAM_PATTERNS: dict[str, float | None] = {
    "cardioid": 0.5,
    "supercardioid": (math.sqrt(3.0) - 1.0) / 2.0,
    "hypercardioid": 0.25,
    "steering": None,
}

_W, _Y, _Z, _X = 0, 1, 2, 3
_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)


def _signal(x: Any, name: str, channels: int | None = None) -> torch.Tensor:
    """A finite float tensor of shape (..., C, N), C = ``channels`` if given."""
    t = _as_float(x, name)
    if channels is not None:
        if t.ndim < 2 or t.shape[-2] != channels:
            raise InputError(
                f"{name} must have shape (..., {channels}, N) with {channels} channels before the sample axis, "
                f"got shape {tuple(t.shape)}"
            )
    elif t.ndim < 1:
        raise InputError(f"{name} must have a sample axis, got a scalar")
    return t


def _foa(foa: Any) -> torch.Tensor:
    return _signal(foa, "foa", 4)


# --------------------------------------------------------------------------- encoding and conventions


def encode(signal: Any, azimuth: Any, elevation: Any) -> torch.Tensor:
    """Encode mono signals as ambiX/SN3D plane waves.

    Parameters
    ----------
    signal : array_like, shape (..., N)
        Source signals, N samples.
    azimuth, elevation : array_like
        Source direction θ, φ in radians, either one per signal — shape ``()``
        or ``(...,)`` broadcasting against ``signal.shape[:-1]`` — or one per
        sample for moving sources: an array with as many dimensions as
        ``signal`` whose last axis has length N (or 1). To encode one signal of
        N samples in N *different fixed* directions, add a sample axis:
        ``azimuth[..., None]``.

    Returns
    -------
    torch.Tensor, shape (..., 4, N)
        W, Y, Z, X = s·[1, sin θ cos φ, sin φ, cos θ cos φ].
    """
    s = _signal(signal, "signal")
    az, el = _angles(azimuth, elevation, like=s)
    az, el = az.to(s.dtype), el.to(s.dtype)  # the signal's dtype wins
    n = s.shape[-1]
    per_sample = az.ndim == s.ndim and az.shape[-1] in (n, 1)
    if not per_sample:
        az, el = az[..., None], el[..., None]
    d = direction_vector(az, el)  # (..., N or 1, 3)
    gains = torch.stack([torch.ones_like(d[..., 0]), d[..., 1], d[..., 2], d[..., 0]], dim=-2)  # (..., 4, N|1)
    try:
        return gains * s.unsqueeze(-2)
    except RuntimeError as error:
        raise InputError(
            f"angles of shape {tuple(az.shape)} do not broadcast with signal of shape {tuple(s.shape)}"
        ) from error


def _convention(convention: str) -> str:
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise InputError(f"unknown Ambisonics convention {convention!r}; expected one of {sorted(CONVENTIONS)}")
    return convention.lower()


def to_ambix(x: Any, convention: str) -> torch.Tensor:
    """Convert first-order Ambisonics in a named convention to ambiX/SN3D.

    Parameters
    ----------
    x : array_like, shape (..., C, N)
        Channels before samples. C = 4 for ``"ambix"`` (W, Y, Z, X, returned
        unchanged), ``"fuma"`` (W/√2, X, Y, Z) and ``"n3d"`` (W, Y, Z, X with
        N3D dipoles); C = 6 for ``"youtube-aac"`` (raw decoded AAC [X, Y, W, 0,
        Z, 0]) and ``"ambix+headlocked"`` (W, Y, Z, X, L, R; L and R dropped).
    convention : str
        One of :data:`CONVENTIONS`.

    Returns
    -------
    torch.Tensor, shape (..., 4, N)
        W, Y, Z, X with SN3D.
    """
    name = _convention(convention)
    t = _signal(x, "x", CONVENTIONS[name])
    if name == "ambix":
        return t
    if name == "fuma":  # c0..c3 = W, X, Y, Z → [√2 c0, c2, c3, c1]
        return torch.stack([_SQRT2 * t[..., 0, :], t[..., 2, :], t[..., 3, :], t[..., 1, :]], dim=-2)
    if name == "n3d":
        scale = t.new_tensor([1.0, 1 / _SQRT3, 1 / _SQRT3, 1 / _SQRT3])
        return t * scale[:, None]
    if name == "youtube-aac":
        return t[..., [2, 1, 4, 0], :]
    return t[..., :4, :]  # ambix+headlocked


def from_ambix(foa: Any, convention: str) -> torch.Tensor:
    """Convert ambiX/SN3D to a named convention (inverse of :func:`to_ambix`).

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        W, Y, Z, X with SN3D.
    convention : str
        One of :data:`CONVENTIONS`. For ``"youtube-aac"`` the two unused raw
        channels are zeros; for ``"ambix+headlocked"`` L and R are zeros.

    Returns
    -------
    torch.Tensor, shape (..., C, N)
        C = 4 or 6 as listed in :data:`CONVENTIONS`.
    """
    name = _convention(convention)
    t = _foa(foa)
    w, y, z, x = t.unbind(-2)
    zero = torch.zeros_like(w)
    if name == "ambix":
        return t
    if name == "fuma":
        return torch.stack([w / _SQRT2, x, y, z], dim=-2)
    if name == "n3d":
        return torch.stack([w, _SQRT3 * y, _SQRT3 * z, _SQRT3 * x], dim=-2)
    if name == "youtube-aac":
        return torch.stack([x, y, w, zero, z, zero], dim=-2)
    return torch.stack([w, y, z, x, zero, zero], dim=-2)


# --------------------------------------------------------------------------- rotation and mirroring


def rotate(foa: Any, matrix: Any) -> torch.Tensor:
    """Rotate a sound field.

    W is unchanged; the dipoles [X, Y, Z] rotate like direction vectors, so a
    plane wave from d ends up coming from ``matrix @ d``.

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X.
    matrix : array_like, shape (..., 3, 3)
        Active rotation(s) in the x-forward, y-left, z-up frame; leading
        dimensions broadcast with ``foa.shape[:-2]``.

    Returns
    -------
    torch.Tensor, shape (..., 4, N)
    """
    t = _foa(foa)
    m = _as_float(matrix, "matrix", like=t)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise InputError(f"matrix must have shape (..., 3, 3), got {tuple(m.shape)}")
    m = m.to(t.dtype)
    xyz = t[..., [_X, _Y, _Z], :]  # (..., 3, N)
    try:
        r = m @ xyz
    except RuntimeError as error:
        raise InputError(f"matrix {tuple(m.shape)} does not broadcast with foa {tuple(t.shape)}") from error
    w = t[..., _W : _W + 1, :].expand(*r.shape[:-2], 1, r.shape[-1])
    return torch.cat([w, r[..., 1:2, :], r[..., 2:3, :], r[..., 0:1, :]], dim=-2)


def rotate_to_front(foa: Any, azimuth: Any, elevation: Any) -> torch.Tensor:
    """Rotate the field so that direction (θ0, φ0) becomes the front.

    Uses M = Ry(φ0)·Rz(−θ0) (yaw first, then pitch; ``docs/conventions.md`` §4): a plane
    wave from (θ0, φ0) becomes exactly W = s, Y = Z = 0, X = s.

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X.
    azimuth, elevation : array_like, shape (...)
        θ0, φ0 in radians, broadcasting with ``foa.shape[:-2]``.

    Returns
    -------
    torch.Tensor, shape (..., 4, N)
    """
    t = _foa(foa)
    az, el = _angles(azimuth, elevation, like=t)
    return rotate(t, front_rotation(az.to(t.dtype), el.to(t.dtype)))


def mirror(foa: Any) -> torch.Tensor:
    """Mirror the field left↔right (Y → −Y), matching a horizontal flip of the frame.

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X.

    Returns
    -------
    torch.Tensor, shape (..., 4, N)
    """
    t = _foa(foa)
    return t * t.new_tensor([1.0, -1.0, 1.0, 1.0])[:, None]


# --------------------------------------------------------------------------- beams


def beamform(foa: Any, azimuth: Any, elevation: Any, pattern: str = "cardioid") -> torch.Tensor:
    """First-order beam towards (θ0, φ0).

    With u = d(θ0, φ0) the weights are [a, (1−a)u_y, (1−a)u_z, (1−a)u_x], so a
    plane wave s at angle γ from u gives s·(a + (1−a) cos γ) (``docs/conventions.md`` §5).

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X (SN3D).
    azimuth, elevation : array_like, shape (...)
        Beam direction θ0, φ0 in radians, broadcasting with ``foa.shape[:-2]``.
    pattern : {"cardioid", "supercardioid", "hypercardioid", "steering"}
        a = ½, (√3 − 1)/2, ¼; ``"steering"`` is the plain steering vector gᵀx,
        i.e. s·(1 + cos γ) (twice the cardioid).

    Returns
    -------
    torch.Tensor, shape (..., N)
    """
    if pattern not in BEAM_PATTERNS:
        raise InputError(f"unknown beam pattern {pattern!r}; expected one of {sorted(BEAM_PATTERNS)}")
    t = _foa(foa)
    az, el = _angles(azimuth, elevation, like=t)
    az, el = az.to(t.dtype), el.to(t.dtype)
    u = direction_vector(az, el)  # (..., 3)
    a = BEAM_PATTERNS[pattern]
    omni, dipole = (1.0, 1.0) if a is None else (a, 1.0 - a)
    weights = torch.stack(
        [torch.full_like(u[..., 0], omni), dipole * u[..., 1], dipole * u[..., 2], dipole * u[..., 0]], dim=-1
    )  # (..., 4)
    try:
        return (weights[..., :, None] * t).sum(-2)
    except RuntimeError as error:
        raise InputError(f"angles of shape {tuple(az.shape)} do not broadcast with foa {tuple(t.shape)}") from error


def to_stereo(foa: Any) -> torch.Tensor:
    """Stereo from two hypercardioids at ±90° (paper Eq. 9) of an already rotated field.

    L = ¼W + ¾Y, R = ¼W − ¾Y. A source at 90° left gives L = 1, R = −0.5.
    Rotate the crop centre to the front first (:func:`rotate_to_front`).

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X (SN3D).

    Returns
    -------
    torch.Tensor, shape (..., 2, N)
        Channels L, R.
    """
    t = _foa(foa)
    w, y = t[..., _W, :], t[..., _Y, :]
    return torch.stack([0.25 * w + 0.75 * y, 0.25 * w - 0.75 * y], dim=-2)


# --------------------------------------------------------------------------- validity (paper Eq. 13)

#: Mean energy per sample (summed over the 4 channels, after the low-pass) at or below which a clip is silent.
SILENCE_ENERGY = 1e-20


def _lowpass_energies(t: torch.Tensor, sample_rate: float, cutoff_hz: float) -> torch.Tensor:
    """Per-channel energy below ``cutoff_hz`` (ideal low-pass, by Parseval), shape (..., C)."""
    n = t.shape[-1]
    spectrum = torch.fft.rfft(t, dim=-1)
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate).to(t.device)
    keep = (freqs <= cutoff_hz).to(t.dtype)
    # One-sided spectrum: every bin but DC (and Nyquist for even n) stands for two.
    weight = torch.full_like(keep, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return (spectrum.abs().square() * (keep * weight)).sum(-1) / n


def validity_ratio(foa: Any, sample_rate: float, cutoff_hz: float = 4000.0) -> torch.Tensor:
    """Ambisonic validity ratio ρ = E_xyz / E_w after a low-pass (paper Eq. 13).

    ρ = Σ(X² + Y² + Z²) / Σ W² over the whole clip. The low-pass is an ideal
    (brick-wall) filter at ``cutoff_hz`` applied in the frequency domain; the
    energies follow from Parseval's theorem. For ambiX/SN3D ρ ≈ 1 (exactly 1
    for one plane wave), ≈ 2 for FuMa-scaled W, ≈ 3 for N3D, ≈ 0 for an
    up-mixed mono file (``docs/conventions.md`` §8).

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X.
    sample_rate : float
        Hz.
    cutoff_hz : float, default 4000.0
        Low-pass cut-off in Hz; values at or above Nyquist keep everything.

    Returns
    -------
    torch.Tensor, shape (...)
        ρ (dimensionless). **NaN for a silent clip** (mean low-passed energy
        per sample ≤ :data:`SILENCE_ENERGY`); +inf if W is empty but the dipoles
        are not.
    """
    t = _foa(foa)
    if not (isinstance(sample_rate, (int, float)) and sample_rate > 0):
        raise InputError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    if not (isinstance(cutoff_hz, (int, float)) and cutoff_hz > 0):
        raise InputError(f"cutoff_hz must be a positive number of Hz, got {cutoff_hz!r}")
    if t.shape[-1] == 0:
        raise InputError("foa has no samples")
    energy = _lowpass_energies(t, float(sample_rate), float(cutoff_hz))  # (..., 4)
    e_w = energy[..., _W]
    e_xyz = energy[..., 1:].sum(-1)
    silent = (e_w + e_xyz) / t.shape[-1] <= SILENCE_ENERGY
    ratio = torch.where(e_w > 0, e_xyz / torch.where(e_w > 0, e_w, torch.ones_like(e_w)), torch.full_like(e_w, math.inf))
    return torch.where(silent, torch.full_like(ratio, math.nan), ratio)


@dataclass(frozen=True)
class Diagnosis:
    """Likely convention of a 4-channel clip read as ambiX.

    Attributes
    ----------
    convention : {"ambix", "fuma", "n3d", "not ambisonic", "silent"}
    ratio : float
        The validity ratio ρ of :func:`validity_ratio` (NaN when silent).
    reason : str
        One line explaining the verdict.
    """

    convention: Literal["ambix", "fuma", "n3d", "not ambisonic", "silent"]
    ratio: float
    reason: str


def diagnose(foa: Any, sample_rate: float, *, tolerance: float = 0.1) -> Diagnosis:
    """Guess the convention of one clip from its validity ratio ρ (``docs/conventions.md`` §8).

    Bands (geometric midpoints between the ideal values 1, 2, 3, 6):
    ρ < 0.5 → not ambisonic (near-empty dipoles: mono/stereo up-mix);
    0.5 ≤ ρ < √2 → ambix; √2 ≤ ρ < √6 → fuma; √6 ≤ ρ < √18 → n3d;
    ρ ≥ √18 → not ambisonic (e.g. ≈ 6: FuMa W with N3D dipoles).
    ρ cannot see channel order or sign.

    Parameters
    ----------
    foa : array_like, shape (4, N)
        One clip, read as ambiX W, Y, Z, X.
    sample_rate : float
        Hz.
    tolerance : float, default 0.1
        τ of the paper's filter |ρ − 1| ≤ τ, only quoted in the reason.

    Returns
    -------
    Diagnosis
    """
    t = _foa(foa)
    if t.ndim != 2:
        raise InputError(f"diagnose takes one clip of shape (4, N), got {tuple(t.shape)}")
    rho = float(validity_ratio(t, sample_rate))
    if math.isnan(rho):
        return Diagnosis("silent", rho, "the clip is silent below 4 kHz; its convention cannot be judged")
    if rho < 0.5:
        return Diagnosis("not ambisonic", rho, f"rho = {rho:.3f} << 1: the dipole channels are (nearly) empty, "
                         "as in an up-mixed mono or stereo file")
    if rho < math.sqrt(2.0):
        passes = "passes" if abs(rho - 1.0) <= tolerance else "fails"
        return Diagnosis("ambix", rho, f"rho = {rho:.3f} ≈ 1 as for SN3D; {passes} the paper's |rho - 1| <= {tolerance} test")
    if rho < math.sqrt(6.0):
        return Diagnosis("fuma", rho, f"rho = {rho:.3f} ≈ 2: W looks scaled by 1/sqrt(2) (FuMa); convert with to_ambix(x, 'fuma')")
    if rho < math.sqrt(18.0):
        return Diagnosis("n3d", rho, f"rho = {rho:.3f} ≈ 3: dipoles look N3D-scaled; convert with to_ambix(x, 'n3d')")
    return Diagnosis("not ambisonic", rho, f"rho = {rho:.3f} is far above 3 (≈ 6 would be FuMa W with N3D dipoles)")
