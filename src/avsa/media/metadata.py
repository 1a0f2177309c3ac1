"""Google spatial-media metadata in MP4/MOV files (stub; filled in below)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SphericalInfo:
    """Spherical metadata of a file; fields are None where the file says nothing."""

    projection: str | None
    stereo_mode: str | None
    spatial_audio: bool | None


def read_spherical(path: str | os.PathLike) -> SphericalInfo | None:
    return None


def inject_spherical(path, *, projection="equirectangular", ambisonic_channels=None) -> bool:
    return False
