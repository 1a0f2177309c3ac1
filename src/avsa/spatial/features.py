"""Audio features for the encoders: log-mel, FOA intensity vectors, stereo ICF.

Defaults are the paper's (docs/system.md §4): 1 s at 24 kHz, STFT n_fft 512 with a
periodic Hann window, hop 240, 128 Slaney mel bands (the same filters as
``librosa.filters.mel(htk=False, norm="slaney")``) → T = 100 frames, F = 128.

Framing: centred frames (frame t is centred on sample t·hop, the signal is
zero-padded by n_fft/2 at both ends — librosa's ``center=True,
pad_mode="constant"``), keeping the first **T = N // hop_length** frames
(librosa's 1 + N // hop minus the last one). 24 000 samples → 100 frames.

``docs/conventions.md`` §6: features are computed from the power spectrogram |STFT|²
(no window normalisation); log-mel is ``log(mel + floor)`` (natural log,
floor 1e-10 by default, so empty low mel bands — narrower than one FFT bin at
n_fft 512 — give log(floor), never −inf). Layout ``(..., C, T, F)``.

All functions take torch tensors or NumPy arrays and return torch tensors in
the input's dtype and device, batched over leading dimensions.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Literal

import numpy as np
import torch

from avsa.audio_inputs import AUDIO_INPUTS, FEATURE_FORMAT, FEATURES, FORMAT_CHANNELS
from avsa.errors import InputError
from avsa.spatial.sphere import _as_float

__all__ = [
    "LOG_FLOOR",
    "mel_filterbank",
    "stft",
    "log_mel",
    "foa_intensity",
    "stereo_icf",
    "feature_stack",
    "feature_stack_mixed",
    "feature_channels",
]

#: Default floor added before the logarithm (power units of |STFT|²).
LOG_FLOOR = 1e-10

FeatureName = Literal["mel", "iv", "icf"]


# --------------------------------------------------------------------------- mel filters


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    linear = hz * 3.0 / 200.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * 200.0 / 3.0)


@functools.lru_cache(maxsize=16)
def _mel_numpy(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    bins_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (upper - lower))  # Slaney: constant area per band


@functools.lru_cache(maxsize=32)
def _mel_tensor(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(_mel_numpy(sample_rate, n_fft, n_mels, fmin, fmax), dtype=dtype, device=device)


def mel_filterbank(
    sample_rate: float,
    *,
    n_fft: int = 512,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Slaney-normalised triangular mel filters (cached per parameters, device and dtype).

    Same values as ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft,
    n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")``. With the
    defaults at 24 kHz a few of the lowest filters are empty (narrower than
    one 46.9 Hz bin): their rows are all zero.

    Parameters
    ----------
    sample_rate : float
        Hz.
    n_fft : int, default 512
        FFT size; there are n_fft // 2 + 1 frequency bins.
    n_mels : int, default 128
        Number of bands F.
    fmin, fmax : float
        Band edges in Hz; ``fmax`` defaults to sample_rate / 2.
    device, dtype
        Of the returned tensor.

    Returns
    -------
    torch.Tensor, shape (n_mels, n_fft // 2 + 1)
        Treat as read-only: the same tensor is returned on every call.
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not (0.0 <= fmin < fmax <= sample_rate / 2.0 + 1e-9):
        raise InputError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin = {fmin}, fmax = {fmax}, sample_rate = {sample_rate}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return _mel_tensor(float(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax), dev, dtype)


# --------------------------------------------------------------------------- STFT


def _check_options(sample_rate: Any, n_fft: int, hop_length: int, n_mels: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    for name, value, low in (("n_fft", n_fft, 2), ("hop_length", hop_length, 1), ("n_mels", n_mels, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")


def _audio(x: Any, name: str, channels: int | None, hop_length: int) -> torch.Tensor:
    t = _as_float(x, name)
    if t.ndim < 2:
        raise InputError(f"{name} must have shape (..., C, N), got {tuple(t.shape)}")
    if channels is not None and t.shape[-2] != channels:
        raise InputError(f"{name} must have {channels} channels before the sample axis, got shape {tuple(t.shape)}")
    if t.shape[-1] < hop_length:
        raise InputError(f"{name} has {t.shape[-1]} samples, fewer than one hop of {hop_length}")
    return t


@functools.lru_cache(maxsize=16)
def _window(n_fft: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)


def stft(x: Any, *, n_fft: int = 512, hop_length: int = 240) -> torch.Tensor:
    """Complex STFT of every channel with this module's framing.

    Parameters
    ----------
    x : array_like, shape (..., N)
        Signals (float), N >= hop_length samples.
    n_fft : int, default 512
        FFT and (periodic Hann) window size in samples.
    hop_length : int, default 240
        Samples between frames.

    Returns
    -------
    torch.Tensor, complex, shape (..., T, n_fft // 2 + 1)
        T = N // hop_length centred frames (see the module docstring).
    """
    t = _as_float(x, "x")
    if t.ndim < 1 or t.shape[-1] < hop_length:
        raise InputError(f"x must have at least hop_length = {hop_length} samples on its last axis, got shape {tuple(t.shape)}")
    lead, n = t.shape[:-1], t.shape[-1]
    spec = _stft_bins_first(t, n_fft, hop_length)  # (B, K, T)
    return spec.transpose(-1, -2).reshape(*lead, n // hop_length, n_fft // 2 + 1)


def _stft_bins_first(t: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """:func:`stft` of checked signals (..., N) as (B, K, T), B the flattened leading dimensions."""
    n = t.shape[-1]
    spec = torch.stft(
        t.reshape(-1, n),
        n_fft,
        hop_length=hop_length,
        window=_window(n_fft, t.device, t.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, K, 1 + N // hop)
    return spec[..., : n // hop_length]


def _to_mel(power: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """(..., T, K) → (..., T, F)."""
    return power @ mel.T


# --------------------------------------------------------------------------- features from spectra


def _power(spec: torch.Tensor) -> torch.Tensor:
    """|STFT|² of complex spectra."""
    return spec.real.square() + spec.imag.square()


def _log_of(mel_power: torch.Tensor, floor: float) -> torch.Tensor:
    """Log-mel from mel-band power (which must be >= 0)."""
    return torch.log(mel_power + floor)


def _intensity_from(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """IV from its mel-band numerator 2Re(W*[X, Y, Z]) (..., 3, T, F) and denominator Σ|·|² (..., 1, T, F)."""
    positive = denominator > 0
    iv = numerator / torch.where(positive, denominator, torch.ones_like(denominator))
    return torch.where(positive, iv, torch.zeros_like(iv)).clamp(-1.0, 1.0)


def _icf_from(p_left: torch.Tensor, p_right: torch.Tensor, c_re: torch.Tensor, c_im: torch.Tensor,
              floor: float) -> torch.Tensor:
    """ICF (..., 3, T, F) from mel-band powers of L, R and the real, imaginary parts of M·(L R*)."""
    ild = 10.0 * torch.log10(p_left + floor) - 10.0 * torch.log10(p_right + floor)
    magnitude = torch.hypot(c_re, c_im)
    nonzero = magnitude > 0
    safe = torch.where(nonzero, magnitude, torch.ones_like(magnitude))
    cos_ipd = torch.where(nonzero, c_re / safe, torch.ones_like(c_re))
    sin_ipd = torch.where(nonzero, c_im / safe, torch.zeros_like(c_im))
    return torch.stack([ild, cos_ipd, sin_ipd], dim=-3)


def _log_mel_of(spec: torch.Tensor, mel: torch.Tensor, floor: float, power: torch.Tensor | None = None) -> torch.Tensor:
    return _log_of(_to_mel(_power(spec) if power is None else power, mel), floor)


def _intensity_of(spec: torch.Tensor, mel: torch.Tensor, power: torch.Tensor | None = None) -> torch.Tensor:
    """spec (..., 4, T, K) ambiX → (..., 3, T, F) IV in x, y, z order (``power``: its |spec|², if known)."""
    w = spec[..., 0:1, :, :]
    v = spec[..., [3, 1, 2], :, :]  # X, Y, Z
    numerator = _to_mel(2.0 * (w.conj() * v).real, mel)  # (..., 3, T, F)
    power = _power(spec) if power is None else power
    denominator = _to_mel(power.sum(-3, keepdim=True), mel)  # (..., 1, T, F)
    return _intensity_from(numerator, denominator)


def _icf_of(spec: torch.Tensor, mel: torch.Tensor, floor: float, power: torch.Tensor | None = None) -> torch.Tensor:
    """spec (..., 2, T, K) L, R → (..., 3, T, F): ILD (dB), cos IPD, sin IPD."""
    left, right = spec[..., 0, :, :], spec[..., 1, :, :]
    power = _power(spec) if power is None else power
    p_left, p_right = _to_mel(power[..., 0, :, :], mel), _to_mel(power[..., 1, :, :], mel)
    cross = left * right.conj()
    return _icf_from(p_left, p_right, _to_mel(cross.real, mel), _to_mel(cross.imag, mel), floor)


def _prepare(x: Any, name: str, channels: int | None, sample_rate: float, n_fft: int, hop_length: int, n_mels: int, fmin: float, fmax: float | None):
    _check_options(sample_rate, n_fft, hop_length, n_mels)
    t = _audio(x, name, channels, hop_length)
    mel = mel_filterbank(sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, device=t.device, dtype=t.dtype)
    return stft(t, n_fft=n_fft, hop_length=hop_length), mel


# --------------------------------------------------------------------------- public features


def log_mel(
    x: Any,
    sample_rate: float,
    *,
    n_fft: int = 512,
    hop_length: int = 240,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """Log-mel spectrogram of every channel.

    ``log(M·|STFT|² + floor)`` per channel, M = :func:`mel_filterbank`.

    Parameters
    ----------
    x : array_like, shape (..., C, N)
        Audio, N samples at ``sample_rate``.
    sample_rate : float
        Hz (24 000 in the paper).
    n_fft, hop_length : int
        STFT size and hop in samples (512, 240).
    n_mels : int
        Number of mel bands F (128).
    fmin, fmax : float
        Mel range in Hz (0 to sample_rate / 2).
    floor : float
        Added to the mel power before the natural log.

    Returns
    -------
    torch.Tensor, shape (..., C, T, F)
        T = N // hop_length (100 for 1 s at 24 kHz), F = n_mels.
    """
    spec, mel = _prepare(x, "x", None, sample_rate, n_fft, hop_length, n_mels, fmin, fmax)
    return _log_mel_of(spec, mel, floor)


def foa_intensity(
    foa: Any,
    sample_rate: float,
    *,
    n_fft: int = 512,
    hop_length: int = 240,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Mel-aggregated normalised active intensity vector (paper Eq. 7, ``docs/conventions.md`` §6).

    i_b = (M · 2Re(W* [X, Y, Z]))_b / (M · (|W|² + |X|² + |Y|² + |Z|²))_b,
    numerator and denominator aggregated separately. It points towards the
    source, has length 1 for one SN3D plane wave and less for mixtures or
    diffuse sound; each component is in [−1, 1]. Bands with no energy (silence,
    empty mel filters) give 0, never NaN. Expects SN3D (convert first).

    Parameters
    ----------
    foa : array_like, shape (..., 4, N)
        ambiX W, Y, Z, X.
    sample_rate : float
        Hz.
    n_fft, hop_length, n_mels, fmin, fmax
        As in :func:`log_mel`.

    Returns
    -------
    torch.Tensor, shape (..., 3, T, F)
        Channels x (front), y (left), z (up); dimensionless.
    """
    spec, mel = _prepare(foa, "foa", 4, sample_rate, n_fft, hop_length, n_mels, fmin, fmax)
    return _intensity_of(spec, mel)


def stereo_icf(
    stereo: Any,
    sample_rate: float,
    *,
    n_fft: int = 512,
    hop_length: int = 240,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """Stereo inter-channel features per mel band (paper Eqs. 10–11, ``docs/conventions.md`` §6).

    ILD_b = 10 log10(M|L|² + floor) − 10 log10(M|R|² + floor) in dB;
    C_b = Σ_k M_bk L_k R_k*, cos IPD = Re C_b / |C_b|, sin IPD = Im C_b / |C_b|
    (cos = 1, sin = 0 where C_b = 0).

    Parameters
    ----------
    stereo : array_like, shape (..., 2, N)
        Channels L, R.
    sample_rate : float
        Hz.
    n_fft, hop_length, n_mels, fmin, fmax, floor
        As in :func:`log_mel`.

    Returns
    -------
    torch.Tensor, shape (..., 3, T, F)
        ILD (dB), cos IPD, sin IPD.
    """
    spec, mel = _prepare(stereo, "stereo", 2, sample_rate, n_fft, hop_length, n_mels, fmin, fmax)
    return _icf_of(spec, mel, floor)


def feature_channels(features: FeatureName, audio_channels: int) -> int:
    """Channels of :func:`feature_stack`'s output: C for "mel", 7 for "iv", 5 for "icf".

    Parameters
    ----------
    features : {"mel", "iv", "icf"}
    audio_channels : int
        C of the input audio (must be 4 for "iv" and 2 for "icf").

    Returns
    -------
    int
    """
    if features == "mel":
        return audio_channels
    if features in FEATURE_FORMAT:
        return AUDIO_INPUTS[(FEATURE_FORMAT[features], features)]
    raise InputError(f"unknown features {features!r}; expected 'mel', 'iv' or 'icf'")


def feature_stack(
    audio: Any,
    sample_rate: float,
    *,
    features: FeatureName = "mel",
    n_fft: int = 512,
    hop_length: int = 240,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """The channel stack an audio encoder takes (one STFT shared by all parts).

    Parameters
    ----------
    audio : array_like, shape (..., C, N)
        ``"mel"``: any C (mono beam C = 1, stereo 2, FOA 4).
        ``"iv"``: ambiX FOA, C = 4. ``"icf"``: stereo L, R, C = 2.
    sample_rate : float
        Hz.
    features : {"mel", "iv", "icf"}
        ``"mel"``: log-mel of every channel (C channels); ``"iv"``: 4 log-mel +
        3 intensity (x, y, z) = 7; ``"icf"``: 2 log-mel + ILD, cos IPD, sin IPD = 5.
    n_fft, hop_length, n_mels, fmin, fmax, floor
        As in :func:`log_mel`.

    Returns
    -------
    torch.Tensor, shape (..., C', T, F)
        C' = :func:`feature_channels` (features, C).
    """
    if features not in FEATURES:
        raise InputError(f"unknown features {features!r}; expected 'mel', 'iv' or 'icf'")
    channels = FORMAT_CHANNELS.get(FEATURE_FORMAT.get(features))
    spec, mel = _prepare(audio, "audio", channels, sample_rate, n_fft, hop_length, n_mels, fmin, fmax)
    power = _power(spec)  # shared by the log-mel and the IV / ICF parts
    parts = [_log_mel_of(spec, mel, floor, power)]
    if features == "iv":
        parts.append(_intensity_of(spec, mel, power))
    elif features == "icf":
        parts.append(_icf_of(spec, mel, floor, power))
    return torch.cat(parts, dim=-3)


# --------------------------------------------------------------------------- features of mixtures, from cross-spectra


@functools.lru_cache(maxsize=32)
def _mel_operator(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float,
                  device: torch.device) -> torch.Tensor:
    """The float64 mel filterbank (n_mels, bins) as the left operand of ``it @ bins-first``.

    On the CPU a sparse CSR matrix: each bin lies under at most two triangles,
    so the product reads each row of the right operand about twice instead of
    n_mels times. On other devices dense (their dense products are fast, and
    sparse support varies).
    """
    dense = torch.as_tensor(_mel_numpy(sample_rate, n_fft, n_mels, fmin, fmax), device=device)
    if device.type != "cpu":
        return dense
    with warnings.catch_warnings():  # "sparse CSR support is in beta" (the product itself is stable)
        warnings.simplefilter("ignore", UserWarning)
        return dense.to_sparse_csr()


def _pairs(channels: int) -> tuple[list[int], list[int]]:
    """Channel pairs (i, j), i <= j, in a fixed order: the unique entries of a C × C Hermitian matrix."""
    rows, cols = np.triu_indices(channels)
    return rows.tolist(), cols.tolist()


def _form_coefficients(p: torch.Tensor, q: torch.Tensor, channels: int, *, imaginary: bool = False) -> torch.Tensor:
    """Coefficients over the unique pairs of pᵀ·H·q for H Hermitian: its real part (symmetric) or,
    with ``imaginary``, its imaginary part (antisymmetric). p, q (..., C) → (..., n_pairs)."""
    rows, cols = _pairs(channels)
    pi, pj, qi, qj = p[..., rows], p[..., cols], q[..., rows], q[..., cols]
    diagonal = torch.tensor([i == j for i, j in zip(rows, cols)], device=p.device)
    if imaginary:  # Im H_ij = −Im H_ji, Im H_ii = 0
        return torch.where(diagonal, torch.zeros_like(pi), pi * qj - pj * qi)
    return torch.where(diagonal, pi * qi, pi * qj + pj * qi)  # Re H_ij = Re H_ji


def _band_cross_spectra(x: torch.Tensor, n_fft: int, hop_length: int, mel: torch.Tensor,
                        real_pairs: list[tuple[int, int]], imag_pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Mel-band cross-spectra Σ_k M_bk S_i S_j* of every signal, for the listed channel pairs, in float64.

    x (L, C, N) checked signals → (L, P, T, F), P = len(real_pairs) + len(imag_pairs):
    Re S_i S_j* = Re_i Re_j + Im_i Im_j for each real pair, then
    Im S_i S_j* = Im_i Re_j − Re_i Im_j for each imaginary pair. The float32
    STFT values are widened to float64 planes (so their products are exact),
    laid out bins first, multiplied pair by pair and summed into bands by one
    product with ``mel`` (:func:`_mel_operator`). Best called on one signal at
    a time on the CPU (see :func:`_chunk`): its products are then contiguous.
    """
    n_signals, channels, n = x.shape
    frames = n // hop_length
    spec = torch.view_as_real(_stft_bins_first(x, n_fft, hop_length))  # (L·C, K, T, 2), frames-major in memory
    bins = spec.shape[-3]
    planes = torch.empty(2, channels, n_signals, bins, frames, dtype=torch.float64, device=x.device)
    planes.copy_(spec.view(n_signals, channels, bins, frames, 2).permute(4, 1, 0, 2, 3))
    re, im = planes[0], planes[1]  # (C, L, K, T)
    pairs = [(i, j, False) for i, j in real_pairs] + [(i, j, True) for i, j in imag_pairs]
    products = torch.empty(bins, len(pairs), n_signals, frames, dtype=torch.float64, device=x.device)
    for p, (i, j, imaginary) in enumerate(pairs):
        out = products[:, p].transpose(0, 1)  # (L, K, T)
        if imaginary:
            torch.mul(im[i], re[j], out=out).addcmul_(re[i], im[j], value=-1.0)
        else:
            torch.mul(re[i], re[j], out=out).addcmul_(im[i], im[j])
    bands = products.new_empty(mel.shape[0], products[0].numel())  # (F, P·L·T)
    torch.mm(mel, products.view(bins, -1), out=bands)  # with out=: the sparse CSR mel is much faster
    return bands.view(-1, len(pairs), n_signals, frames).permute(2, 1, 3, 0).contiguous()  # (L, P, T, F)


def _forms(coefficients: torch.Tensor, parts: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Σ_p coefficients (B, K, Q, P) × parts (B, P, T, F) → (B, K, Q, T, F), one batched product in ``dtype``."""
    n, k, n_q, n_p = coefficients.shape
    t, f = parts.shape[-2:]
    out = torch.bmm(coefficients.to(dtype).reshape(n, k * n_q, n_p), parts.to(dtype).reshape(n, n_p, t * f))
    return out.view(n, k, n_q, t, f)


def _chunk(n: int, device: torch.device) -> int:
    """How many signals :func:`feature_stack_mixed` analyses at once: one on the CPU (its working set,
    a few MiB, then stays in cache and its products are contiguous), all of them elsewhere."""
    return 1 if device.type == "cpu" else max(n, 1)


def _log_power_into(power: torch.Tensor, floor: float, out: torch.Tensor) -> None:
    """out = log(max(power, 0) + floor) for float64 band powers: rounded to out's dtype first, then the
    floor added and the log taken in that dtype, as :func:`feature_stack` does with its powers.
    Negative rounding residues of a form count as 0 (max(P, 0) + floor = max(P + floor, floor))."""
    total = power.to(out.dtype, copy=True).add_(floor)
    torch.log(total.clamp_min_(floor), out=out)


def _scaled_rotations(q: torch.Tensor, tolerance: float = 1e-6) -> torch.Tensor | None:
    """If every matrix is g·diag(1, Q) with Q orthogonal (ambiX: a rotation, perhaps mirrored, and a gain),
    the maps from the input's intensity to each mixture's; else None.

    For such a matrix the intensity of the mixture is Q times that of the
    input: its numerator 2Re(W'*V') is g²·Q·2Re(W*V) and its denominator
    g²·Σ|·|² (Q keeps |V|²). A matrix with g = 0 gives silence (an all-zero
    map). ``tolerance`` bounds |QQᵀ − I| and the W-to-XYZ terms relative to g;
    the intensity then errs by about that much.

    Returns
    -------
    torch.Tensor, (..., K, 3, 3) or None
        Rows x, y, z of the mixture's intensity; columns the input's in ambiX
        order Y, Z, X.
    """
    if q.shape[-2:] != (4, 4):
        return None
    g = q[..., 0, 0]
    block = q[..., 1:, 1:]
    scale = g.abs()[..., None]
    cross = torch.cat([q[..., 0, 1:], q[..., 1:, 0]], dim=-1).abs()
    gram = block @ block.transpose(-1, -2) - g[..., None, None].square() * torch.eye(3, dtype=q.dtype, device=q.device)
    if not bool((cross <= tolerance * scale).all() and (gram.abs().flatten(-2) <= tolerance * scale.square()).all()):
        return None
    rotation = block[..., [2, 0, 1], :]  # output rows Y, Z, X → x, y, z
    return torch.where(g[..., None, None] != 0, rotation / torch.where(g != 0, g, 1.0)[..., None, None],
                       torch.zeros_like(rotation))


def feature_stack_mixed(
    audio: Any,
    matrices: Any,
    sample_rate: float,
    *,
    features: FeatureName = "mel",
    n_fft: int = 512,
    hop_length: int = 240,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """:func:`feature_stack` of linear mixtures ``matrices @ audio``, from one analysis of ``audio``.

    Every feature is a quadratic (log-mel power, IV denominator, ILD) or
    bilinear (IV numerator, ICF cross-spectrum) form of the channels, and
    the STFT and the mel sums are linear: with S the STFT of ``audio`` and
    H_ij = Σ_k M_bk S_i S_j* its mel-band cross-spectra (C(C + 1)/2 real and,
    for ICF, C(C − 1)/2 imaginary parts per band and frame, computed once;
    pairs no form uses are skipped), the mixture y = Q·x has mel power
    Σ_ij Q_ci Q_cj Re H_ij and cross-spectrum Σ_ij Q_ai Q_bj H_ij. The
    cross-spectra and the forms are evaluated in float64 (their cancellation
    errors then stay below those of mixing in float32 first), and negative
    rounding residues of a power are set to 0; the rest in the dtype of ``audio``.

    For ``"iv"`` with matrices that are all g·diag(1, Q), Q orthogonal (FOA
    rotations, mirrors and gains), the intensity of each mixture is Q times
    that of the input (:func:`_scaled_rotations`), computed once per signal.

    Parameters
    ----------
    audio : array_like, shape (..., C, N)
        Signals mixed by every matrix (e.g. ambiX FOA, C = 4).
    matrices : array_like, shape (..., K, C', C)
        K mixing matrices per signal (leading dimensions broadcast with
        ``audio.shape[:-2]``); C' = 4 for ``"iv"`` (ambiX W, Y, Z, X out),
        2 for ``"icf"`` (L, R out), any for ``"mel"``.
    sample_rate : float
        Hz.
    features, n_fft, hop_length, n_mels, fmin, fmax, floor
        As in :func:`feature_stack`.

    Returns
    -------
    torch.Tensor, shape (..., K, C'', T, F)
        Equal to ``feature_stack(matrices @ audio)`` up to rounding; the
        dtype of ``audio``.
    """
    if features not in FEATURES:
        raise InputError(f"unknown features {features!r}; expected 'mel', 'iv' or 'icf'")
    _check_options(sample_rate, n_fft, hop_length, n_mels)
    x = _audio(audio, "audio", None, hop_length)
    q = _as_float(matrices, "matrices", like=x).to(torch.float64)
    c = x.shape[-2]
    out_channels = FORMAT_CHANNELS.get(FEATURE_FORMAT.get(features))
    if q.ndim < 3 or q.shape[-1] != c or (out_channels is not None and q.shape[-2] != out_channels):
        raise InputError(f"matrices must have shape (..., K, {out_channels or 'C'}', {c}) for {features!r} "
                         f"features of {c}-channel audio, got {tuple(q.shape)}")
    fmax_hz = sample_rate / 2.0 if fmax is None else fmax
    mel_filterbank(sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax_hz)  # checks the band edges
    mel = _mel_operator(float(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax_hz), x.device)

    # The forms, as coefficients over the channel pairs: the power of every output, then the
    # IV numerators 2 Re(W* V) (V = X, Y, Z) or the real part of L R*; the imaginary part of L R* apart.
    n_out = q.shape[-2]
    rotations = _scaled_rotations(q) if features == "iv" else None
    coefficients = [_form_coefficients(q, q, c)]  # (..., K, C', P)
    if features == "iv" and rotations is None:
        w, xyz = q[..., 0:1, :], q[..., [3, 1, 2], :]  # output rows W and X, Y, Z
        coefficients.append(2.0 * _form_coefficients(w, xyz, c))
    elif features == "icf":
        coefficients.append(_form_coefficients(q[..., 0:1, :], q[..., 1:2, :], c))
    coefficients = torch.cat(coefficients, dim=-2)
    imaginary = _form_coefficients(q[..., 0:1, :], q[..., 1:2, :], c, imaginary=True) if features == "icf" else None

    # The cross-spectra to compute: the real parts the forms use, then those only the input's own
    # intensity needs (2 Re W*V and the diagonal, for rotations), then the imaginary parts.
    pairs = list(zip(*_pairs(c)))
    form_pairs = (coefficients != 0).flatten(0, -2).any(0).nonzero().flatten().tolist()
    own_iv = [p for p, (i, j) in enumerate(pairs) if (i == 0 or i == j) and p not in form_pairs]
    real_pairs = form_pairs + (own_iv if rotations is not None else [])
    imag_pairs = [] if imaginary is None else (imaginary != 0).flatten(0, -2).any(0).nonzero().flatten().tolist()
    position = {pairs[p]: slot for slot, p in enumerate(real_pairs)}  # pair → its slot in the cross-spectra
    n_forms, n_real = len(form_pairs), len(real_pairs)
    if rotations is not None:
        w_slots = [position[(0, j)] for j in (1, 2, 3)]  # Re W*(Y, Z, X)
        if w_slots == list(range(w_slots[0], w_slots[0] + 3)):  # adjacent, as usual: a view, not a copy
            w_slots = slice(w_slots[0], w_slots[0] + 3)

    # One batch axis B for the broadcast leading dimensions (audio is copied only if it broadcasts).
    batch, k, n = torch.broadcast_shapes(x.shape[:-2], q.shape[:-3]), q.shape[-3], x.shape[-1]
    x = x.expand(*batch, c, n).reshape(-1, c, n)

    def flat(t: torch.Tensor) -> torch.Tensor:  # (..., K, Q, P) → (B, K, Q, P)
        return t.expand(*batch, *t.shape[-3:]).reshape(-1, *t.shape[-3:])

    coefficients = flat(coefficients[..., form_pairs])
    rotations = None if rotations is None else flat(rotations).to(x.dtype)
    imaginary = None if imaginary is None else flat(imaginary[..., imag_pairs])
    out = x.new_empty(x.shape[0], k, n_out + {"mel": 0, "iv": 3, "icf": 3}[features], n // hop_length, n_mels)
    step = _chunk(x.shape[0], x.device)
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        bands = _band_cross_spectra(x[part], n_fft, hop_length, mel, [pairs[p] for p in real_pairs],
                                    [pairs[p] for p in imag_pairs])  # (b, P, T, F)
        real, imag, mine = bands[:, :n_real], bands[:, n_real:], out[part]
        values = _forms(coefficients[part], real[:, :n_forms], torch.float64)  # (b, K, C' + 3 or C', T, F)
        _log_power_into(values[:, :, :n_out], floor, mine[:, :, :n_out])
        if features == "iv" and rotations is not None:
            # The input's own IV, 2 Re W*(Y, Z, X) / Σ_i |S_i|² (0 where silent), clamped once rotated.
            denominator = real[:, position[(0, 0)]].clone()
            for i in range(1, c):
                denominator += real[:, position[(i, i)]]
            scale = torch.where(denominator > 0, 2.0 / denominator, 0.0)[:, None]  # 2/Σ > 0 stays finite
            clip_iv = (real[:, w_slots] * scale).to(x.dtype)  # (b, 3, T, F)
            torch.clamp(_forms(rotations[part], clip_iv, x.dtype), -1.0, 1.0, out=mine[:, :, n_out:])
        elif features == "iv":
            power = values[:, :, :n_out].clamp_min(0.0)
            mine[:, :, n_out:] = _intensity_from(values[:, :, n_out:], power.sum(-3, keepdim=True))
        elif features == "icf":
            power = values[:, :, :n_out].clamp_min(0.0).to(x.dtype)
            c_im = _forms(imaginary[part], imag, torch.float64)[:, :, 0].to(x.dtype)
            mine[:, :, n_out:] = _icf_from(power[:, :, 0], power[:, :, 1], values[:, :, n_out].to(x.dtype), c_im, floor)
    return out.view(*batch, *out.shape[1:])
