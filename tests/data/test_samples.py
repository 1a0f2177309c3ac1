"""Sample assembly on the device: crops, rotation, consistent flips, formats and features."""

import math

import numpy as np
import pytest
import torch

from avsa.data.augment import JITTER_IDENTITY, color_jitter, draw_augmentation
from avsa.data.loader import RawBatch
from avsa.data.normalize import BandStats, StatsAccumulator
from avsa.data.samples import (SampleBuilder, audio_features, audio_format, build_batch, crop_audio_features, crop_mixing,
                               crop_video, rotated_audio)
from avsa.errors import ConfigError
from avsa.spatial import ambisonics
from avsa.spatial.features import LOG_FLOOR, feature_stack

H, W, T, N, SR = 64, 128, 2, 24000, 24000
VALID = [("ambi", "mel", 4), ("mono", "mel", 1), ("stereo", "mel", 2), ("ambi", "iv", 7), ("stereo", "icf", 5)]


def blob_frames(azimuth, elevation, *, radius=0.25):
    """(T, 3, H, W) uint8 equirect frames, dark, with a white disc around a direction."""
    theta = math.pi * (1 - 2 * (np.arange(W) + 0.5) / W)
    phi = (math.pi / 2) * (1 - 2 * (np.arange(H) + 0.5) / H)
    th, ph = np.meshgrid(theta, phi)
    c = np.sin(ph) * math.sin(elevation) + np.cos(ph) * math.cos(elevation) * np.cos(th - azimuth)
    disc = (np.arccos(np.clip(c, -1, 1)) < radius).astype(np.uint8) * 200 + 20
    frame = np.stack([disc, disc // 2 + 10, 255 - disc], axis=0)
    return torch.from_numpy(np.repeat(frame[None], T, axis=0))


def plane_wave(azimuth, elevation, *, seed=0):
    noise = torch.from_numpy(np.random.default_rng(seed).standard_normal(N).astype(np.float32)) * 0.1
    return ambisonics.encode(noise, azimuth, elevation).to(torch.float32)


def make_raw(frames, foa, azimuth, elevation, *, fov=1.0, flip=None, jitter=None, gain=None):
    """A RawBatch built by hand: frames (B, T, 3, H, W), foa (B, 4, N), angles (B, K)."""
    az = torch.as_tensor(azimuth, dtype=torch.float32)
    b, k = az.shape
    return RawBatch(
        frames=frames, foa=foa, azimuth=az, elevation=torch.as_tensor(elevation, dtype=torch.float32),
        fov=torch.full((b, k), fov), kind=torch.ones(b, k, dtype=torch.int64),
        flip=torch.zeros(b, k, dtype=torch.bool) if flip is None else torch.as_tensor(flip),
        jitter=torch.tensor(JITTER_IDENTITY).expand(b, k, 4).clone() if jitter is None else jitter,
        gain=torch.ones(b, k) if gain is None else gain,
        start_s=torch.zeros(b, dtype=torch.float64), clip_ids=[f"c{i}" for i in range(b)])


def unit_stats(fmt, features, n_mel):
    return BandStats(mean=np.zeros((n_mel, 128), np.float32), std=np.ones((n_mel, 128), np.float32),
                     fmt=fmt, features=features, n_windows=1)


@pytest.fixture
def scene():
    """B = 3 samples, each one source; K = 4 crops, the first centred on it (oracle)."""
    dirs = [(0.7, 0.2), (-2.5, -0.4), (2.0, 1.2)]
    frames = torch.stack([blob_frames(a, e) for a, e in dirs])
    foa = torch.stack([plane_wave(a, e, seed=i) for i, (a, e) in enumerate(dirs)])
    az = [[a, a + 1.6, a - 1.6, a + 3.1] for a, _ in dirs]
    el = [[e, 0.0, 0.3, -0.2] for _, e in dirs]
    return frames, foa, torch.tensor(az), torch.tensor(el), dirs


def test_oracle_crop_rotates_source_to_front(scene):
    frames, foa, az, el, dirs = scene
    # every crop at the source direction: the rotated field points to the front
    raw = make_raw(frames, foa, az[:, :1].expand(-1, 4), el[:, :1].expand(-1, 4))
    rot = rotated_audio(raw)  # (B, K, 4, N)
    w, y, z, x = rot.unbind(-2)
    intensity = torch.stack([(w * x).mean(-1), (w * y).mean(-1), (w * z).mean(-1)], -1)
    direction = intensity / intensity.norm(dim=-1, keepdim=True)
    assert torch.allclose(direction, torch.tensor([1.0, 0.0, 0.0]).expand_as(direction), atol=1e-4)
    # and the crop centre shows the source (bright red channel)
    video = crop_video(raw, crop_size=16, augment=False)  # (B, K, 3, T, S, S)
    centre = video[:, :, 0, :, 6:10, 6:10].mean(dim=(-1, -2, -3))
    assert (centre > 1.5).all()


def test_flip_mirrors_crop_and_audio(scene):
    frames, foa, _, _, dirs = scene
    # crop centre 0.3 rad to the right of each source: the source sits at crop-left
    az = torch.tensor([[a - 0.3, a - 0.3] for a, _ in dirs])
    el = torch.tensor([[e, e] for _, e in dirs])
    raw = make_raw(frames, foa, az, el, fov=1.4, flip=torch.tensor([[False, True]] * 3))
    video = crop_video(raw, crop_size=24)
    plain, flipped = video[:, 0], video[:, 1]
    assert torch.allclose(flipped, torch.flip(plain, dims=[-1]), atol=1e-5)
    red = plain[:, 0].mean(dim=(1, 2))  # (B, S): column profile of the source
    assert (red[:, :12].mean(-1) > red[:, 12:].mean(-1)).all()  # unflipped: source on the left
    rot = rotated_audio(raw)
    y_plain, y_flip = rot[:, 0, 1], rot[:, 1, 1]
    assert ((y_plain * foa[:, 0]).mean(-1) > 0).all()  # source to the left: Y in phase with W
    assert torch.allclose(y_flip, -y_plain, atol=1e-6)
    assert torch.allclose(rot[:, 1, [0, 2, 3]], rot[:, 0, [0, 2, 3]], atol=1e-6)


def test_identity_jitter_and_gain_change_nothing(scene):
    frames, foa, az, el, _ = scene
    raw = make_raw(frames, foa, az, el)
    assert torch.allclose(crop_video(raw, crop_size=16), crop_video(raw, crop_size=16, augment=False), atol=1e-5)
    assert torch.equal(rotated_audio(raw), rotated_audio(raw, augment=False))
    x = torch.rand(2, 4, 3, 3, 8, 8)
    same = color_jitter(x, torch.tensor(JITTER_IDENTITY).expand(2, 4, 4))
    assert torch.allclose(same, x, atol=1e-5)
    # a brightness factor of 0.5 alone halves the image, per crop
    jit = torch.tensor(JITTER_IDENTITY).expand(2, 4, 4).clone()
    jit[1, 2, 0] = 0.5
    out = color_jitter(x, jit)
    assert torch.allclose(out[1, 2], x[1, 2] * 0.5, atol=1e-5)
    assert torch.allclose(out[0], x[0], atol=1e-5)


def test_color_jitter_agrees_with_kornia():
    enhance = pytest.importorskip("kornia.enhance")
    gen = torch.Generator().manual_seed(0)
    x = 0.35 + 0.3 * torch.rand(2, 3, 2, 3, 8, 8, generator=gen)  # mid-range: no clamping in between
    jit = torch.tensor(JITTER_IDENTITY).repeat(2, 3, 1)
    jit[..., :3] += 0.2 * (torch.rand(2, 3, 3, generator=gen) - 0.5)
    jit[0, :, 3] = 1 / 3  # a third of a turn: red → green, exactly the HSV shift
    flat = x.reshape(-1, 3, 8, 8)
    p = jit.repeat_interleave(2, dim=1).reshape(-1, 4)
    ref = enhance.adjust_brightness_accumulative(flat, p[:, 0])
    ref = enhance.adjust_contrast_with_mean_subtraction(ref, p[:, 1])
    ref = enhance.adjust_saturation_with_gray_subtraction(ref, p[:, 2])
    ref = enhance.adjust_hue(ref, p[:, 3] * 2 * math.pi).reshape(x.shape)
    assert torch.allclose(color_jitter(x, jit), ref, atol=1e-4)
    # small hue shifts approximate HSV (closer than no shift at all)
    jit[..., 3] = 0.1
    ref_hue = enhance.adjust_hue(flat, torch.full((12,), 0.2 * math.pi)).reshape(x.shape)
    plain = torch.tensor(JITTER_IDENTITY).repeat(2, 3, 1)
    plain[..., 3] = 0.1
    assert (color_jitter(x, plain) - ref_hue).abs().mean() < 0.75 * (x - ref_hue).abs().mean()


def test_gain_scales_audio(scene):
    frames, foa, az, el, _ = scene
    gain = torch.tensor([[0.9, 1.0, 1.1, 1.0]]).expand(3, 4)
    raw = make_raw(frames, foa, az, el, gain=gain)
    assert torch.allclose(rotated_audio(raw), rotated_audio(raw, augment=False) * gain[..., None, None], atol=1e-6)


def test_draw_augmentation_ranges():
    aug = draw_augmentation(np.random.default_rng(1), 4000)
    assert 0.4 < aug.flip.mean() < 0.6
    lo, hi = aug.jitter.min(0), aug.jitter.max(0)
    assert np.allclose(lo, [0.6, 0.6, 0.6, -0.2], atol=0.01) and np.allclose(hi, [1.4, 1.4, 1.4, 0.2], atol=0.01)
    assert 0.9 <= aug.gain.min() and aug.gain.max() <= 1.1


@pytest.mark.parametrize("fmt,features,channels", VALID)
def test_channel_counts(scene, fmt, features, channels):
    pytest.importorskip("avsa.spatial.features")
    frames, foa, az, el, _ = scene
    raw = make_raw(frames[:2], foa[:2], az[:2], el[:2])
    n_mel = {"ambi": 4, "mono": 1, "stereo": 2}[fmt]
    video, audio = build_batch(raw, fmt=fmt, features=features, crop_size=16, stats=unit_stats(fmt, features, n_mel))
    assert video.shape == (2, 4, 3, T, 16, 16)
    assert audio.shape == (2, 4, channels, 100, 128)
    assert torch.isfinite(audio).all()


@pytest.mark.parametrize("fmt,features", [("mono", "iv"), ("ambi", "icf"), ("stereo", "iv"), ("mono", "icf")])
def test_invalid_combinations(scene, fmt, features):
    frames, foa, az, el, _ = scene
    with pytest.raises(ConfigError, match=f"{fmt}.*{features}"):
        build_batch(make_raw(frames, foa, az, el), fmt=fmt, features=features, normalize=False)


def test_missing_stats_is_a_clear_error(scene):
    frames, foa, az, el, _ = scene
    with pytest.raises(ConfigError, match="avsa stats"):
        build_batch(make_raw(frames, foa, az, el), fmt="ambi", features="mel")
    with pytest.raises(ConfigError, match="avsa stats"):
        SampleBuilder(fmt="ambi", features="mel", stats=None)


def test_oracle_iv_features_point_front(scene):
    pytest.importorskip("avsa.spatial.features")
    frames, foa, az, el, _ = scene
    raw = make_raw(frames, foa, az[:, :1], el[:, :1])
    _, audio = build_batch(raw, fmt="ambi", features="iv", crop_size=8, normalize=False)
    iv = audio[:, 0, 4:]  # (B, 3, T, F): x, y, z
    loud = audio[:, 0, 0] > audio[:, 0, 0].amax(dim=(-1, -2), keepdim=True) - 30  # bands with energy
    assert (iv[:, 0][loud] > 0.99).all()
    assert (iv[:, 1:].abs().permute(1, 0, 2, 3)[:, loud] < 0.05).all()


def test_stats_normalise_log_mel_only(scene):
    pytest.importorskip("avsa.spatial.features")
    frames, foa, az, el, _ = scene
    raw = make_raw(frames, foa, az, el)
    _, audio = build_batch(raw, fmt="ambi", features="iv", crop_size=8, normalize=False)
    acc = StatsAccumulator("ambi", "iv")
    acc.update(audio)
    stats = acc.result()
    assert stats.mean.shape == (4, 128) and stats.n_windows == 12
    _, normed = build_batch(raw, fmt="ambi", features="iv", crop_size=8, stats=stats)
    assert torch.allclose(normed[:, :, 4:], audio[:, :, 4:])
    mel = normed[:, :, :4]
    varying = torch.as_tensor(stats.std) > 0.01
    assert mel.mean(dim=(0, 1, 3)).abs()[varying].max() < 1e-3
    assert torch.allclose(mel.std(dim=(0, 1, 3), unbiased=False)[varying], torch.ones(()), atol=1e-2)
    builder = SampleBuilder(fmt="ambi", features="iv", stats=stats, crop_size=8)
    assert torch.allclose(builder(raw)[1], normed, atol=1e-5)


def mixed_scene(seed):
    """B = 5 clips × K = 4 crops with flips and gains: a plane wave whose first crop is on it (so its
    rotated Y, Z and the rear of beams are near-silent), a plane wave in noise, one with its first
    quarter digitally silent, one whose bands above 3 kHz are 100 dB down (near-silent bands), and a
    digitally silent clip. In every clip crop 3 is crop 2 flipped the other way (same centre and gain)."""
    rng = np.random.default_rng(seed)
    dirs = [(0.3, 0.1), (-2.0, 0.5), (1.0, -1.0), (3.0, 0.2)]
    foa = torch.stack([plane_wave(a, e, seed=10 * seed + i) for i, (a, e) in enumerate(dirs)])
    foa[1] += 0.05 * torch.from_numpy(rng.standard_normal((4, N)).astype(np.float32))
    foa[2, :, : N // 4] = 0
    spectrum = torch.fft.rfft(foa[3])
    spectrum[:, 3000:] *= 1e-5
    foa[3] = torch.fft.irfft(spectrum, N)
    foa = torch.cat([foa, torch.zeros(1, 4, N)])
    az = torch.tensor(rng.uniform(-3.1, 3.1, (5, 4)), dtype=torch.float32)
    el = torch.tensor(rng.uniform(-1.2, 1.2, (5, 4)), dtype=torch.float32)
    az[0, 0], el[0, 0] = dirs[0]
    flip = torch.from_numpy(rng.random((5, 4)) < 0.5)
    gain = torch.tensor(rng.uniform(0.5, 2.0, (5, 4)), dtype=torch.float32)
    az[:, 3], el[:, 3], gain[:, 3], flip[:, 3] = az[:, 2], el[:, 2], gain[:, 2], ~flip[:, 2]
    return make_raw(torch.zeros(5, 1, 3, 8, 16, dtype=torch.uint8), foa, az, el, flip=flip, gain=gain)


def test_crop_mixing_is_the_direct_chain():
    raw = mixed_scene(0)
    for fmt in ("ambi", "mono", "stereo"):
        direct = audio_format(rotated_audio(raw), fmt)  # (B, K, C, N)
        mixed = crop_mixing(raw, fmt).to(torch.float32) @ raw.foa[:, None]
        assert torch.allclose(mixed, direct, atol=1e-6), fmt


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("fmt,features,channels", VALID)
def test_features_per_clip_equal_the_direct_path(seed, fmt, features, channels):
    """Per-clip cross-spectra → every crop's features, against rotate-then-features per crop.

    Both paths round a float32 STFT: a band power P of a channel then carries an error of about
    ε·√(E·P), E the frame's strongest band power (all 4 channels), ε ≈ 1.2e-7 — so a log-mel differs
    by ≈ ε·√(E/(P + floor)): tiny for loud channels, larger in near-silent bands and rotated-away
    channels. Bound: 1e-4 + 2e-6·√(E/(P + floor)) for log-mel and IV (IV: P = its denominator);
    ILD in dB (×10/ln 10 on two channels): 1e-4 + 2e-5·√(E/(min P_L, P_R + floor)). Measured
    coefficients ≤ 1.6e-7 and ≤ 9e-7 over seeds and CPU kernels (ATEN_CPU_CAPABILITY=default too).
    The IPD is checked against a float64 evaluation instead: no worse than 5× the direct path's own
    error (measured ≤ 2.1×). Digitally silent frames and clips agree exactly.
    """
    raw = mixed_scene(seed)
    n_mel = {"ambi": 4, "mono": 1, "stereo": 2}[fmt]
    ours = crop_audio_features(raw, fmt, features, sample_rate=SR).double()
    direct = audio_features(audio_format(rotated_audio(raw), fmt), features, sample_rate=SR).double()
    assert ours.shape == direct.shape == (5, 4, channels, 100, 128) and torch.isfinite(ours).all()
    raw64 = make_raw(raw.frames, raw.foa.double(), raw.azimuth, raw.elevation, flip=raw.flip, gain=raw.gain)
    exact = feature_stack(audio_format(rotated_audio(raw64), fmt), SR, features=features)  # float64 throughout

    # digitally silent frames (clip 2, frames wholly inside its silent quarter): identical
    assert torch.equal(ours[2, :, :, :20], direct[2, :, :, :20])
    assert (ours[2, :, :n_mel, :20] == torch.log(torch.tensor(LOG_FLOOR, dtype=torch.float32))).all()  # log(0 + floor)
    assert torch.equal(ours[4], direct[4])  # the silent clip

    total = (feature_stack(rotated_audio(raw64), SR, features="mel").exp() - LOG_FLOOR).sum(2, keepdim=True)
    strongest = total.amax(-1, keepdim=True).clamp_min(0)  # E per crop and frame
    power = (exact[:, :, :n_mel].exp() - LOG_FLOOR).clamp_min(0)
    diff = (ours - direct).abs()
    assert (diff[:, :, :n_mel] <= 1e-4 + 2e-6 * (strongest / (power + LOG_FLOOR)).sqrt()).all()
    if features == "iv":
        assert (diff[:, :, 4:] <= 1e-4 + 2e-6 * (strongest / (total + LOG_FLOOR)).sqrt()).all()
    if features == "icf":
        quieter = power.amin(2, keepdim=True)
        assert (diff[:, :, 2:3] <= 1e-4 + 2e-5 * (strongest / (quieter + LOG_FLOOR)).sqrt()).all()
        ours_error = (ours[:, :, 3:] - exact[:, :, 3:]).abs().amax(dim=(0, 1, 3, 4))
        direct_error = (direct[:, :, 3:] - exact[:, :, 3:]).abs().amax(dim=(0, 1, 3, 4))
        assert (ours_error <= 5 * direct_error + 1e-5).all()


@pytest.mark.parametrize("fmt,features,channels", VALID)
def test_flipped_twin_crops_are_exact_mirror_images(fmt, features, channels):
    """Crop 3 of every clip of :func:`mixed_scene` is crop 2 flipped the other way. The mirror Y → −Y
    negates one row of the crop's FOA matrix, so, exactly (every product and sum of the fast path
    only changes sign): ambi keeps its four powers and negates the IV's y; stereo swaps L and R
    (ILD and sin IPD change sign, cos IPD stays); the mono cardioid at the front does not change."""
    ours = crop_audio_features(mixed_scene(0), fmt, features, sample_rate=SR)
    crop, twin = ours[:, 2], ours[:, 3]
    if fmt == "ambi":
        expected = crop * torch.tensor([1.0, 1, 1, 1, 1, -1, 1][:channels])[:, None, None]
    elif fmt == "stereo":  # L, R (, ILD, cos IPD, sin IPD)
        expected = crop[:, [1, 0, 2, 3, 4][:channels]] * torch.tensor([1.0, 1, -1, 1, -1][:channels])[:, None, None]
    else:
        expected = crop
    assert torch.equal(twin, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fmt,features,channels", VALID)
def test_features_per_clip_on_cuda_match_the_cpu(fmt, features, channels):
    raw = mixed_scene(0)
    cpu = crop_audio_features(raw, fmt, features, sample_rate=SR)
    gpu = crop_audio_features(raw.to("cuda"), fmt, features, sample_rate=SR)
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape == (5, 4, channels, 100, 128)
    n_mel = {"ambi": 4, "mono": 1, "stereo": 2}[fmt]
    mel = cpu[:, :, :n_mel]
    loud = mel > mel.amax(dim=(-1, -2), keepdim=True) - 9  # within 40 dB of the channel's peak: ε·√(E/P) < 1e-4
    assert (gpu.cpu()[:, :, :n_mel] - mel).abs()[loud].max() < 1e-3
