"""Scene types and the random layout of one synthetic video (with ground truth).

A *scene* (street, park, cafe, launchpad, station) fixes which object classes
are likely, where objects sit in elevation, what the background and the
ambience look/sound like and how reverberant the place is. The downstream
synthetic scene-classification task reuses these types: :data:`SCENES` is the
ordered list of classes.

Object classes (:data:`CLASSES`) each have a look (``looks.py``, real photos
bundled with scikit-image) and a sound (``sounds.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avsa.errors import InputError
from avsa.media.groundtruth import ObjectTrack
from avsa.media.synth.config import SynthConfig
from avsa.spatial.pixels import unit_vectors

CLASSES = ("person", "cat", "cup", "motorcycle", "rocket", "clock", "horse")


@dataclass(frozen=True)
class SceneType:
    """What characterises one scene class.

    Attributes
    ----------
    name : str
    class_weights : dict[str, float]
        Relative chance of each object class (classes not named never appear
        as sounding objects; distractors may come from any class).
    elevation_range : tuple of float
        Object centre elevations, radians (min, max).
    ground, wall, sky : str
        Background textures (``looks.TEXTURES``) of the floor, a band of wall
        above the horizon ("" for none) and the sky/ceiling.
    tint : tuple of float
        RGB multipliers (ground, wall, sky) as three 3-tuples.
    indoor : bool
        Ceiling instead of open sky.
    ambience_slope_db : float
        Spectral slope of the ambience noise, dB per octave (−3 pink, −6 brown).
    ambience_hum_hz : float
        A mains/engine hum in the ambience (0 for none).
    rt60_scale : float
        Multiplies ``SynthConfig.rt60_s``.
    """

    name: str
    class_weights: dict
    elevation_range: tuple
    ground: str
    wall: str
    sky: str
    tint: tuple
    indoor: bool
    ambience_slope_db: float
    ambience_hum_hz: float
    rt60_scale: float


SCENE_TYPES: dict[str, SceneType] = {
    s.name: s
    for s in (
        SceneType("street", {"motorcycle": 3, "person": 2, "horse": 1, "clock": 1},
                  (-0.25, 0.35), "gravel", "brick", "sky",
                  ((0.8, 0.8, 0.85), (1.0, 0.65, 0.5), (0.55, 0.7, 1.0)), False, -6.0, 0.0, 1.0),
        SceneType("park", {"cat": 2, "person": 2, "horse": 2, "cup": 1},
                  (-0.3, 0.25), "grass", "", "sky",
                  ((0.55, 1.0, 0.45), (1, 1, 1), (0.5, 0.75, 1.0)), False, -3.0, 0.0, 0.4),
        SceneType("cafe", {"cup": 3, "person": 2, "cat": 1, "clock": 2},
                  (-0.35, 0.2), "brick", "gravel", "gravel",
                  ((0.9, 0.6, 0.4), (1.0, 0.9, 0.7), (0.95, 0.95, 0.9)), True, -4.5, 0.0, 1.8),
        SceneType("launchpad", {"rocket": 3, "person": 1, "motorcycle": 1},
                  (-0.2, 0.5), "moon", "", "hubble_deep_field",
                  ((0.85, 0.8, 0.7), (1, 1, 1), (1.0, 1.0, 1.0)), False, -7.5, 0.0, 0.6),
        SceneType("station", {"clock": 2, "person": 3, "cup": 1, "motorcycle": 1},
                  (-0.25, 0.4), "gravel", "brick", "moon",
                  ((0.7, 0.7, 0.7), (0.8, 0.8, 0.9), (0.9, 0.9, 1.0)), True, -3.0, 50.0, 2.2),
    )
}
SCENES = tuple(SCENE_TYPES)

_MIN_GAP = 0.12  # radians of empty sky kept between object rims
_MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene: its class, look variant, size and path.

    Attributes
    ----------
    id : int
    label : str
        One of :data:`CLASSES`.
    sounding : bool
    variant : int
        Which photo of the class (``looks.look``) to use.
    size : float
        Angular width, radians.
    azimuth, elevation : np.ndarray, float64, shape (T,)
        Centre direction per video frame, radians (azimuth in (−π, π]).
    seed : int
        Seed of the object's own sound/look randomness.
    """

    id: int
    label: str
    sounding: bool
    variant: int
    size: float
    azimuth: np.ndarray
    elevation: np.ndarray
    seed: int

    def track(self) -> ObjectTrack:
        """The object's ground-truth track."""
        return ObjectTrack(self.id, self.label, self.sounding, self.size,
                           self.azimuth.copy(), self.elevation.copy())


@dataclass(frozen=True)
class SceneLayout:
    """Everything random about one video, drawn from a seed.

    Attributes
    ----------
    scene : SceneType
    seed : int
    objects : list of ObjectSpec
        Sounding objects first, then distractors.
    frame_times_s : np.ndarray, shape (T,)
    """

    scene: SceneType
    seed: int
    objects: list
    frame_times_s: np.ndarray


def scene_type(name: str) -> SceneType:
    """Look a scene type up by name; InputError for an unknown one."""
    if name not in SCENE_TYPES:
        raise InputError(f"unknown scene {name!r}; expected one of {SCENES}")
    return SCENE_TYPES[name]


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.pi - np.mod(np.pi - angle, 2 * np.pi)


def _path(rng: np.random.Generator, times: np.ndarray, elevation_range: tuple,
          moving: bool) -> tuple[np.ndarray, np.ndarray]:
    """A static or smoothly moving direction per frame, radians."""
    lo, hi = elevation_range
    az0 = rng.uniform(-np.pi, np.pi)
    el0 = rng.uniform(lo, hi)
    if not moving:
        return np.full(times.shape, az0), np.full(times.shape, el0)
    # sum of a slow drift and a sinusoid in azimuth, a gentle bob in elevation
    speed = rng.uniform(0.1, 0.35) * rng.choice([-1.0, 1.0])  # rad/s
    amp = rng.uniform(0.2, 0.6)
    period = rng.uniform(3.0, 8.0)
    phase = rng.uniform(0, 2 * np.pi)
    az = az0 + speed * (times - times.mean()) + amp * np.sin(2 * np.pi * times / period + phase)
    el_amp = rng.uniform(0.03, 0.12)
    el = el0 + el_amp * np.sin(2 * np.pi * times / rng.uniform(2.5, 6.0) + rng.uniform(0, 2 * np.pi))
    return _wrap(az), np.clip(el, lo - 0.1, hi + 0.1)


def _separation(a: ObjectSpec, b: ObjectSpec) -> float:
    """Smallest angle between the centres of two objects over the video."""
    da = unit_vectors(a.azimuth, a.elevation, axis=0)
    db = unit_vectors(b.azimuth, b.elevation, axis=0)
    return float(np.arccos(np.clip((da * db).sum(0), -1, 1)).min())


def sample_layout(config: SynthConfig, seed: int, *, scene: str | None = None) -> SceneLayout:
    """Draw the objects and paths of one video.

    Parameters
    ----------
    config : SynthConfig
    seed : int
        Everything random follows from it (same seed → same layout).
    scene : str, optional
        A name from :data:`SCENES`; drawn from the seed when omitted.

    Returns
    -------
    SceneLayout
        1–4 sounding objects of distinct classes and up to
        ``config.max_distractors`` silent ones, no two overlapping at any frame.
    """
    from avsa.media.synth.looks import n_variants  # the look pool per class

    rng = np.random.default_rng([seed, 0x5CE4E])
    kind = scene_type(scene) if scene is not None else SCENE_TYPES[SCENES[rng.integers(len(SCENES))]]
    times = np.arange(config.n_frames) / config.fps
    n_sources = int(rng.integers(config.min_sources, config.max_sources + 1))
    n_distractors = int(rng.integers(0, config.max_distractors + 1))

    names = list(kind.class_weights)
    weights = np.array([kind.class_weights[n] for n in names], dtype=float)
    sounding = list(rng.choice(names, size=min(n_sources, len(names)), replace=False,
                               p=weights / weights.sum()))
    others = [c for c in CLASSES if c not in sounding]
    rng.shuffle(others)
    sounding += others[: n_sources - len(sounding)]
    silent_pool = [c for c in CLASSES if c not in sounding]
    distractors = list(rng.choice(silent_pool, size=n_distractors, replace=True)) if n_distractors else []

    objects: list[ObjectSpec] = []
    lo, hi = config.size_range
    for label, is_sounding in ([(c, True) for c in sounding] + [(c, False) for c in distractors]):
        for _ in range(_MAX_ATTEMPTS):
            size = float(rng.uniform(lo, hi))
            az, el = _path(rng, times, kind.elevation_range, rng.random() < config.moving_probability)
            candidate = ObjectSpec(len(objects), str(label), is_sounding, int(rng.integers(n_variants(str(label)))),
                                   size, az, el, int(rng.integers(2**31)))
            if all(_separation(candidate, o) > (candidate.size + o.size) * 0.75 + _MIN_GAP
                   for o in objects):
                objects.append(candidate)
                break
        # else: the sky is too crowded for this object; it is left out
    return SceneLayout(kind, seed, objects, times)


def scene_index(name: str) -> int:
    """Index of a scene class in :data:`SCENES` (the label of scene classification)."""
    return SCENES.index(scene_type(name).name)


# ------------------------------------------------------- a world of many videos

def video_seed(base_seed: int, index: int) -> int:
    """Seed of video ``index`` of a world with ``base_seed`` (independent streams)."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def world_scene(index: int) -> str:
    """Scene class of video ``index`` of a world: the classes cycle, so they stay balanced."""
    return SCENES[index % len(SCENES)]


def world_split(index: int) -> str:
    """``"train"`` or ``"test"``: the split of video ``index`` of a world.

    Videos come in blocks of ``len(SCENES)`` consecutive indices, one of each
    scene (:func:`world_scene`). One video of every block is a test video, and
    the test scene rotates from block to block (the last scene in block 0, the
    one before it in block 1, …). So about a fifth of the videos are test
    videos, every scene is in both splits once the world has
    ``len(SCENES) ** 2`` videos (two of them from 10 videos on), and no test
    clip comes from a video that training sees.
    """
    if index < 0:
        raise InputError(f"video index must be >= 0, got {index}")
    n = len(SCENES)
    block, position = divmod(index, n)
    return "test" if position == (n - 1 - block) % n else "train"
