"""Run a 2-D detector on perspective tiles of the sphere (the paper's future work).

The sphere is covered by gnomonic views (``conventions.md`` §7) — the six cube
faces, or overlapping views (eight around the horizon every 45°, four above
and four below at ±60°) — each rendered with
:func:`avsa.spatial.projection.gnomonic_crop` and given to the detector
undistorted. A box is mapped back through its tile's camera: pixel (x, y) ↦
camera ray (1, −a, −b) with a, b on the tile's tan-plane grid, world ray
``front_rotation(θ0, φ0)ᵀ · c``. The direction is that of the box centre; the
size is the larger of the angles spanned by the box's horizontal and vertical
mid-lines. Duplicates (one object in two tiles) are merged by
:func:`.base.spherical_nms`, preferring boxes not cut by a tile border.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from avsa.data.detection.base import Box2D, Detection, ImageDetector, angular_distance, spherical_nms
from avsa.data.detection.equirect import check_frame
from avsa.errors import InputError
from avsa.spatial.projection import gnomonic_crop
from avsa.spatial.sphere import front_rotation, vector_direction

TILINGS = ("cube", "overlap")


def tile_centres(tiles: str) -> list[tuple[float, float]]:
    """(azimuth, elevation) of every tile centre, radians."""
    if tiles == "cube":
        ring = [(k * math.pi / 2, 0.0) for k in range(4)]
        return ring + [(0.0, math.pi / 2), (0.0, -math.pi / 2)]
    if tiles == "overlap":
        ring = [(k * math.pi / 4, 0.0) for k in range(8)]
        up = [(k * math.pi / 2 + math.pi / 4, math.radians(60)) for k in range(4)]
        down = [(k * math.pi / 2 + math.pi / 4, math.radians(-60)) for k in range(4)]
        return ring + up + down
    raise InputError(f"unknown tiling {tiles!r}; expected one of {TILINGS}")


def tile_pixel_directions(x: np.ndarray, y: np.ndarray, *, azimuth: float, elevation: float,
                          fov: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """World directions of continuous pixel positions on a tile.

    Parameters
    ----------
    x, y : ndarray
        Continuous pixel coordinates on the ``size × size`` tile (pixel j covers
        [j, j+1)).
    azimuth, elevation : float
        Tile centre, radians.
    fov : float
        Horizontal field of view of the tile, radians.

    Returns
    -------
    azimuth, elevation : ndarray, radians, shape of ``x``.
    """
    t = math.tan(fov / 2)
    step = 2 * t / (size - 1)
    a = -t + (np.asarray(x, dtype=np.float64) - 0.5) * step
    b = -t + (np.asarray(y, dtype=np.float64) - 0.5) * step
    cam = np.stack([np.ones_like(a), -a, -b], axis=-1)
    m = np.asarray(front_rotation(torch.tensor(azimuth, dtype=torch.float64),
                                  torch.tensor(elevation, dtype=torch.float64)), dtype=np.float64)
    world = cam @ m  # rows: (Mᵀ c)ᵀ = cᵀ M
    az, el = vector_direction(torch.from_numpy(world))
    return np.asarray(az, dtype=np.float64), np.asarray(el, dtype=np.float64)


class TileRunner:
    """A 2-D detector applied to perspective tiles covering the sphere.

    Parameters
    ----------
    detector : ImageDetector
    tiles : {"cube", "overlap"}
        Cube faces (6 tiles) or overlapping views (16 tiles).
    fov : float, optional
        Tile field of view, radians; default 90° (cube) or 90° (overlap; tiles
        45° apart, so every object is whole in at least one tile up to 45° wide).
    size : int
        Tile side in pixels.
    border : float
        A box closer than ``border × size`` pixels to a tile edge counts as cut.
    """

    mode = "tiles"

    def __init__(self, detector: ImageDetector, *, tiles: str = "overlap", fov: float | None = None,
                 size: int = 256, border: float = 0.01):
        self.centres = tile_centres(tiles)
        self.fov = math.radians(90.0) if fov is None else float(fov)
        if not 0 < self.fov < math.pi * 0.9:
            raise InputError(f"tile fov must be in (0, 162°), got {math.degrees(self.fov):.1f}°")
        if size < 16:
            raise InputError(f"tile size must be at least 16 pixels, got {size}")
        self.detector = detector
        self.tiles = tiles
        self.size = int(size)
        self.border = border

    def render_tiles(self, frame: np.ndarray) -> np.ndarray:
        """The tiles of one equirect frame, uint8 ``(n_tiles, size, size, 3)``."""
        frame = check_frame(frame)
        chw = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
        az = torch.tensor([c[0] for c in self.centres], dtype=torch.float32)
        el = torch.tensor([c[1] for c in self.centres], dtype=torch.float32)
        crops = gnomonic_crop(chw, az, el, torch.full_like(az, self.fov), self.size)  # (K, 3, N, N) uint8
        return np.ascontiguousarray(crops.permute(0, 2, 3, 1).numpy())

    def detect_frame(self, frame: np.ndarray, *, time_s: float) -> list[Detection]:
        """Detections on one equirect frame, uint8 ``(H, W, 3)``, at ``time_s`` seconds."""
        dets, cut = [], []
        for (az, el), tile in zip(self.centres, self.render_tiles(frame)):
            for box in self.detector.detect_image(tile):
                dets.append(self.box_to_detection(box, azimuth=az, elevation=el, time_s=time_s))
                cut.append(self.is_cut(box))
        return spherical_nms(dets, demoted=cut)

    def is_cut(self, box: Box2D) -> bool:
        """Whether the box touches the tile border (the object may continue outside)."""
        m = self.border * self.size
        return box.x0 <= m or box.y0 <= m or box.x1 >= self.size - m or box.y1 >= self.size - m

    def box_to_detection(self, box: Box2D, *, azimuth: float, elevation: float,
                         time_s: float) -> Detection:
        """Map a box on the tile centred at (azimuth, elevation) to a direction."""
        cx, cy = 0.5 * (box.x0 + box.x1), 0.5 * (box.y0 + box.y1)
        xs = np.array([cx, box.x0, box.x1, cx, cx])
        ys = np.array([cy, cy, cy, box.y0, box.y1])
        az, el = tile_pixel_directions(xs, ys, azimuth=azimuth, elevation=elevation,
                                       fov=self.fov, size=self.size)
        width = angular_distance(az[1], el[1], az[2], el[2])
        height = angular_distance(az[3], el[3], az[4], el[4])
        return Detection(azimuth=float(az[0]), elevation=float(el[0]), size=float(max(width, height)),
                         label=box.label, score=float(box.score), time_s=float(time_s))
