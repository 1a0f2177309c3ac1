"""Benchmark of the spatial core against reference implementations.

Run: ``.venv/bin/python benchmarks/bench_spatial.py``  (about half a minute, one thread).

1. Gnomonic crops: four crops × eight frames of a 1024 × 512 equirectangular
   frame with ``gnomonic_crop`` in one call, against a loop of py360convert
   ``e2p`` calls (one per crop and frame). Goal: ≥ 10× faster per crop. The
   frames are uint8 and channels-last in memory, as the loader delivers them
   (a second line times the same frames laid out (T, C, H, W)); both sides
   return uint8 crops. OpenCV, used
   by both, runs on one thread too. Every call draws 4 new crop centres (the
   same sequence for both sides), as the loader's random crops do:
   py360convert caches its sampling map per crop geometry, which repeated
   crops would time instead of its work. Within a call, e2p computes each
   crop's map once for its 8 frames, as ``gnomonic_crop`` does.
2. Audio features: log-mel + FOA intensity (7 channels) for a batch of
   4-channel 1-s clips at 24 kHz with ``feature_stack``, against librosa's STFT
   and mel filters with NumPy intensity clip by clip. Goal: ≥ 5×.

3. Audio of every crop (AVSA: 16 clips × 4 crops, ambi + IV): the features
   from each clip's mel-band cross-spectra and one 4 × 4 matrix per crop
   (``crop_audio_features``), against rotating, mirroring and scaling each
   crop's FOA and then computing its features. Goal: ≥ 5×.

Prints seconds per crop / per clip and the ratios (medians of repeated
timings), measured in the same run.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from avsa.spatial.features import feature_stack
from avsa.spatial.projection import gnomonic_crop


def median_of(fn, repeats: int) -> float:
    """Median wall-clock time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compare(title: str, ours: tuple, reference: tuple, *, per: tuple[int, str], goal: float, rounds: int = 3) -> float:
    """Time (name, fn) pairs, print ms per item and the speed-up ratio reference / ours (medians over ``rounds``)."""
    count, unit = per
    fn_ours, fn_ref = ours[1], reference[1]
    fn_ours(), fn_ref()  # warm-up
    t_ours, t_ref = [], []
    for _ in range(rounds):  # interleaved, so both see the same load on a shared machine
        t_ours.append(median_of(fn_ours, 5) / count)
        t_ref.append(median_of(fn_ref, 2) / count)
    t_ours, t_ref = float(np.median(t_ours)), float(np.median(t_ref))
    ratio = t_ref / t_ours
    print(f"{title}: {ours[0]} {1e3 * t_ours:.3f} ms/{unit}, {reference[0]} {1e3 * t_ref:.3f} ms/{unit}, "
          f"ratio {ratio:.1f}x (goal >= {goal:g}x)")
    return ratio


def bench_crops(rng: np.random.Generator, size: int = 112, fov_deg: float = 90.0) -> float:
    import py360convert

    frames = rng.integers(0, 256, (8, 3, 512, 1024), dtype=np.uint8)  # (T, C, H, W)
    frames_t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)  # channels-last
    planar_t = torch.from_numpy(frames)
    fov = math.radians(fov_deg)
    hwc = [np.ascontiguousarray(f.transpose(1, 2, 0)) for f in frames]

    def crop_sets(seed: int):
        """Endless fresh sets of 4 crop centres (degrees), one per call: the loader's crops never repeat,
        and py360convert caches its map per crop geometry, so repeating the same crops would time its cache."""
        draw = np.random.default_rng(seed)
        while True:
            yield draw.uniform(-180.0, 180.0, 4), draw.uniform(-60.0, 60.0, 4)

    sets = {"ours": crop_sets(1), "planar": crop_sets(1), "reference": crop_sets(1)}

    def ours(which: str = "ours", frames=frames_t):
        az_deg, el_deg = next(sets[which])
        return gnomonic_crop(frames, torch.from_numpy(np.radians(az_deg)), torch.from_numpy(np.radians(el_deg)),
                             fov, size)  # (K=4, T=8, 3, size, size)

    def planar():
        return ours("planar", planar_t)

    def reference():
        az_deg, el_deg = next(sets["reference"])
        return [  # the 8 frames of a crop share its geometry, so e2p computes each crop's map once
            py360convert.e2p(img, fov_deg=(fov_deg, fov_deg), u_deg=-a, v_deg=e, out_hw=(size, size))
            for a, e in zip(az_deg, el_deg)
            for img in hwc
        ]

    first, first_planar = ours(), planar()
    assert first.shape == (4, 8, 3, size, size) and torch.equal(first, first_planar)
    # 15 rounds (≈ 1.5 s): a round's ratio moves by ± 15 % on a shared machine, the median of 15 by much less
    ratio = compare(f"crops 4 x 8 of 1024x512 -> {size}x{size}", ("gnomonic_crop", ours), ("py360convert.e2p", reference),
                    per=(32, "crop"), goal=10.0, rounds=15)
    compare("  same, frames laid out (T, C, H, W)", ("gnomonic_crop", planar), ("py360convert.e2p", reference),
            per=(32, "crop"), goal=10.0, rounds=15)
    return ratio


def bench_features(rng: np.random.Generator, batch: int = 16, sample_rate: int = 24000) -> float:
    import librosa

    clips = (0.1 * rng.standard_normal((batch, 4, sample_rate))).astype(np.float32)
    clips_t = torch.from_numpy(clips)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mel = librosa.filters.mel(sr=sample_rate, n_fft=512, n_mels=128, htk=False, norm="slaney")

    def ours():
        return feature_stack(clips_t, sample_rate, features="iv")  # (B, 7, 100, 128)

    def reference():
        out = []
        for clip in clips:
            spec = librosa.stft(clip, n_fft=512, hop_length=240, center=True, pad_mode="constant")[..., :100]  # (4, K, T)
            power = np.abs(spec) ** 2
            log_mel = np.log(np.einsum("fk,ckt->ctf", mel, power) + 1e-10)
            w, v = spec[0], spec[[3, 1, 2]]
            numerator = np.einsum("fk,ckt->ctf", mel, 2 * np.real(np.conj(w) * v))
            denominator = np.einsum("fk,kt->tf", mel, power.sum(0))
            iv = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0)
            out.append(np.concatenate([log_mel, iv]))
        return np.stack(out)

    assert np.allclose(ours().numpy(), reference(), atol=2e-3)
    return compare(f"features log-mel + IV, {batch} x 4-ch 1-s clips", ("feature_stack", ours),
                   ("librosa+NumPy", reference), per=(batch, "clip"), goal=5.0)


def bench_crop_audio(rng: np.random.Generator, batch: int = 16, crops: int = 4, sample_rate: int = 24000) -> float:
    from avsa.data.loader import RawBatch
    from avsa.data.samples import audio_features, audio_format, crop_audio_features, rotated_audio

    shape = (batch, crops)
    raw = RawBatch(
        frames=torch.zeros(batch, 1, 3, 2, 4, dtype=torch.uint8),
        foa=torch.from_numpy((0.1 * rng.standard_normal((batch, 4, sample_rate))).astype(np.float32)),
        azimuth=torch.from_numpy(rng.uniform(-math.pi, math.pi, shape).astype(np.float32)),
        elevation=torch.from_numpy(rng.uniform(-1.2, 1.2, shape).astype(np.float32)),
        fov=torch.ones(shape), kind=torch.zeros(shape, dtype=torch.int64),
        flip=torch.from_numpy(rng.random(shape) < 0.5), jitter=torch.zeros(*shape, 4),
        gain=torch.from_numpy(rng.uniform(0.5, 2.0, shape).astype(np.float32)),
        start_s=torch.zeros(batch, dtype=torch.float64), clip_ids=[str(i) for i in range(batch)])

    def ours():
        return crop_audio_features(raw, "ambi", "iv", sample_rate=sample_rate)

    def direct():
        return audio_features(audio_format(rotated_audio(raw), "ambi"), "iv", sample_rate=sample_rate)

    assert ours().shape == direct().shape == (batch, crops, 7, 100, 128)
    return compare(f"audio of {batch} clips x {crops} crops, ambi+IV", ("per-clip cross-spectra", ours),
                   ("rotate then features", direct), per=(batch * crops, "crop"), goal=5.0)


def main() -> None:
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, 1 thread, CPU")
    bench_crops(rng)
    bench_features(rng)
    bench_crop_audio(rng)


if __name__ == "__main__":
    main()
