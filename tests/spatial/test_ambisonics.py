"""Encoding, conventions, rotation, beams and stereo (``docs/conventions.md`` §3–§5)."""

import math

import numpy as np
import pytest
import torch

from avsa.errors import InputError
from avsa.spatial import ambisonics as amb
from avsa.spatial import sphere

from .test_sphere import random_directions


def test_encode_plane_wave_gains():
    s = torch.randn(50, dtype=torch.float64)
    az, el = 0.7, -0.4
    x = amb.encode(s, az, el)
    g = torch.tensor([1, math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)], dtype=torch.float64)
    assert x.shape == (4, 50)
    assert torch.allclose(x, g[:, None] * s)


def test_encode_batch_and_moving_source(rng):
    s = torch.randn(3, 100)
    x = amb.encode(s, torch.tensor([0.0, 1.0, 2.0]), 0.0)  # one direction per signal
    assert x.shape == (3, 4, 100)
    assert torch.allclose(x[1], amb.encode(s[1], 1.0, 0.0))
    az = torch.linspace(-3, 3, 100)  # one direction per sample
    moving = amb.encode(s[0], az, 0.2)
    assert torch.allclose(moving[:, 40], amb.encode(s[0, 40:41], float(az[40]), 0.2)[:, 0], atol=1e-6)
    # NumPy in, torch out, dtype follows the signal.
    y = amb.encode(np.ones(10, dtype=np.float32), np.float64(0.3), 0.1)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32


def test_rotate_to_front_lands_exactly_at_front(rng):
    az, el = random_directions(rng, 64)
    s = torch.as_tensor(rng.standard_normal((len(az), 32)))
    x = amb.encode(s, az, el)
    y = amb.rotate_to_front(x, az, el)
    expected = torch.stack([s, 0 * s, 0 * s, s], dim=-2)  # [1, 0, 0, 1]·s
    assert torch.allclose(y, expected, atol=1e-12)


def test_rotation_moves_source_and_keeps_energy(rng):
    s = torch.as_tensor(rng.standard_normal((5, 200)))
    field = amb.encode(s, torch.as_tensor(rng.uniform(-3, 3, 5)), torch.as_tensor(rng.uniform(-1, 1, 5))).sum(0)
    m = sphere.yaw(0.5) @ sphere.pitch(-0.3) @ sphere.roll(1.1)
    rotated = amb.rotate(field, m)
    assert torch.allclose(rotated.square().sum(), field.square().sum())
    assert torch.allclose(rotated[0], field[0])  # W unchanged
    # A single plane wave rotates like its direction vector.
    one = amb.encode(s[0], 0.4, 0.3)
    az2, el2 = sphere.vector_direction(m @ sphere.direction_vector(0.4, 0.3).to(m.dtype))
    assert torch.allclose(amb.rotate(one, m), amb.encode(s[0], az2, el2), atol=1e-12)


def test_mirror_flips_azimuth():
    s = torch.randn(20, dtype=torch.float64)
    assert torch.allclose(amb.mirror(amb.encode(s, 0.8, 0.2)), amb.encode(s, -0.8, 0.2))


BEAM_A = {"cardioid": 0.5, "supercardioid": (math.sqrt(3) - 1) / 2, "hypercardioid": 0.25}


@pytest.mark.parametrize("pattern", ["cardioid", "supercardioid", "hypercardioid", "steering"])
@pytest.mark.parametrize("gamma_deg", [0, 45, 90, 135, 180])
def test_beam_patterns_analytic(pattern, gamma_deg):
    beam_az, beam_el = 0.6, 0.5
    # A source at angle γ from the beam: rotate the beam direction about an orthogonal axis.
    u = sphere.direction_vector(beam_az, beam_el).double()
    axis = torch.linalg.cross(u, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    axis = axis / axis.norm()
    g = math.radians(gamma_deg)
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    r = torch.eye(3, dtype=torch.float64) + math.sin(g) * k + (1 - math.cos(g)) * k @ k
    src_az, src_el = sphere.vector_direction(r @ u)
    s = torch.ones(4, dtype=torch.float64)
    out = amb.beamform(amb.encode(s, src_az, src_el), beam_az, beam_el, pattern=pattern)
    expected = 1 + math.cos(g) if pattern == "steering" else BEAM_A[pattern] + (1 - BEAM_A[pattern]) * math.cos(g)
    assert torch.allclose(out, torch.full((4,), expected, dtype=torch.float64), atol=1e-12)


def test_beamform_batched_directions():
    field = amb.encode(torch.ones(8), 0.0, 0.0)
    out = amb.beamform(field, torch.tensor([0.0, math.pi]), torch.zeros(2))
    assert out.shape == (2, 8)
    assert torch.allclose(out[:, 0], torch.tensor([1.0, 0.0]), atol=1e-6)


def test_to_stereo_source_left():
    lr = amb.to_stereo(amb.encode(torch.ones(5), math.pi / 2, 0.0))
    assert lr.shape == (2, 5)
    assert torch.allclose(lr[0], torch.ones(5), atol=1e-6) and torch.allclose(lr[1], torch.full((5,), -0.5), atol=1e-6)
    front = amb.to_stereo(amb.encode(torch.ones(5), 0.0, 0.0))
    assert torch.allclose(front, torch.full((2, 5), 0.25), atol=1e-6)


@pytest.mark.parametrize("convention", sorted(amb.CONVENTIONS))
def test_convention_round_trip(rng, convention):
    foa = torch.as_tensor(rng.standard_normal((2, 4, 30)))
    raw = amb.from_ambix(foa, convention)
    assert raw.shape == (2, amb.CONVENTIONS[convention], 30)
    assert torch.allclose(amb.to_ambix(raw, convention), foa, atol=1e-12)


def test_known_layouts():
    s = torch.randn(10, dtype=torch.float64)
    az, el = 0.5, 0.3
    x = math.cos(az) * math.cos(el) * s
    y = math.sin(az) * math.cos(el) * s
    z = math.sin(el) * s
    ref = amb.encode(s, az, el)
    fuma = torch.stack([s / math.sqrt(2), x, y, z])
    assert torch.allclose(amb.to_ambix(fuma, "fuma"), ref)
    n3d = torch.stack([s, math.sqrt(3) * y, math.sqrt(3) * z, math.sqrt(3) * x])
    assert torch.allclose(amb.to_ambix(n3d, "n3d"), ref)
    aac = torch.stack([x, y, s, 0 * s, z, 0 * s])
    assert torch.allclose(amb.to_ambix(aac.numpy(), "youtube-aac"), ref)
    headlocked = torch.cat([ref, torch.randn(2, 10, dtype=torch.float64)])
    assert torch.allclose(amb.to_ambix(headlocked, "ambix+headlocked"), ref)


def test_bad_inputs():
    with pytest.raises(InputError, match="4 channels"):
        amb.rotate_to_front(torch.zeros(3, 100), 0.0, 0.0)
    with pytest.raises(InputError, match="6 channels"):
        amb.to_ambix(torch.zeros(4, 100), "youtube-aac")
    with pytest.raises(InputError, match="unknown Ambisonics convention 'bformat'"):
        amb.to_ambix(torch.zeros(4, 100), "bformat")
    with pytest.raises(InputError, match="NaN"):
        amb.to_stereo(torch.full((4, 10), float("nan")))
    with pytest.raises(InputError, match="inf"):
        amb.encode(torch.tensor([1.0, float("inf")]), 0.0, 0.0)
    with pytest.raises(InputError, match="broadcast"):
        amb.rotate_to_front(torch.zeros(3, 4, 10), torch.zeros(2), torch.zeros(2))
    with pytest.raises(InputError, match="broadcast"):
        amb.encode(torch.zeros(3, 10), torch.zeros(4), 0.0)
    with pytest.raises(InputError, match="pattern"):
        amb.beamform(torch.zeros(4, 10), 0.0, 0.0, pattern="figure8")
    with pytest.raises(InputError, match=r"\(\.\.\., 3, 3\)"):
        amb.rotate(torch.zeros(4, 10), torch.eye(4))


# --------------------------------------------------------------------------- validity (paper Eq. 13)

SR = 24000


def noise_field(rng, n_sources=40, n=SR):
    """Independent noise sources from many directions (ambiX/SN3D), shape (4, N)."""
    az = torch.as_tensor(rng.uniform(-math.pi, math.pi, n_sources))
    el = torch.as_tensor(np.arcsin(rng.uniform(-1, 1, n_sources)))
    return amb.encode(torch.as_tensor(rng.standard_normal((n_sources, n))), az, el).sum(0)


def test_validity_ratio_by_convention(rng):
    field = noise_field(rng)
    rho = {
        "ambix": amb.validity_ratio(field, SR),
        "fuma": amb.validity_ratio(amb.from_ambix(field, "fuma")[[0, 2, 3, 1]] * 1.0, SR),  # FuMa W/√2 read as ambiX
        "n3d": amb.validity_ratio(amb.from_ambix(field, "n3d"), SR),
    }
    assert float(rho["ambix"]) == pytest.approx(1.0, abs=0.15)
    assert float(rho["fuma"]) == pytest.approx(2.0, abs=0.3)
    assert float(rho["n3d"]) == pytest.approx(3.0, abs=0.45)
    mono = torch.zeros(4, SR, dtype=torch.float64)
    mono[0] = torch.as_tensor(rng.standard_normal(SR))
    mono[1:] = 1e-3 * torch.as_tensor(rng.standard_normal((3, SR)))  # near-empty dipoles
    assert float(amb.validity_ratio(mono, SR)) < 0.01
    one_wave = amb.encode(torch.as_tensor(rng.standard_normal(SR)), 1.0, 0.7)
    assert float(amb.validity_ratio(one_wave, SR)) == pytest.approx(1.0, abs=1e-9)


def test_validity_lowpass_ignores_high_band(rng):
    field = noise_field(rng, n=SR // 2)
    hiss = torch.zeros_like(field)
    t = torch.arange(SR // 2, dtype=torch.float64) / SR
    hiss[1] = 20.0 * torch.sin(2 * math.pi * 8000 * t)  # strong Y only above the cut-off
    assert float(amb.validity_ratio(field + hiss, SR)) == pytest.approx(float(amb.validity_ratio(field, SR)), rel=1e-6)
    assert float(amb.validity_ratio(field + hiss, SR, cutoff_hz=12000.0)) > 4


def test_validity_batched_and_silent(rng):
    batch = torch.stack([noise_field(rng, n=4800), torch.zeros(4, 4800, dtype=torch.float64)])
    rho = amb.validity_ratio(batch, SR)
    assert rho.shape == (2,) and torch.isnan(rho[1]) and not torch.isnan(rho[0])


def test_diagnose(rng):
    field = noise_field(rng)
    assert amb.diagnose(field, SR).convention == "ambix"
    fuma_as_ambix = amb.from_ambix(field, "fuma")[[0, 2, 3, 1]]
    result = amb.diagnose(fuma_as_ambix, SR)
    assert result.convention == "fuma" and "fuma" in result.reason.lower()
    assert amb.diagnose(amb.from_ambix(field, "n3d"), SR).convention == "n3d"
    mono = torch.zeros_like(field)
    mono[0] = field[0]
    assert amb.diagnose(mono, SR).convention == "not ambisonic"
    fuma_w_n3d = amb.from_ambix(field, "n3d") * torch.tensor([1 / math.sqrt(2), 1, 1, 1], dtype=field.dtype)[:, None]
    assert amb.diagnose(fuma_w_n3d, SR).convention == "not ambisonic"  # ρ ≈ 6
    silent = amb.diagnose(np.zeros((4, 1000)), SR)
    assert silent.convention == "silent" and math.isnan(silent.ratio) and "silent" in silent.reason
    with pytest.raises(InputError, match=r"\(4, N\)"):
        amb.diagnose(torch.zeros(2, 4, 100), SR)
