"""A simple spherical-head binaural renderer for first-order Ambisonics.

Parametric, DirAC-style: in every time-frequency bin of the STFT the direction
of arrival is that of the active intensity vector Re(W*·[X, Y, Z]) (conventions
§6), and the omnidirectional W is filtered for each ear by the Brown–Duda
spherical-head model (IEEE TSAP 1998) of that direction:

- delay (Woodworth): for an incidence angle γ from the ear's axis,
  τ(γ) = −(a/c)·cos γ for γ < π/2 and (a/c)·(γ − π/2) beyond;
- head shadow: H(ω, γ) = (1 + j·α(γ)·ω/(2ω0)) / (1 + j·ω/(2ω0)), ω0 = c/a,
  α(γ) = (1 + α_min/2) + (1 − α_min/2)·cos(γ/γ_min·π), α_min = 0.1, γ_min = 150°.

Ears at azimuth ±90° (left = +y), head radius a = 8.75 cm: a source at 90° left
reaches the left ear (a/c)(1 + π/2) ≈ 0.66 ms earlier, and louder at high
frequencies. "Binaural-like": no pinnae, no torso, diffuse sound is rendered
from its (fluctuating) instantaneous directions.
"""

from __future__ import annotations

import numpy as np

import torch

from avsa.spatial import sphere

SPEED_OF_SOUND = 343.0
HEAD_RADIUS = 0.0875


def head_transfer(azimuth: float, elevation: float, sample_rate: int, n_fft: int,
                  *, radius: float = HEAD_RADIUS) -> np.ndarray:
    """Spherical-head transfer functions (2, n_fft//2 + 1) of both ears (L, R) for one direction."""
    d = sphere.direction_vector(azimuth, elevation).numpy()
    omega = 2 * np.pi * np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    omega0 = SPEED_OF_SOUND / radius
    out = []
    for ear in (np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0])):
        gamma = float(np.arccos(np.clip(d @ ear, -1.0, 1.0)))
        tau = -(radius / SPEED_OF_SOUND) * np.cos(gamma) if gamma < np.pi / 2 else \
            (radius / SPEED_OF_SOUND) * (gamma - np.pi / 2)
        alpha = 1.05 + 0.95 * np.cos(gamma / np.radians(150.0) * np.pi)
        shadow = (1 + 1j * alpha * omega / (2 * omega0)) / (1 + 1j * omega / (2 * omega0))
        out.append(shadow * np.exp(-1j * omega * (tau + radius / SPEED_OF_SOUND)))  # + a/c keeps it causal
    return np.stack(out)


def _ear_filters(gamma: torch.Tensor, omega: torch.Tensor, radius: float) -> torch.Tensor:
    """Brown–Duda transfer of one ear for incidence angles ``gamma`` (any shape) at ``omega`` (broadcast)."""
    a_c = radius / SPEED_OF_SOUND
    tau = torch.where(gamma < np.pi / 2, -a_c * torch.cos(gamma), a_c * (gamma - np.pi / 2))
    alpha = 1.05 + 0.95 * torch.cos(gamma / np.radians(150.0) * np.pi)
    omega0 = 1.0 / a_c
    shadow = torch.complex(torch.ones_like(omega * alpha), alpha * omega / (2 * omega0)) / \
        torch.complex(torch.ones_like(omega * alpha), omega / (2 * omega0) * torch.ones_like(alpha))
    return shadow * torch.exp(torch.complex(torch.zeros_like(tau * omega), -omega * (tau + a_c)))


def foa_to_binaural(foa, sample_rate: int, *, n_fft: int = 512, hop_length: int = 128,
                    radius: float = HEAD_RADIUS) -> np.ndarray:
    """Binaural-like (2, N) L/R signal of an ambiX/SN3D field (4, N), parametric (see the module docstring)."""
    x = torch.as_tensor(np.asarray(foa), dtype=torch.float64)
    n = x.shape[-1]
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(x, n_fft, hop_length, window=window, return_complex=True)  # (4, F, T)
    w, y, z, xx = spec[0], spec[1], spec[2], spec[3]
    v = torch.stack([xx, y, z])  # x, y, z order
    intensity = (w.conj()[None] * v).real  # (3, F, T), points towards the source
    norm = intensity.norm(dim=0).clamp_min(1e-30)
    dy = intensity[1] / norm  # left component of the unit direction
    dy = torch.where(norm > 1e-20, dy, torch.zeros_like(dy))  # silent bins: straight ahead
    omega = (2 * np.pi * torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64))[:, None]
    left = _ear_filters(torch.arccos(dy.clamp(-1, 1)), omega, radius) * w
    right = _ear_filters(torch.arccos((-dy).clamp(-1, 1)), omega, radius) * w
    out = torch.istft(torch.stack([left, right]), n_fft, hop_length, window=window, length=n)
    return out.numpy().astype(np.float32)
