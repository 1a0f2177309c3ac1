"""Directions, equirectangular coordinates and rotations (``docs/conventions.md`` §1, §2, §4)."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avsa.errors import InputError
from avsa.spatial import sphere


def random_directions(rng, n):
    """Uniform on the sphere, plus the poles' neighbourhood and the seam."""
    az = rng.uniform(-math.pi, math.pi, n)
    el = np.arcsin(rng.uniform(-1, 1, n))
    az = np.concatenate([az, [math.pi, -math.pi + 1e-6, 0.3, -2.0]])
    el = np.concatenate([el, [0.0, 0.2, 1.5, -1.55]])
    return az, el


def test_direction_vector_axes():
    d = sphere.direction_vector(torch.tensor([0.0, math.pi / 2, 0.0]), torch.tensor([0.0, 0.0, math.pi / 2]))
    expected = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])  # front, left, up
    assert torch.allclose(d, expected, atol=1e-7)


def test_vector_direction_round_trip(rng):
    az, el = random_directions(rng, 200)
    d = sphere.direction_vector(az, el)
    assert d.dtype == torch.float64
    assert torch.allclose(torch.linalg.vector_norm(d, dim=-1), torch.ones(len(az), dtype=torch.float64))
    az2, el2 = sphere.vector_direction(3.0 * d)
    assert torch.allclose(sphere.angular_distance(az, el, az2, el2), torch.zeros(len(az), dtype=torch.float64), atol=1e-7)
    assert torch.allclose(el2, torch.as_tensor(el), atol=1e-9)


def test_equirect_landmarks():
    w, h = 1024, 512
    u, v = sphere.direction_to_equirect([0.0, math.pi / 2, -math.pi / 2, math.pi], [0.0, 0.0, math.pi / 2, -math.pi / 2], w, h)
    assert torch.allclose(u, torch.tensor([w / 2, w / 4, 3 * w / 4, 0.0]))
    assert torch.allclose(v, torch.tensor([h / 2, h / 2, 0.0, h]))


def test_equirect_round_trip_pixel_centres():
    w, h = 64, 32
    j, i = np.meshgrid(np.arange(w), np.arange(h))
    az, el = sphere.equirect_to_direction(j + 0.5, i + 0.5, w, h)
    # Pixel-centre inverse of ``docs/conventions.md`` §2.
    assert np.allclose(az.numpy(), np.pi * (1 - 2 * (j + 0.5) / w))
    assert np.allclose(el.numpy(), np.pi / 2 * (1 - 2 * (i + 0.5) / h))
    u, v = sphere.direction_to_equirect(az, el, w, h)
    assert np.allclose(u.numpy(), j + 0.5, atol=1e-9) and np.allclose(v.numpy(), i + 0.5, atol=1e-9)


def test_azimuth_wraps():
    u, _ = sphere.direction_to_equirect(torch.tensor([0.1 + 2 * math.pi, -math.pi - 0.1]), 0.0, 100, 50)
    u0, _ = sphere.direction_to_equirect(torch.tensor([0.1, math.pi - 0.1]), 0.0, 100, 50)
    assert torch.allclose(u, u0, atol=1e-4)
    assert float(sphere.wrap_angle(-math.pi)) == pytest.approx(math.pi)


@pytest.mark.parametrize("name,axis", [("yaw", "z"), ("pitch", "y"), ("roll", "x")])
def test_rotations_match_scipy(rng, name, axis):
    angles = rng.uniform(-4, 4, 7)
    ours = getattr(sphere, name)(angles).numpy()
    theirs = Rotation.from_euler(axis, angles[:, None]).as_matrix()
    assert ours.shape == (7, 3, 3)
    assert np.allclose(ours, theirs, atol=1e-12)


def test_yaw_adds_to_azimuth_and_pitch_tips_front_down():
    d = sphere.yaw(0.4) @ sphere.direction_vector(0.3, 0.2)
    az, el = sphere.vector_direction(d)
    assert float(az) == pytest.approx(0.7, abs=1e-6) and float(el) == pytest.approx(0.2, abs=1e-6)
    front_after = sphere.pitch(0.3) @ torch.tensor([1.0, 0.0, 0.0])
    assert float(front_after[2]) < 0


def test_front_rotation_brings_direction_to_front(rng):
    az, el = random_directions(rng, 100)
    m = sphere.front_rotation(az, el)
    front = (m @ sphere.direction_vector(az, el)[..., None])[..., 0]
    expected = torch.zeros_like(front)
    expected[:, 0] = 1
    assert torch.allclose(front, expected, atol=1e-12)
    assert torch.allclose(m @ m.transpose(-1, -2), torch.eye(3, dtype=m.dtype).expand_as(m), atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(len(az), dtype=m.dtype))


def test_baseline_order_is_not_ours():
    """Pitch before yaw (the baseline's bug) sends (90°, 45°) to (−35.3°, 30°); ours to the front."""
    az, el = math.radians(90), math.radians(45)
    d = sphere.direction_vector(az, el)
    wrong = sphere.yaw(-az) @ sphere.pitch(el) @ d
    waz, wel = sphere.vector_direction(wrong)
    assert math.degrees(float(waz)) == pytest.approx(-35.26, abs=0.05)
    assert math.degrees(float(wel)) == pytest.approx(30.0, abs=0.05)
    ours = sphere.front_rotation(az, el) @ d
    assert torch.allclose(ours, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


def test_bad_inputs():
    with pytest.raises(InputError, match="NaN"):
        sphere.direction_vector(float("nan"), 0.0)
    with pytest.raises(InputError, match="broadcast"):
        sphere.direction_vector(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match=r"\(\.\.\., 3\)"):
        sphere.vector_direction(np.zeros((5, 2)))
    with pytest.raises(InputError, match="width"):
        sphere.direction_to_equirect(0.0, 0.0, 0, 10)
    with pytest.raises(InputError, match="number"):
        sphere.direction_vector("left", 0.0)


def test_perturbed_directions_lie_at_the_drawn_angle():
    """Each moved direction is |N(0, σ)| away from its original (checked against an independent draw)."""
    import numpy as np

    az = np.array([0.0, 1.0, -2.5, 3.1, 0.4])
    el = np.array([0.0, 0.5, -1.2, 1.5, -0.3])
    sigma = np.radians(15)
    new_az, new_el = sphere.perturb_directions(az, el, sigma, np.random.default_rng(3))
    expected = np.abs(np.random.default_rng(3).normal(0.0, sigma, size=az.shape))
    dist = sphere.angular_distance(new_az, new_el, torch.as_tensor(az), torch.as_tensor(el))
    np.testing.assert_allclose(dist.numpy(), expected, atol=1e-6)
    # headings are spread: the moves do not all go one way
    many_az, many_el = sphere.perturb_directions(np.zeros(400), np.zeros(400), sigma, np.random.default_rng(0))
    assert abs(float(many_az.mean())) < 0.02 and abs(float(many_el.mean())) < 0.02
    same = sphere.perturb_directions(az, el, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(same[0].numpy(), az, atol=1e-9)
