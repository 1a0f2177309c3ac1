"""Synthetic downstream tasks: deterministic, balanced, the right shapes, classes that differ."""

import numpy as np
import pytest

from avsa.evaluate.synthetic import MOTIONS, _motion_path, make_task


def test_scene_task_is_deterministic_balanced_and_windowed():
    a = make_task("synth-foa-scenes", seed=3, small=True)
    b = make_task("synth-foa-scenes", seed=3, small=True)
    assert [i.id for i in a.train] == [i.id for i in b.train]
    for item in a.train + a.test:
        np.testing.assert_array_equal(a.data[item.id], b.data[item.id])
        assert a.data[item.id].shape == (3, 4, a.sample_rate)  # three 1-s FOA windows
    counts = np.bincount([i.label for i in a.test], minlength=len(a.classes))
    assert (counts == 2).all() and not {i.id for i in a.train} & {i.id for i in a.test}
    other = make_task("synth-foa-scenes", seed=4, small=True)
    assert not np.array_equal(other.data[a.train[0].id], a.data[a.train[0].id])


def test_more_test_scenes_extend_the_test_set_and_keep_the_training_scenes():
    a = make_task("synth-foa-scenes", seed=3, small=True)
    more = make_task("synth-foa-scenes", seed=3, small=True, test_per_class=4)
    assert [i.id for i in more.train] == [i.id for i in a.train]
    assert np.bincount([i.label for i in more.test]).tolist() == [4] * len(a.classes)
    assert {i.id for i in a.test} < {i.id for i in more.test}  # the first test scenes are the same scenes
    for item in a.train + a.test:
        np.testing.assert_array_equal(more.data[item.id], a.data[item.id])
    with pytest.raises(ValueError, match="test_per_class"):
        make_task("synth-foa-scenes", test_per_class=0)


def test_binaural_scenes_have_two_ears():
    t = make_task("synth-binaural-scenes", small=True)
    x = t.data[t.test[0].id]
    assert x.shape == (3, 2, t.sample_rate) and np.isfinite(x).all() and np.abs(x).max() > 0


def test_motion_task_moves_the_object_the_named_way():
    t = make_task("synth-video-motion", crop_size=48, small=True)
    assert t.classes == MOTIONS
    clips = {name: [t.data[i.id][0].astype(float) for i in t.train if i.label_name == name] for name in MOTIONS}
    for clip in clips["static"]:
        assert clip.shape == (8, 3, 48, 48)
        assert np.abs(clip[-1] - clip[0]).mean() < 0.05  # nothing moves
    for name in ("left", "right", "up", "down", "approaching"):
        assert all(np.abs(c[-1] - c[0]).mean() > 0.3 for c in clips[name]), name


def test_motion_names_follow_the_direction_convention():
    """docs/conventions.md: azimuth grows to the left, elevation grows upwards."""
    t = np.linspace(0.0, 0.5, 8)
    left, _, _ = _motion_path("left", t, 0.2, 0.0, 0.3, 0.7)
    right, _, _ = _motion_path("right", t, 0.2, 0.0, 0.3, 0.7)
    _, up, _ = _motion_path("up", t, 0.2, 0.0, 0.3, 0.7)
    _, down, _ = _motion_path("down", t, 0.2, 0.0, 0.3, 0.7)
    _, _, size = _motion_path("approaching", t, 0.2, 0.0, 0.3, 0.7)
    assert (np.diff(left) > 0).all() and (np.diff(right) < 0).all()
    assert (np.diff(up) > 0).all() and (np.diff(down) < 0).all()
    assert (np.diff(size) > 0).all()
