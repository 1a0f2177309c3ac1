"""Log-mel, intensity vectors and stereo ICF (``docs/conventions.md`` §6) against librosa and plane waves."""

import math
import warnings

import numpy as np
import pytest
import torch

from avsa.errors import InputError
from avsa.spatial import ambisonics as amb
from avsa.spatial import features

librosa = pytest.importorskip("librosa")

SR = 24000


def librosa_mel(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "empty filters" at small n_fft
        return librosa.filters.mel(sr=kwargs.pop("sr", SR), htk=False, norm="slaney", dtype=np.float64, **kwargs)


@pytest.mark.parametrize("n_fft,n_mels,fmin,fmax", [(512, 128, 0.0, None), (256, 128, 0.0, None), (1024, 64, 50.0, 8000.0)])
def test_mel_filterbank_matches_librosa(n_fft, n_mels, fmin, fmax):
    ours = features.mel_filterbank(SR, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=torch.float64)
    ref = librosa_mel(n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == ref.shape
    assert np.allclose(ours.numpy(), ref, atol=1e-12)
    assert features.mel_filterbank(SR, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=torch.float64) is ours  # cached


def test_log_mel_matches_librosa(rng):
    x = 0.1 * rng.standard_normal((2, 3, SR))
    ours = features.log_mel(x, SR)
    assert ours.shape == (2, 3, 100, 128) and ours.dtype == torch.float64
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=240, center=True, pad_mode="constant")) ** 2  # (2, 3, 257, 101)
    mel = np.einsum("fk,...kt->...tf", librosa_mel(n_fft=512, n_mels=128), power)[..., :100, :]
    assert np.allclose(ours.numpy(), np.log(mel + features.LOG_FLOOR), atol=1e-9)


def test_log_mel_float32_and_frames():
    x = torch.randn(1, 12345)
    out = features.log_mel(x, 16000, n_fft=400, hop_length=160, n_mels=40)
    assert out.shape == (1, 12345 // 160, 40) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_silence_and_empty_bands_are_finite():
    # n_fft 256 at 24 kHz: several of the 128 low mel filters are empty.
    assert (features.mel_filterbank(SR, n_fft=256).sum(1) == 0).any()
    silent = torch.zeros(4, SR)
    stack = features.feature_stack(silent, SR, features="iv", n_fft=256)
    assert torch.isfinite(stack).all()
    assert torch.equal(stack[4:], torch.zeros_like(stack[4:]))  # IV of silence is zero
    icf = features.stereo_icf(torch.zeros(2, SR), SR)
    assert torch.isfinite(icf).all() and torch.equal(icf[1], torch.ones_like(icf[1])) and torch.equal(icf[0], torch.zeros_like(icf[0]))


def random_directions(rng, n):
    return torch.as_tensor(rng.uniform(-math.pi, math.pi, n)), torch.as_tensor(np.arcsin(rng.uniform(-1, 1, n)))


def test_intensity_of_plane_wave_points_at_source(rng):
    az, el = random_directions(rng, 3)
    el[0] = 1.3  # high elevation
    s = torch.as_tensor(rng.standard_normal((3, SR // 4)))
    iv = features.foa_intensity(amb.encode(s, az, el), SR)  # (3, 3, T, F)
    assert iv.shape == (3, 3, 25, 128)
    d = torch.stack([torch.cos(az) * torch.cos(el), torch.sin(az) * torch.cos(el), torch.sin(el)], -1)
    active = iv.norm(dim=1) > 0  # the empty (silent) bands are zero
    assert active.float().mean() > 0.95
    assert torch.allclose(iv.norm(dim=1)[active], torch.ones(int(active.sum()), dtype=iv.dtype), atol=1e-9)
    assert torch.allclose(iv, d[:, :, None, None].expand_as(iv) * active[:, None], atol=1e-9)


def test_intensity_of_diffuse_field_is_short(rng):
    az, el = random_directions(rng, 300)
    field = amb.encode(torch.as_tensor(rng.standard_normal((300, SR // 2))), az, el).sum(0)
    length = features.foa_intensity(field, SR).norm(dim=0)  # (T, F)
    narrow = length[:, 5:25].median()  # low bands ≈ one FFT bin each: the per-bin diffuse value
    assert 0.45 < float(narrow) < 0.7
    assert float(length.max()) < 0.999  # nothing reaches a plane wave's 1


def test_icf_of_left_source():
    s = torch.randn(SR // 4, dtype=torch.float64)
    stereo = amb.to_stereo(amb.encode(s, math.pi / 2, 0.0))  # L = s, R = −s/2
    icf = features.stereo_icf(stereo, SR)
    ild, cos_ipd, sin_ipd = icf[0, :, 3:], icf[1, :, 3:], icf[2, :, 3:]
    assert torch.allclose(ild, torch.full_like(ild, 20 * math.log10(2)), atol=1e-6)  # 6.02 dB
    assert torch.allclose(cos_ipd, -torch.ones_like(cos_ipd), atol=1e-9)  # opposite phase
    assert torch.allclose(sin_ipd, torch.zeros_like(sin_ipd), atol=1e-9)


def test_icf_phase_of_delayed_channel():
    n, k = 4800, 64  # a sinusoid exactly on bin k, right channel delayed a quarter period
    t = torch.arange(n, dtype=torch.float64)
    f = k * SR / 512
    left = torch.sin(2 * math.pi * f * t / SR)
    right = torch.sin(2 * math.pi * f * t / SR - math.pi / 2)
    icf = features.stereo_icf(torch.stack([left, right]), SR)
    band = int(features.mel_filterbank(SR, dtype=torch.float64)[:, k].argmax())
    assert float(icf[1, 5:-5, band].mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(icf[2, 5:-5, band].mean()) == pytest.approx(1.0, abs=1e-3)  # L leads R by +90°


@pytest.mark.parametrize("kind,channels,expected", [("mel", 1, 1), ("mel", 4, 4), ("iv", 4, 7), ("icf", 2, 5)])
def test_feature_stack_channels(kind, channels, expected):
    x = torch.randn(3, channels, SR)
    out = features.feature_stack(x, SR, features=kind)
    assert out.shape == (3, expected, 100, 128) and features.feature_channels(kind, channels) == expected
    assert torch.allclose(out[:, :channels], features.log_mel(x, SR))
    if kind == "iv":
        assert torch.allclose(out[:, 4:], features.foa_intensity(x, SR))
    if kind == "icf":
        assert torch.allclose(out[:, 2:], features.stereo_icf(x, SR))


def test_bad_inputs():
    with pytest.raises(InputError, match="4 channels"):
        features.foa_intensity(torch.zeros(2, SR), SR)
    with pytest.raises(InputError, match="2 channels"):
        features.feature_stack(torch.zeros(4, SR), SR, features="icf")
    with pytest.raises(InputError, match="unknown features 'gcc'"):
        features.feature_stack(torch.zeros(4, SR), SR, features="gcc")
    with pytest.raises(InputError, match="NaN"):
        features.log_mel(torch.full((1, SR), float("nan")), SR)
    with pytest.raises(InputError, match="sample_rate"):
        features.log_mel(torch.zeros(1, SR), -1)
    with pytest.raises(InputError, match="fewer than one hop"):
        features.log_mel(torch.zeros(1, 100), SR)
    with pytest.raises(InputError, match=r"\(\.\.\., C, N\)"):
        features.log_mel(torch.zeros(SR), SR)


@pytest.mark.parametrize("kind,out_channels", [("mel", 3), ("iv", 4), ("icf", 2)])
@pytest.mark.parametrize("n_fft,n_mels,fmin,fmax", [(512, 128, 0.0, None), (256, 40, 100.0, 9000.0)])
def test_feature_stack_mixed_equals_features_of_the_mixtures(kind, out_channels, n_fft, n_mels, fmin, fmax):
    # Random 4-channel noise and random mixing matrices, against a float64 evaluation of the
    # mixtures' features. Rounding the float32 STFT of the inputs gives a mixture c with band power
    # P an error of about ε·√(E_c·P), E_c = |q_c|² × the frame's strongest summed input band power
    # (ε ≈ 1.2e-7), hence |Δ log-mel| ≲ ε·√(E_c/(P + floor)), the same for IV with P its denominator
    # and E = Σ_c E_c. Bound: 1e-5 + 2e-6·√(E/P) (log-mel, IV) and 2e-5·√(E/P) for the ICF (dB, and
    # IPD with P the quieter channel); measured coefficients ≤ 3.6e-7 and ≤ 4.5e-6.
    rng = np.random.default_rng(3)
    audio = torch.from_numpy(0.1 * rng.standard_normal((2, 4, SR // 2)).astype(np.float32))
    matrices = torch.from_numpy(np.eye(4)[:out_channels] + 0.3 * rng.standard_normal((2, 3, out_channels, 4)))
    options = dict(n_fft=n_fft, hop_length=n_fft // 2, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ours = features.feature_stack_mixed(audio, matrices, SR, features=kind, **options)
    assert ours.shape == (2, 3, features.feature_channels(kind, out_channels), SR // n_fft, n_mels)
    assert ours.dtype == torch.float32
    exact = features.feature_stack(matrices @ audio[:, None].double(), SR, features=kind, **options)
    floor = features.LOG_FLOOR
    inputs = (features.log_mel(audio.double(), SR, **options).exp() - floor).sum(1).amax(-1)  # (2, T)
    strongest = (matrices.square().sum(-1)[..., None, None] * inputs[:, None, None, :, None])  # E_c (2, 3, C', T, 1)
    power = (exact[:, :, :out_channels].exp() - floor).clamp_min(0)
    error = (ours.double() - exact).abs()
    if kind == "iv":
        ratio = (strongest.sum(2, keepdim=True) / (power.sum(2, keepdim=True) + floor)).sqrt()
        assert ((error[:, :, 4:] <= 1e-5 + 2e-6 * ratio)).all()
    if kind == "icf":
        ratio = (strongest.amax(2, keepdim=True) / (power.amin(2, keepdim=True) + floor)).sqrt()
        assert (error[:, :, 2:] <= 1e-5 + 2e-5 * ratio).all()
    assert (error[:, :, :out_channels] <= 1e-5 + 2e-6 * (strongest / (power + floor)).sqrt()).all()


def scaled_rotations(rng, shape):
    """Random g·diag(1, Q) (float64, shape + (4, 4)): Q orthogonal, a rotation or a mirrored one, g in [0.5, 2]."""
    q, r = torch.linalg.qr(torch.from_numpy(rng.standard_normal((*shape, 3, 3))))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]  # Haar-random, det ±1
    m = torch.zeros(*shape, 4, 4, dtype=torch.float64)
    m[..., 0, 0], m[..., 1:, 1:] = 1.0, q
    return torch.from_numpy(rng.uniform(0.5, 2.0, shape))[..., None, None] * m


def test_scaled_rotations_are_recognised():
    m = scaled_rotations(np.random.default_rng(0), (2, 3))
    m[0, 1] = 0.0  # a silent mixture
    rotations = features._scaled_rotations(m)
    assert rotations.shape == (2, 3, 3, 3) and torch.equal(rotations[0, 1], torch.zeros(3, 3))
    assert torch.allclose(rotations[1], m[1][:, [3, 1, 2], 1:] / m[1, :, :1, :1], atol=1e-15)  # rows x, y, z
    for i, j in [(0, 2), (2, 0), (1, 1)]:  # W mixed into X or X into W; a row scaled
        bent = m.clone()
        bent[1, 2, i, j] += 1e-4
        assert features._scaled_rotations(bent) is None
    assert features._scaled_rotations(m[..., :3, :]) is None


def test_feature_stack_mixed_of_rotations_equals_features_of_the_mixtures():
    """The IV shortcut (the mixture's intensity = Q × the input's, for g·diag(1, Q) matrices), with
    flipped rotations (det Q = −1), a silent mixture (g = 0), a digitally silent input and one whose
    bands above 3 kHz are 100 dB down, against a float64 evaluation of the mixtures' features. The
    error model of the test above holds (E_c = g² × the strongest summed input band power; the
    float32 product Q × IV adds ≲ 4e-7): bound 1e-5 + 2e-6·√(E/P), log-mel and IV alike."""
    rng = np.random.default_rng(5)
    audio = 0.1 * rng.standard_normal((3, 4, SR // 2))
    audio[1] = 0.0
    spectrum = np.fft.rfft(audio[2])
    spectrum[:, 1500:] *= 1e-5
    audio[2] = np.fft.irfft(spectrum, SR // 2)
    audio = torch.from_numpy(audio.astype(np.float32))
    matrices = scaled_rotations(rng, (3, 4))
    matrices[0, 1] = 0.0
    matrices[:, 3] = matrices[:, 2] * torch.tensor([1.0, -1.0, 1.0, 1.0])[:, None]  # crop 2 mirrored
    assert features._scaled_rotations(matrices) is not None
    ours = features.feature_stack_mixed(audio, matrices, SR, features="iv")
    exact = features.feature_stack(matrices @ audio[:, None].double(), SR, features="iv")
    assert ours.shape == (3, 4, 7, SR // 2 // 240, 128) and torch.isfinite(ours).all()
    floor = features.LOG_FLOOR
    log_floor = torch.log(torch.tensor(floor, dtype=torch.float32))
    for silent in (ours[1], ours[0, 1]):  # silent input, silent mixture: log(floor) and no intensity
        assert (silent[..., :4, :, :] == log_floor).all() and (silent[..., 4:, :, :] == 0).all()
    assert torch.equal(ours[:, 3, 5], -ours[:, 2, 5]) and torch.equal(ours[:, 3, [4, 6]], ours[:, 2, [4, 6]])
    inputs = (features.log_mel(audio.double(), SR).exp() - floor).sum(1).amax(-1).clamp_min(0)  # (3, T)
    strongest = matrices[..., 0, 0].square()[..., None, None, None] * inputs[:, None, None, :, None]
    power = (exact[:, :, :4].exp() - floor).clamp_min(0)
    error = (ours.double() - exact).abs()
    assert (error[:, :, :4] <= 1e-5 + 2e-6 * (strongest / (power + floor)).sqrt()).all()
    total = power.sum(2, keepdim=True)
    assert (error[:, :, 4:] <= 1e-5 + 2e-6 * (4 * strongest / (total + floor)).sqrt()).all()


def test_feature_stack_mixed_broadcasts_audio_and_matrices():
    rng = np.random.default_rng(7)
    audio = torch.from_numpy(0.1 * rng.standard_normal((2, 4, SR // 4)).astype(np.float32))
    matrices = torch.from_numpy(scaled_rotations(rng, (3, 2)).numpy())  # 3 sets of K = 2 for every clip
    shared = features.feature_stack_mixed(audio, matrices[:, None], SR, features="iv")  # (3, 2, K, ...)
    each = features.feature_stack_mixed(audio[None], matrices[:, None], SR, features="iv")
    assert shared.shape == each.shape == (3, 2, 2, 7, SR // 4 // 240, 128) and torch.equal(shared, each)
    for clip in range(2):
        assert torch.equal(shared[:, clip], features.feature_stack_mixed(audio[clip], matrices, SR, features="iv"))


@pytest.mark.parametrize("kind,out_channels", [("mel", 3), ("iv", 4), ("icf", 2)])
def test_feature_stack_mixed_all_signals_at_once(monkeypatch, kind, out_channels):
    """The path other devices take (every signal at once, dense mel filters), run on the CPU: the same
    float64 sums in another order, then the same float32 rounding, so a few ulps apart at most."""
    rng = np.random.default_rng(11)
    audio = torch.from_numpy(0.1 * rng.standard_normal((3, 4, SR // 4)).astype(np.float32))
    matrices = np.eye(4)[:out_channels] + 0.3 * rng.standard_normal((3, 2, out_channels, 4))
    matrices = scaled_rotations(rng, (3, 2)) if kind == "iv" else torch.from_numpy(matrices)
    one_at_a_time = features.feature_stack_mixed(audio, matrices, SR, features=kind)
    dense = features._mel_operator(float(SR), 512, 128, 0.0, SR / 2.0, torch.device("cpu")).to_dense()
    monkeypatch.setattr(features, "_chunk", lambda n, device: n)
    monkeypatch.setattr(features, "_mel_operator", lambda *args: dense)
    at_once = features.feature_stack_mixed(audio, matrices, SR, features=kind)
    assert torch.allclose(at_once, one_at_a_time, rtol=1e-6, atol=1e-6)


def test_feature_stack_mixed_bad_inputs():
    audio = torch.zeros(4, SR)
    with pytest.raises(InputError, match="matrices must have shape"):
        features.feature_stack_mixed(audio, torch.eye(4)[:2][None], SR, features="iv")
    with pytest.raises(InputError, match="matrices must have shape"):
        features.feature_stack_mixed(audio, torch.eye(3)[None], SR)
    with pytest.raises(InputError, match="unknown features"):
        features.feature_stack_mixed(audio, torch.eye(4)[None], SR, features="gcc")
    with pytest.raises(InputError, match="NaN"):
        features.feature_stack_mixed(audio, torch.full((1, 4, 4), float("nan")), SR)
