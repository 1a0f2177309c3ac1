"""EAC → equirect re-projection against the forward mapping and FFmpeg's v360 filter."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from avsa.errors import InputError
from avsa.media.eac import eac_to_equirect
from avsa.spatial.cubemap import direction_to_eac

H, W = 128, 256
MARKERS_DEG = [(0, 0), (90, 20), (-90, -30), (170, 10), (-135, 45), (30, -70), (60, 75)]


def marker_frame(azimuth_deg: float, elevation_deg: float, radius_deg: float = 6.0) -> np.ndarray:
    """Equirect frame, white disc (angular radius) at one direction on black (``docs/conventions.md`` §2)."""
    theta = np.pi * (1 - 2 * (np.arange(W) + 0.5) / W)
    phi = (np.pi / 2) * (1 - 2 * (np.arange(H) + 0.5) / H)
    th, ph = np.meshgrid(theta, phi)
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    cos_gamma = np.sin(ph) * np.sin(e) + np.cos(ph) * np.cos(e) * np.cos(th - a)
    disc = cos_gamma > np.cos(np.radians(radius_deg))
    return np.repeat((disc * 255).astype(np.uint8)[..., None], 3, axis=-1)


def marker_direction(frame: np.ndarray) -> np.ndarray:
    """Weighted mean direction of the bright pixels of an equirect frame (unit vector)."""
    theta = np.pi * (1 - 2 * (np.arange(frame.shape[1]) + 0.5) / frame.shape[1])
    phi = (np.pi / 2) * (1 - 2 * (np.arange(frame.shape[0]) + 0.5) / frame.shape[0])
    th, ph = np.meshgrid(theta, phi)
    w = frame[..., 0].astype(float) * np.cos(ph)  # solid angle of each pixel
    d = np.stack([np.cos(th) * np.cos(ph), np.sin(th) * np.cos(ph), np.sin(ph)], -1)
    m = (d * w[..., None]).sum((0, 1))
    return m / np.linalg.norm(m)


def unit(azimuth_deg, elevation_deg):
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


def v360(frame: np.ndarray, args: str) -> np.ndarray:
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.shape[1], height=frame.shape[0], format="rgb24", time_base=Fraction(1, 25))
    projection = graph.add("v360", args)
    sink = graph.add("buffersink")
    source.link_to(projection)
    projection.link_to(sink)
    graph.configure()
    video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    video_frame.pts = 0
    graph.push(video_frame)
    return graph.pull().to_ndarray(format="rgb24")


def angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(a @ b, -1, 1)))


@pytest.mark.parametrize("azimuth, elevation", MARKERS_DEG)
def test_markers_come_back_from_ffmpeg_v360_eac(azimuth, elevation):
    """Independent oracle: FFmpeg's v360 (e → eac, 2-px padding), then ours back to equirect."""
    eac = v360(marker_frame(azimuth, elevation), "input=e:output=eac:w=192:h=128:interp=linear")
    back = eac_to_equirect(eac, (W, H), padding=2)
    assert angle_deg(marker_direction(back), unit(azimuth, elevation)) < 1.5


@pytest.mark.parametrize("azimuth, elevation", MARKERS_DEG)
def test_markers_come_back_from_synthetic_eac(azimuth, elevation):
    forward = pytest.importorskip("avsa.media.synth.eac")
    eac = forward.equirect_to_eac(marker_frame(azimuth, elevation))
    back = eac_to_equirect(eac, (W, H))
    assert angle_deg(marker_direction(back), unit(azimuth, elevation)) < 1.0


def test_direction_to_eac_puts_face_centres_in_the_documented_tiles():
    f = 10
    centres = {
        "left": ((0, 1, 0), (0.5, 0.5)), "front": ((1, 0, 0), (1.5, 0.5)), "right": ((0, -1, 0), (2.5, 0.5)),
        "down": ((0, 0, -1), (0.5, 1.5)), "back": ((-1, 0, 0), (1.5, 1.5)), "up": ((0, 0, 1), (2.5, 1.5)),
    }
    for name, (d, (col, row)) in centres.items():
        u, v = direction_to_eac(np.array(d, float), 3 * f, 2 * f)
        assert (float(u), float(v)) == pytest.approx((col * f, row * f)), name
    # Front tile: left in the world (+y) is left in the image; up (+z) is up.
    u, v = direction_to_eac(np.array([1.0, 0.3, 0.2]), 3 * f, 2 * f)
    assert u < 1.5 * f and v < 0.5 * f


def test_batches_and_bad_shapes():
    frames = np.stack([v360(marker_frame(0, 0), "input=e:output=eac:w=192:h=128")] * 2)
    out = eac_to_equirect(frames, (64, 32), padding=2)
    assert out.shape == (2, 32, 64, 3) and out.dtype == np.uint8
    with pytest.raises(InputError):
        eac_to_equirect(np.zeros((128, 128, 3), np.uint8), (64, 32))
