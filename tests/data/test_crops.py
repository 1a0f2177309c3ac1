"""Crop selection: quadrants, fallbacks, determinism, audio-derived centres."""

import math

import numpy as np
import pytest

from avsa.data.crops import QUADRANTS, CropCentres, quadrant_of, select_crops
from avsa.data.detection.base import Detection
from avsa.errors import InputError

RAD = math.pi / 180
FOV = (25 * RAD, 76 * RAD)


def det(az_deg, el_deg=0.0, size_deg=30.0, label="cat"):
    return Detection(az_deg * RAD, el_deg * RAD, size_deg * RAD, label, 0.9, 0.0)


def in_quadrant(az, q):
    lo, hi = QUADRANTS[q]
    return lo < az <= hi or (q == 3 and math.isclose(az, math.pi))


def test_quadrant_boundaries_follow_the_documented_order():
    az = np.array([135, 90, 45, 0, -45, -90, -135, 180, -179.9]) * RAD
    assert quadrant_of(az).tolist() == [0, 1, 1, 2, 2, 3, 3, 0, 3]


@pytest.mark.parametrize("seed", range(5))
def test_random_crops_cover_the_baseline_ranges(seed):
    rng = np.random.default_rng(seed)
    avsa = select_crops("random", n_crops=4, rng=rng)
    assert avsa.kind == ("random",) * 4 and len(avsa) == 4
    for q in range(4):
        assert in_quadrant(avsa.azimuth[q], q)
    c = [select_crops("random", n_crops=1, rng=rng) for _ in range(200)]
    az = np.array([x.azimuth[0] for x in c])
    el = np.array([x.elevation[0] for x in c])
    fov = np.array([x.fov[0] for x in c])
    assert az.min() < -2.5 and az.max() > 2.5  # the whole circle
    assert np.all(np.abs(el) <= 30 * RAD) and np.all((fov >= FOV[0]) & (fov <= FOV[1]))


def test_objects_avsa_one_crop_per_quadrant_with_fallback():
    dets = [det(120), det(150, 10), det(-30, -5, 20), det(-31, 0, 80)]  # left-back ×2, right-front ×2
    for seed in range(20):
        c = select_crops("objects", n_crops=4, rng=np.random.default_rng(seed), detections=dets)
        assert c.kind == ("object", "random", "object", "random")
        assert round(c.azimuth[0] / RAD) in (120, 150)
        assert round(c.azimuth[2] / RAD) in (-30, -31)
        for q in range(4):
            assert in_quadrant(c.azimuth[q], q)
        assert np.all(np.abs(c.elevation[[1, 3]]) <= 30 * RAD)
        assert np.all((c.fov >= FOV[0] - 1e-12) & (c.fov <= FOV[1] + 1e-12))
    # fov = 1.5 × size, clipped: 30° → 45°, 80° → 76°, 10° → 25°
    c = select_crops("objects", n_crops=4, rng=np.random.default_rng(0),
                     detections=[det(10, 0, 30), det(-10, 0, 80), det(100, 0, 10)])
    assert np.allclose(c.fov[[0, 1, 2]] / RAD, [25, 45, 76])


def test_objects_picks_each_detection_of_a_quadrant_sometimes():
    dets = [det(100), det(170)]
    seen = {round(select_crops("objects", n_crops=4, rng=np.random.default_rng(s), detections=dets).azimuth[0] / RAD)
            for s in range(30)}
    assert seen == {100, 170}


def test_objects_avc_samples_a_detection_or_falls_back():
    dets = [det(-170, 20), det(10)]
    picks = set()
    for seed in range(30):
        c = select_crops("objects", n_crops=1, rng=np.random.default_rng(seed), detections=dets)
        assert c.kind == ("object",)
        picks.add(round(c.azimuth[0] / RAD))
    assert picks == {-170, 10}
    for none in (None, []):
        c = select_crops("objects", n_crops=1, rng=np.random.default_rng(0), detections=none)
        assert c.kind == ("random",)
    c = select_crops("objects", n_crops=4, rng=np.random.default_rng(0), detections=[])
    assert c.kind == ("random",) * 4


def test_same_seed_same_crops():
    dets = [det(100), det(170), det(-60)]
    a = select_crops("objects", n_crops=4, rng=np.random.default_rng(7), detections=dets)
    b = select_crops("objects", n_crops=4, rng=np.random.default_rng(7), detections=dets)
    assert isinstance(a, CropCentres)
    assert np.array_equal(a.azimuth, b.azimuth) and np.array_equal(a.fov, b.fov) and a.kind == b.kind
    c = select_crops("objects", n_crops=4, rng=np.random.default_rng(8), detections=dets)
    assert not np.array_equal(a.fov, c.fov)


def test_bad_arguments_are_named():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="unknown crop mode 'yolo'"):
        select_crops("yolo", n_crops=1, rng=rng)
    with pytest.raises(InputError, match="n_crops"):
        select_crops("random", n_crops=3, rng=rng)
    with pytest.raises(InputError, match="needs foa"):
        select_crops("audio", n_crops=4, rng=rng)
    with pytest.raises(InputError, match="fov_range"):
        select_crops("random", n_crops=1, rng=rng, fov_range=(1.0, 0.5))


# -- audio: crops where the intensity vector says the sound comes from ------------------

def plane_waves(sources, seconds=1.0, sr=24000, noise=0.01, seed=0):
    """ambiX of independent noise sources at (az, el), plus weak diffuse-ish sensor noise."""
    from avsa.spatial.ambisonics import encode

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    foa = np.zeros((4, n), np.float32)
    for az, el in sources:
        foa += np.asarray(encode(rng.standard_normal(n).astype(np.float32) * 0.3, az, el), np.float32)
    return foa + noise * rng.standard_normal((4, n)).astype(np.float32)


def test_audio_crop_finds_one_plane_wave():
    pytest.importorskip("avsa.spatial.features")
    for az, el in [(50 * RAD, 20 * RAD), (-140 * RAD, -10 * RAD)]:
        c = select_crops("audio", n_crops=1, rng=np.random.default_rng(0), foa=plane_waves([(az, el)]),
                         sample_rate=24000)
        assert c.kind == ("audio",)
        assert abs(c.azimuth[0] - az) < 3 * RAD and abs(c.elevation[0] - el) < 3 * RAD


def test_audio_avsa_crops_at_both_sources_and_random_elsewhere():
    pytest.importorskip("avsa.spatial.features")
    foa = plane_waves([(130 * RAD, 0.0), (-40 * RAD, 15 * RAD)], seed=1)
    c = select_crops("audio", n_crops=4, rng=np.random.default_rng(0), foa=foa, sample_rate=24000)
    assert c.kind == ("audio", "random", "audio", "random")
    assert abs(c.azimuth[0] - 130 * RAD) < 5 * RAD
    assert abs(c.azimuth[2] + 40 * RAD) < 5 * RAD and abs(c.elevation[2] - 15 * RAD) < 5 * RAD
    for q in range(4):
        assert in_quadrant(c.azimuth[q], q)


def test_audio_silence_falls_back_to_random():
    pytest.importorskip("avsa.spatial.features")
    c = select_crops("audio", n_crops=4, rng=np.random.default_rng(0), foa=np.zeros((4, 24000), np.float32),
                     sample_rate=24000)
    assert c.kind == ("random",) * 4
