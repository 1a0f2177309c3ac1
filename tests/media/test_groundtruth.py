"""Ground-truth files: round trip, slicing, interpolation, bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avsa.errors import InputError, MediaError
from avsa.media.groundtruth import GroundTruth, ObjectTrack, load


def _gt() -> GroundTruth:
    times = np.arange(32) / 16.0
    moving = ObjectTrack(0, "cat", True, 0.5, np.linspace(3.0, 3.0 + 0.62, 32), np.linspace(0.0, 0.31, 32))
    moving.azimuth = np.pi - np.mod(np.pi - moving.azimuth, 2 * np.pi)  # crosses the seam at ±π
    still = ObjectTrack(1, "cup", False, 0.3, np.full(32, -1.0), np.full(32, 0.2))
    return GroundTruth(seed=7, scene="park", fps=16.0, duration_s=2.0, width=256, height=128,
                       sample_rate=24000, frame_times_s=times, objects=[moving, still])


def test_save_load_round_trip(tmp_path):
    gt = _gt()
    gt.save(tmp_path / "a.json")
    back = load(tmp_path / "a.json")
    assert back.to_dict() == gt.to_dict()
    d = back.to_dict()
    assert d["version"] == 1 and d["video_projection"] == "equirectangular"
    assert set(d["objects"][0]) == {"id", "label", "sounding", "size", "azimuth", "elevation"}


def test_slice_rebases_times_and_keeps_the_frames():
    gt = _gt()
    part = gt.slice(0.5, 0.5)
    assert part.frame_times_s.size == 8
    np.testing.assert_allclose(part.frame_times_s, np.arange(8) / 16.0)
    np.testing.assert_array_equal(part.objects[0].elevation, gt.objects[0].elevation[8:16])
    assert part.duration_s == 0.5 and gt.frame_times_s.size == 32  # original untouched
    with pytest.raises(InputError):
        gt.slice(5.0, 1.0)


def test_at_interpolates_the_short_way_across_the_seam():
    gt = _gt()
    t = 1.0 + 1 / 32  # halfway between frames 16 and 17
    cat, cup = gt.at(t)
    expected = 3.0 + 0.62 * (16.5 / 31)
    expected = math.pi - (math.pi - expected) % (2 * math.pi)
    assert abs(math.remainder(cat.azimuth - expected, 2 * math.pi)) < 1e-9
    assert cat.elevation == pytest.approx(0.31 * 16.5 / 31)
    assert (cup.label, cup.sounding, cup.azimuth, cup.size) == ("cup", False, -1.0, 0.3)
    with pytest.raises(InputError):
        gt.at(3.0)


def test_bad_files_raise_media_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MediaError, match="bad.json"):
        load(bad)
    d = _gt().to_dict()
    d["objects"][0]["azimuth"] = d["objects"][0]["azimuth"][:3]
    import json

    bad.write_text(json.dumps(d))
    with pytest.raises(MediaError, match="3 azimuths"):
        load(bad)
    with pytest.raises(MediaError):
        load(tmp_path / "missing.json")
