"""Object looks and background textures of the synthetic world.

Looks are real photographs bundled with scikit-image (no download): person =
``astronaut``/``camera``, cat = ``chelsea``, cup = ``coffee``, rocket =
``rocket``, motorcycle = ``stereo_motorcycle`` (left view), clock = ``clock``,
horse = ``horse`` (a silhouette, drawn as its own mask). Backgrounds are the
bundled textures ``grass``, ``gravel``, ``brick``, ``moon`` and
``hubble_deep_field``, mapped onto the sphere by :func:`background`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from avsa.errors import InputError

# class -> (skimage.data function, mask shape) per variant
_LOOKS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (("astronaut", "rect"), ("camera", "round")),
    "cat": (("chelsea", "round"),),
    "cup": (("coffee", "round"),),
    "motorcycle": (("stereo_motorcycle", "rect"),),
    "rocket": (("rocket", "rect"),),
    "clock": (("clock", "round"),),
    "horse": (("horse", "silhouette"),),
}
TEXTURES = ("grass", "gravel", "brick", "moon", "hubble_deep_field", "sky")
_LOOK_PIXELS = 160  # longest side of a look after downscaling


@dataclass(frozen=True)
class Look:
    """A photo ready to be drawn on the sphere.

    Attributes
    ----------
    image : np.ndarray, float32, shape (h, w, 3), values in [0, 1]
    alpha : np.ndarray, float32, shape (h, w), 1 inside the object
        (an ellipse for "round", all ones for "rect", the shape for "silhouette").
    """

    image: np.ndarray
    alpha: np.ndarray


def n_variants(label: str) -> int:
    """How many different photos class ``label`` has."""
    if label not in _LOOKS:
        raise InputError(f"unknown object class {label!r}; expected one of {sorted(_LOOKS)}")
    return len(_LOOKS[label])


def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return np.asarray(image)


def _resize(image: np.ndarray, longest: int) -> np.ndarray:
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = longest / max(h, w)
    if scale >= 1:
        return image.astype(np.float32)
    shape = (max(2, round(h * scale)), max(2, round(w * scale))) + image.shape[2:]
    return resize(image.astype(np.float32), shape, anti_aliasing=True, order=1).astype(np.float32)


@functools.lru_cache(maxsize=None)
def look(label: str, variant: int = 0) -> Look:
    """The photo and mask of one object class (cached; do not modify).

    Parameters
    ----------
    label : str
        An object class (``scenes.CLASSES``).
    variant : int
        Which photo of the class, ``0 ≤ variant < n_variants(label)``.
    """
    if not 0 <= variant < n_variants(label):
        raise InputError(f"class {label!r} has no look variant {variant}")
    name, mask = _LOOKS[label][variant]
    raw = _skimage_image(name)
    if mask == "silhouette":  # horse: True = background; draw a brown horse
        shape = ~raw.astype(bool)
        alpha = _resize(shape.astype(np.float32), _LOOK_PIXELS)
        shade = np.linspace(1.0, 0.7, alpha.shape[0], dtype=np.float32)[:, None, None]
        image = np.array([0.45, 0.27, 0.12], dtype=np.float32) * shade * np.ones_like(alpha)[..., None]
        return Look(image, (alpha > 0.5).astype(np.float32))
    image = raw.astype(np.float32) / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = _resize(image[..., :3], _LOOK_PIXELS)
    h, w = image.shape[:2]
    if mask == "round":
        yy, xx = np.mgrid[0:h, 0:w]
        r = ((xx + 0.5) / w * 2 - 1) ** 2 + ((yy + 0.5) / h * 2 - 1) ** 2
        alpha = (r <= 1.0).astype(np.float32)
    else:
        alpha = np.ones((h, w), dtype=np.float32)
    return Look(np.ascontiguousarray(image), alpha)


@functools.lru_cache(maxsize=None)
def texture(name: str) -> np.ndarray:
    """A grey-level texture, float32 (h, w) in [0, 1] (cached; do not modify).

    ``"sky"`` is a soft procedural cloud texture; the rest are scikit-image's.
    """
    if name not in TEXTURES:
        raise InputError(f"unknown texture {name!r}; expected one of {TEXTURES}")
    if name == "sky":
        rng = np.random.default_rng(1234)
        spectrum = np.fft.rfft2(rng.standard_normal((256, 256)))
        fy = np.fft.fftfreq(256)[:, None]
        fx = np.fft.rfftfreq(256)[None, :]
        clouds = np.fft.irfft2(spectrum / (1e-3 + (fx**2 + fy**2)), s=(256, 256))
        clouds = (clouds - clouds.min()) / np.ptp(clouds)
        return (0.75 + 0.25 * clouds).astype(np.float32)
    image = _skimage_image(name).astype(np.float32)
    if image.ndim == 3:
        image = image.mean(axis=2)
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return _resize(image, 256)


def _sample_tiled(tex: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Nearest sample of a texture tiled over the plane; s, t in texture periods."""
    h, w = tex.shape
    return tex[np.floor(np.mod(t, 1.0) * h).astype(int) % h, np.floor(np.mod(s, 1.0) * w).astype(int) % w]


def background(scene, width: int, height: int) -> np.ndarray:
    """The static equirectangular background of a scene type.

    The floor (elevation < 0) is a textured plane seen from 1.6 m, fading into
    haze at the horizon; an optional wall band (a cylinder 4 m away) rises
    above the horizon; above it the sky (or a ceiling plane for indoor
    scenes). Up and down therefore differ, and crops anywhere get texture.

    Parameters
    ----------
    scene : scenes.SceneType
    width, height : int
        Frame size W × H.

    Returns
    -------
    np.ndarray, float32, shape (H, W, 3), values in [0, 1]
    """
    col = (np.arange(width) + 0.5) / width
    row = (np.arange(height) + 0.5) / height
    az = np.pi * (1 - 2 * col)[None, :]
    el = (np.pi / 2) * (1 - 2 * row)[:, None]
    x, y, z = np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el) * np.ones_like(az)
    tint_ground, tint_wall, tint_sky = (np.asarray(t, dtype=np.float32) for t in scene.tint)
    out = np.zeros((height, width, 3), dtype=np.float32)

    # floor plane z = −1.6 m; texture period 1.5 m
    below = z < -1e-3
    dist = np.where(below, 1.6 / np.maximum(-z, 1e-3), 0.0)
    floor = _sample_tiled(texture(scene.ground), x * dist / 1.5, y * dist / 1.5)
    haze = np.clip(np.exp(-dist / 25.0), 0, 1)[..., None]
    out = np.where(below[..., None], (floor[..., None] * tint_ground) * haze + 0.6 * tint_ground * (1 - haze), out)

    # wall band on a cylinder of radius 4 m up to 2.5 m above the eye; period 2 m
    wall_top = np.arctan2(2.5, 4.0) if scene.wall else 0.0
    in_wall = (~below) & (el < wall_top) & bool(scene.wall)
    if scene.wall:
        wall = _sample_tiled(texture(scene.wall), az * 4.0 / 2.0, -np.tan(el) * 4.0 / 2.0)
        out = np.where(in_wall[..., None], wall[..., None] * tint_wall, out)

    # sky: ceiling plane 3 m up (indoor) or a dome texture (outdoor)
    above = (~below) & (~in_wall)
    if scene.indoor:
        d = 3.0 / np.maximum(z, 1e-3)
        sky = _sample_tiled(texture(scene.sky), x * d / 2.0, y * d / 2.0)
    else:
        sky = _sample_tiled(texture(scene.sky), az / (2 * np.pi) * 3, (np.pi / 2 - el) / np.pi * 1.5)
        sky = sky * (0.8 + 0.2 * np.sin(np.maximum(el, 0)))  # brighter towards the zenith
    out = np.where(above[..., None], sky[..., None] * tint_sky, out)
    return np.clip(out, 0, 1).astype(np.float32)
