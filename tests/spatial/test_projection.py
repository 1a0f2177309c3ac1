"""Gnomonic crops (``docs/conventions.md`` §7) against analytic markers and py360convert."""

import math

import numpy as np
import pytest
import torch

from avsa.errors import InputError
from avsa.spatial import projection, sphere

py360convert = pytest.importorskip("py360convert")


def smooth_frame(h=128, w=256, channels=3):
    """A smooth, seam-continuous test image (so bilinear schemes agree closely)."""
    az, el = sphere.equirect_to_direction(*np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5), w, h)
    d = sphere.direction_vector(az, el).double()  # (H, W, 3)
    img = [torch.sin(3 * d[..., 0] + 2 * d[..., 1] * (c + 1)) + torch.cos(4 * d[..., 2] + c) for c in range(channels)]
    return torch.stack(img).double()  # (C, H, W)


def marker_frame(az, el, h=256, w=512, radius=0.03):
    """Bright spot of angular radius ``radius`` at (az, el) on a black frame, shape (1, H, W)."""
    paz, pel = sphere.equirect_to_direction(*np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5), w, h)
    dist = sphere.angular_distance(paz, pel, az, el)
    return torch.exp(-((dist / radius) ** 2))[None]


def weighted_centre(img):
    """(row, col) of the intensity-weighted centre of a (N, N) image."""
    n = img.shape[-1]
    ii, jj = torch.meshgrid(torch.arange(n, dtype=img.dtype), torch.arange(n, dtype=img.dtype), indexing="ij")
    return float((img * ii).sum() / img.sum()), float((img * jj).sum() / img.sum())


@pytest.mark.parametrize("az_deg,el_deg", [(0, 0), (90, 45), (-150, -60), (179, 10), (30, 80)])
def test_marker_appears_at_crop_centre(az_deg, el_deg):
    az, el = math.radians(az_deg), math.radians(el_deg)
    frame = marker_frame(az, el).double()
    crop = projection.gnomonic_crop(frame, az, el, math.radians(60), 65)[0]
    row, col = weighted_centre(crop)
    assert row == pytest.approx(32, abs=0.3) and col == pytest.approx(32, abs=0.3)


def test_off_centre_marker_lands_at_predicted_pixel():
    caz, cel, fov, n = math.radians(-100), math.radians(30), math.radians(90), 81
    mark_az, mark_el = caz + 0.3, cel - 0.2
    frame = marker_frame(mark_az, mark_el).double()
    crop = projection.gnomonic_crop(frame, caz, cel, fov, n)[0]
    col, row, inside = projection.crop_coordinates(mark_az, mark_el, caz, cel, fov, n)
    assert bool(inside)
    r, c = weighted_centre(crop)
    assert r == pytest.approx(float(row), abs=0.5) and c == pytest.approx(float(col), abs=0.5)
    assert float(col) < (n - 1) / 2 and float(row) > (n - 1) / 2  # left of and below the centre


def test_rays_centre_and_corners():
    rays = projection.gnomonic_rays(0.4, -0.2, math.radians(90), 5)
    assert rays.shape == (5, 5, 3)
    az, el = sphere.vector_direction(rays[2, 2])
    assert float(az) == pytest.approx(0.4, abs=1e-6) and float(el) == pytest.approx(-0.2, abs=1e-6)
    col, row, inside = projection.crop_coordinates(*sphere.vector_direction(rays), 0.4, -0.2, math.radians(90), 5)
    jj, ii = np.meshgrid(np.arange(5), np.arange(5))
    assert np.allclose(col.numpy(), jj, atol=1e-4) and np.allclose(row.numpy(), ii, atol=1e-4) and bool(inside.all())


@pytest.mark.parametrize(
    "az_deg,el_deg,fov_deg",
    [(0, 0, 90), (180, 0, 60), (-175, 20, 90), (60, 70, 90), (-120, -85, 60), (90, 45, 100)],
)
def test_matches_py360convert(az_deg, el_deg, fov_deg):
    frame = smooth_frame()
    n = 48
    ours = projection.gnomonic_crop(frame, math.radians(az_deg), math.radians(el_deg), math.radians(fov_deg), n)
    theirs = py360convert.e2p(
        frame.permute(1, 2, 0).numpy(), fov_deg=(fov_deg, fov_deg), u_deg=-az_deg, v_deg=el_deg, out_hw=(n, n)
    )
    diff = np.abs(ours.permute(1, 2, 0).numpy() - theirs)
    assert diff.max() < 0.02, diff.max()  # values span ~[-2, 2]; bilinear schemes differ at the poles only


CASES = [(0, 0, 90), (180, 0, 60), (-175, 20, 90), (60, 70, 90), (-120, -85, 60), (90, 45, 100)]


def uint8_frame():
    """:func:`smooth_frame` scaled from [−2, 2] to 0..255 and rounded."""
    return ((smooth_frame() + 2) / 4 * 255).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("az_deg,el_deg,fov_deg", CASES)
def test_uint8_matches_py360convert(az_deg, el_deg, fov_deg):
    # uint8 on the CPU takes OpenCV's remap; the same accuracy as the float test above:
    # 0.02 of its [−2, 2] range is 1.3 of 0..255 (measured: 0.5, the rounding to integers).
    frame = uint8_frame()
    n = 48
    ours = projection.gnomonic_crop(frame, math.radians(az_deg), math.radians(el_deg), math.radians(fov_deg), n)
    assert ours.dtype == torch.uint8  # as the frame, and as py360convert gives
    theirs = py360convert.e2p(
        frame.permute(1, 2, 0).double().numpy(), fov_deg=(fov_deg, fov_deg), u_deg=-az_deg, v_deg=el_deg, out_hw=(n, n)
    )
    diff = np.abs(ours.permute(1, 2, 0).numpy() - theirs)
    assert diff.max() < 0.02 * 255 / 4, diff.max()


@pytest.mark.parametrize("az_deg,el_deg,fov_deg", CASES)
def test_uint8_sampler_matches_float_sampler(az_deg, el_deg, fov_deg):
    # OpenCV (1/32-pixel positions, rounded values) against grid_sample on the same frame as float:
    # rounding 0.5 + at most 1/64 pixel × the steepest step of this frame (< 6 per pixel) < 0.6; measured 0.67
    # at most over these cases, bound 1.
    frame = uint8_frame()
    angles = math.radians(az_deg), math.radians(el_deg), math.radians(fov_deg)
    ours = projection.gnomonic_crop(frame, *angles, 48)
    reference = projection.gnomonic_crop(frame.double(), *angles, 48)
    assert (ours - reference).abs().max() < 1.0


def test_uint8_grid_sample_path_rounds_to_uint8(monkeypatch):
    # CUDA tensors (or an install without OpenCV) take grid_sample: uint8 in, the float samples rounded, uint8 out,
    # within 1 of OpenCV's fixed-point samples (the float sampler is within 1 of both, see above).
    frame = uint8_frame()
    az, el = torch.tensor([0.3, -2.9, 3.1]), torch.tensor([0.2, -1.1, 1.4])
    opencv = projection.gnomonic_crop(frame, az, el, 1.2, 48)
    monkeypatch.setattr(projection, "cv2", None)
    rounded = projection.gnomonic_crop(frame, az, el, 1.2, 48)
    assert rounded.dtype == opencv.dtype == torch.uint8
    diff = (rounded.int() - opencv.int()).abs()
    assert diff.max() <= 1 and 0 < diff.float().mean() < 0.5, float(diff.float().mean())  # two samplers, mostly equal


def test_uint8_channels_last_frames_give_the_same_crops():
    frames = torch.randint(0, 256, (2, 3, 32, 64), dtype=torch.uint8)  # (T, C, H, W)
    channels_last = frames.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # same values, (T, H, W, C) memory
    az, el = torch.tensor([0.3, -2.9]), torch.tensor([0.2, -1.1])
    planar = projection.gnomonic_crop(frames, az, el, 1.2, 16)
    assert torch.equal(projection.gnomonic_crop(channels_last, az, el, 1.2, 16), planar)
    one_channel = projection.gnomonic_crop(frames[:, 1:2], az, el, 1.2, 16)
    assert torch.equal(one_channel, planar[:, :, 1:2])


def test_uint8_seam_wraps():
    w, h = 64, 32
    frame = torch.zeros(1, h, w, dtype=torch.uint8)
    frame[..., 0] = 10  # first column (just right of θ = π) ...
    frame[..., -1] = 30  # ... and the last one (just left of θ = −π)
    crop = projection.gnomonic_crop(frame, math.pi, 0.0, math.radians(10), 9)[0]
    assert float(crop[4, 4]) == 20.0  # halfway between the two seam columns
    frame = torch.full((1, h, w), 50, dtype=torch.uint8)
    frame[:, -1] = 200  # bottom row: must not leak into a crop of the zenith
    zenith = projection.gnomonic_crop(frame, 0.0, math.pi / 2, math.radians(10), 9)[0]
    assert float(zenith[4, 4]) == 50.0  # rows are clamped at the pole, not wrapped


def whole_frame_remap(frames, az_deg, el_deg, fov_deg, n):
    """The straightforward CPU uint8 path: OpenCV ``remap`` of each whole frame (T, C, H, W) → (K, T, C, N, N)."""
    cv2 = pytest.importorskip("cv2")
    t, c, h, w = frames.shape
    angles = [torch.tensor(np.radians(np.broadcast_to(a, np.shape(az_deg))), dtype=torch.float32)
              for a in (az_deg, el_deg, fov_deg)]
    x, y = projection._sampling_map(*angles, n, w, h)  # (K, N, N) each
    k = x.shape[0]
    fixed, fractions = cv2.convertMaps(x.reshape(k * n, n).numpy(), y.reshape(k * n, n).numpy(), cv2.CV_16SC2)
    crops = [cv2.remap(np.ascontiguousarray(frame.permute(1, 2, 0).numpy()), fixed, fractions, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_WRAP).reshape(k, n, n, c) for frame in frames]
    return torch.from_numpy(np.stack(crops, axis=1)).permute(0, 1, 4, 2, 3)


CROP_CASES = [  # (frame H, W, channels), crop size N, crops (azimuth, elevation, fov) in degrees
    ((32, 64, 3), 16, [(180, 0, 40), (-179.5, 30, 90), (179, -20, 10), (0, 0, 170)]),  # the seam, a wide crop
    ((128, 256, 3), 48, [(10, 60, 90), (-100, 75, 60), (170, 89, 30), (45, 90, 120)]),  # towards and at the north pole
    ((128, 256, 1), 33, [(-60, -60, 90), (120, -80, 100), (-180, -90, 20), (5, -89.9, 150)]),  # the south pole
    ((100, 200, 4), 7, [(90, 45, 60), (-135, -30, 90), (180, 85, 170), (0, -45, 5)]),
    ((40, 100, 3), 2, [(-90, 10, 120), (179.9, 70, 90), (30, -89, 40), (-30, 0, 90)]),  # W ≠ 2H, N = 2
    ((512, 1024, 3), 112, [(-170, 10, 90), (-60, -30, 90), (20, 60, 90), (120, 0, 90)]),  # the benchmark's crops
    ((64, 128, 2), 16, [(0, 0, 90), (179, -70, 60), (-90, 88, 120)]),  # two channels: planes interleaved by the copy
    ((32, 64, 5), 8, [(45, 20, 90), (-179.9, -45, 30)]),  # five: sampled plane by plane
]


@pytest.mark.parametrize("layout", ["channels_last", "planar"])
@pytest.mark.parametrize("shape,n,crops", CROP_CASES)
def test_uint8_row_copies_sample_as_the_whole_frame(shape, n, crops, layout):
    # The CPU uint8 path remaps a scratch frame holding only the rows the crops read: the same values,
    # bit for bit, as remapping the whole frame, on noise (every pixel differs from its neighbours).
    h, w, c = shape
    planar = torch.from_numpy(np.random.default_rng(h + n).integers(0, 256, (2, c, h, w), dtype=np.uint8))
    frames = planar.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if layout == "channels_last" else planar
    az, el, fov = (np.array(v, dtype=float) for v in zip(*crops))
    ours = projection.gnomonic_crop(frames, np.radians(az), np.radians(el), np.radians(fov), n)  # (K, T, C, N, N)
    assert torch.equal(ours, whole_frame_remap(planar, az, el, fov, n))


@pytest.mark.parametrize("h,w,n", [(32, 64, 9), (128, 256, 48), (40, 100, 2), (512, 1024, 112)])
def test_source_rows_hold_every_tap_remap_reads(h, w, n):
    # Every row OpenCV's fixed-point bilinear remap reads, sy and sy + 1, lies in a band of its crop set's rows;
    # the row below the frame only where the row weight is 0 (positions clamped to the bottom row).
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(n)
    sets, k = 50, 4
    m = sets * k
    az = rng.choice([rng.uniform(-math.pi, math.pi, m), rng.choice([-math.pi, math.pi, 3.1, -3.1], m)], p=[0.7, 0.3])
    el = np.where(rng.random(m) < 0.4, rng.choice([-1, 1], m) * rng.uniform(1.0, math.pi / 2, m),
                  rng.uniform(-math.pi / 2, math.pi / 2, m))
    fov = rng.uniform(0.05, 3.0, m)
    x, y = projection._sampling_map(*(torch.tensor(v, dtype=torch.float32) for v in (az, el, fov)), n, w, h)
    bands = projection._source_rows(y.reshape(sets, k, n * n).numpy(), h)
    fixed, fractions = cv2.convertMaps(x.reshape(m * n, n).numpy(), y.reshape(m * n, n).numpy(), cv2.CV_16SC2)
    sy = fixed[..., 1].reshape(sets, k * n * n).astype(int)
    weighs_row_below = (fractions.reshape(sets, k * n * n) >> 5) > 0
    for p in range(sets):
        held = np.zeros(h + 1, dtype=bool)
        for rows in bands[p]:
            held[rows] = True
        assert held[sy[p]].all(), p
        missing = ~held[sy[p] + 1]
        assert (sy[p][missing] + 1 == h).all() and not weighs_row_below[p][missing].any(), p


@pytest.mark.parametrize("shape,n,crops", CROP_CASES)
def test_source_rows_are_disjoint_ordered_bands(shape, n, crops):
    # The copies into the scratch frame: disjoint bands in order, covering exactly the rows of the crops' maps.
    h, w, _ = shape
    az, el, fov = (torch.tensor(np.radians(v), dtype=torch.float32) for v in zip(*crops))
    _, y = projection._sampling_map(az, el, fov, n, w, h)
    (bands,) = projection._source_rows(y.reshape(1, len(crops), n * n).numpy(), h)
    wanted = np.zeros(h, dtype=bool)
    for crop in y.numpy():
        wanted[int(np.floor(crop.min())):min(int(np.floor(crop.max())) + 2, h - 1) + 1] = True
    copied = np.zeros(h, dtype=int)
    for rows in bands:
        copied[rows] += 1
    assert copied.max() == 1 and np.array_equal(copied == 1, wanted)
    assert all(a.stop < b.start for a, b in zip(bands, bands[1:]))  # merged: no two bands touch


def test_batched_crops_shapes_and_equivalence():
    frames = torch.randint(0, 256, (2, 3, 3, 32, 64), dtype=torch.uint8)  # (B, T, C, H, W)
    az = torch.tensor([[0.0, 1.0, -2.0, 3.1], [0.5, -0.5, 1.5, -3.0]])  # (B, K)
    el = torch.tensor([[0.0, 0.5, -0.3, 1.2], [0.1, 0.2, 0.3, 0.4]])
    out = projection.gnomonic_crop(frames, az, el, 1.2, 16)
    assert out.shape == (2, 4, 3, 3, 16, 16) and out.dtype == torch.uint8
    one = projection.gnomonic_crop(frames[1, 2].numpy(), float(az[1, 3]), float(el[1, 3]), 1.2, 16)
    assert torch.equal(out[1, 3, 2], one)
    shared = projection.gnomonic_crop(frames[0], az[0], el[0], torch.tensor(1.2), 16)  # (K,) angles
    assert shared.shape == (4, 3, 3, 16, 16)
    assert torch.equal(shared, out[0])


def test_seam_wraps():
    w, h = 64, 32
    frame = torch.zeros(1, h, w, dtype=torch.float64)
    frame[..., 0] = 1.0  # first column (just right of θ = π) ...
    frame[..., -1] = 3.0  # ... and the last one (just left of θ = −π)
    crop = projection.gnomonic_crop(frame, math.pi, 0.0, math.radians(10), 9)[0]
    centre = float(crop[4, 4])
    assert centre == pytest.approx(2.0, abs=1e-6)  # halfway between the two seam columns


def test_bad_inputs():
    frame = torch.zeros(3, 16, 32)
    with pytest.raises(InputError, match="fov"):
        projection.gnomonic_crop(frame, 0.0, 0.0, 0.0, 8)
    with pytest.raises(InputError, match="size"):
        projection.gnomonic_crop(frame, 0.0, 0.0, 1.0, 0)
    with pytest.raises(InputError, match="NaN"):
        projection.gnomonic_crop(frame, float("nan"), 0.0, 1.0, 8)
    with pytest.raises(InputError, match="frames"):
        projection.gnomonic_crop(torch.zeros(16, 32).numpy()[0], 0.0, 0.0, 1.0, 8)
    with pytest.raises(InputError, match="more batch dimensions"):
        projection.gnomonic_crop(frame, torch.zeros(2, 2), 0.0, 1.0, 8)
    with pytest.raises(InputError, match="broadcast"):
        projection.gnomonic_crop(torch.zeros(2, 3, 16, 32), torch.zeros(3, 2), 0.0, 1.0, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_crops_match_the_cpu_sampler():
    # CUDA takes grid_sample (rounded to uint8), the CPU OpenCV's fixed-point remap: within 1 of 0..255
    frame = uint8_frame()
    az, el = torch.tensor([0.3, -2.9, 3.1]), torch.tensor([0.2, -1.1, 1.4])
    cpu = projection.gnomonic_crop(frame, az, el, 1.2, 48)
    gpu = projection.gnomonic_crop(frame.cuda(), az.cuda(), el.cuda(), 1.2, 48)
    assert gpu.device.type == "cuda" and gpu.dtype == cpu.dtype == torch.uint8
    assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1


@pytest.mark.parametrize("n", [1, 2, 7, 9, 33, 112])
def test_sampling_map_is_the_projection_of_the_rays_whatever_the_batch(n):
    # The map, computed in each crop's meridian plane with mirrored halves, is where the crop's rays land
    # (direction_to_equirect of gnomonic_rays, the direct route), and each crop's map is the same, bit for bit,
    # alone or in a batch of any size.
    rng = np.random.default_rng(n)
    az, el, fov = rng.uniform(-4, 4, 37), rng.uniform(-math.pi / 2, math.pi / 2, 37), rng.uniform(0.05, 3.0, 37)
    h, w = 64, 128
    x, y = projection._sampling_map(*(torch.tensor(v) for v in (az, el, fov)), n, w, h)  # float64
    rays = projection.gnomonic_rays(az, el, fov, n).double()
    u, v = sphere.direction_to_equirect(*sphere.vector_direction(rays), w, h)
    dx = torch.remainder(x + 0.5 - u + w / 2, w) - w / 2  # across the seam
    assert dx.abs().max() < 1e-6 and (y - (v - 0.5).clamp(0, h - 1)).abs().max() < 1e-6
    angles = [torch.tensor(v, dtype=torch.float32) for v in (az, el, fov)]
    xs, ys = projection._sampling_map(*angles, n, w, h)
    for i in (0, 5, 36):
        xi, yi = projection._sampling_map(*(a[i] for a in angles), n, w, h)
        assert torch.equal(xi, xs[i]) and torch.equal(yi, ys[i]), i
