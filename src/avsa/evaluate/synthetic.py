"""Synthetic downstream tasks of the embedded default world.

Deterministic for a seed, generated in memory from the synthetic world's own
building blocks (:mod:`avsa.media.synth`):

- ``synth-foa-scenes``: FOA scene classification. Classes are the synth's scene
  types (street, park, cafe, launchpad, station), which differ in their source
  mixtures, spatial layouts, ambience and reverberation. Each scene is rendered
  for a few seconds and cut into 1-s windows (the clips of one item).
- ``synth-binaural-scenes``: the same scenes rendered to two ears with the
  spherical-head model of :mod:`avsa.evaluate.binaural` (stereo-trained encoders).
- ``synth-video-motion``: video classification of an object's motion in a
  perspective view — static, left, right, up, down, approaching — drawn from the
  synth's photo looks over its backgrounds.

Each task is a :class:`SyntheticTask`: items for :func:`avsa.evaluate.probe.run_probe`
(groups = one rendered scene) and the raw arrays the inputs are made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from avsa.evaluate.datasets.common import Item

AUDIO_TASKS = ("synth-foa-scenes", "synth-binaural-scenes")
VIDEO_TASKS = ("synth-video-motion",)
MOTIONS = ("static", "left", "right", "up", "down", "approaching")


@dataclass
class SyntheticTask:
    """A synthetic classification task held in memory.

    Attributes
    ----------
    name : str
    classes : tuple of str
    train, test : list of Item (``Item.id`` keys ``data``)
    data : dict id → np.ndarray: audio windows (n_clips, C, N) at ``sample_rate``,
        or video clips (n_clips, T, 3, S, S) uint8
    sample_rate : int (audio tasks)
    """

    name: str
    classes: tuple[str, ...]
    train: list[Item]
    test: list[Item]
    data: dict[str, np.ndarray] = field(repr=False)
    sample_rate: int = 24000


def scene_task(*, binaural: bool = False, per_class_train: int = 8, per_class_test: int = 24,
               seconds: int = 3, sample_rate: int = 24000, seed: int = 0) -> SyntheticTask:
    """FOA (or binaural) scene classification over the synth's scene types.

    A few labelled scenes per class (8) train the probe; many (24, 120 in all)
    test it, so that the interval of an accuracy, or of a difference between
    two encoders, is narrow. Every scene is rendered from its own seed.
    """
    from avsa.evaluate.binaural import foa_to_binaural
    from avsa.media.synth.config import SynthConfig
    from avsa.media.synth.render_audio import render_foa
    from avsa.media.synth.scenes import SCENES, sample_layout

    config = SynthConfig(duration_s=float(seconds), width=64, sample_rate=sample_rate)
    train, test, data = [], [], {}
    for label, scene in enumerate(SCENES):
        for k in range(per_class_train + per_class_test):
            scene_seed = seed * 1_000_003 + label * 1009 + k
            foa = render_foa(sample_layout(config, scene_seed, scene=scene), config)  # (4, N)
            audio = foa_to_binaural(foa, sample_rate) if binaural else foa.astype(np.float32)
            windows = audio[:, : seconds * sample_rate].reshape(audio.shape[0], seconds, sample_rate)
            item_id = f"{scene}-{k:03d}"
            data[item_id] = np.ascontiguousarray(windows.transpose(1, 0, 2))  # (seconds, C, N)
            item = Item(id=item_id, label=label, label_name=scene, group=item_id)
            (train if k < per_class_train else test).append(item)
    name = "synth-binaural-scenes" if binaural else "synth-foa-scenes"
    return SyntheticTask(name=name, classes=tuple(SCENES), train=train, test=test, data=data,
                         sample_rate=sample_rate)


def _motion_path(motion: str, t: np.ndarray, az0: float, el0: float, size0: float, speed: float):
    az = np.full_like(t, az0)
    el = np.full_like(t, el0)
    size = np.full_like(t, size0)
    if motion == "left":
        az = az0 + speed * t
    elif motion == "right":
        az = az0 - speed * t
    elif motion == "up":
        el = el0 + speed * t
    elif motion == "down":
        el = el0 - speed * t
    elif motion == "approaching":
        size = size0 * (1 + 2.0 * t / max(t[-1], 1e-9))
    return az, el, size


def motion_task(*, per_class_train: int = 8, per_class_test: int = 4, n_frames: int = 8, fps: float = 16.0,
                crop_size: int = 112, fov: float = math.radians(75), width: int = 256,
                seed: int = 0) -> SyntheticTask:
    """Video classification of object motion in a perspective view (one clip per item)."""
    from avsa.media.synth.looks import background, look
    from avsa.media.synth.render_video import draw_object
    from avsa.media.synth.scenes import CLASSES, SCENES, scene_type
    from avsa.spatial.projection import gnomonic_crop

    height = width // 2
    backgrounds = {s: background(scene_type(s), width, height) for s in SCENES}
    t = np.arange(n_frames) / fps
    speed = math.radians(40)  # rad/s: 20° over 0.5 s
    train, test, data = [], [], {}
    for label, motion in enumerate(MOTIONS):
        for k in range(per_class_train + per_class_test):
            rng = np.random.default_rng([seed, label, k])
            scene = SCENES[int(rng.integers(len(SCENES)))]
            obj = look(CLASSES[int(rng.integers(len(CLASSES)))])
            az0 = float(rng.uniform(-math.pi, math.pi))
            el0 = float(rng.uniform(-0.15, 0.15))
            size0 = float(rng.uniform(0.25, 0.4))
            az, el, size = _motion_path(motion, t, az0, el0, size0, speed)
            frames = np.empty((n_frames, height, width, 3), dtype=np.float32)
            for i in range(n_frames):
                frames[i] = backgrounds[scene]
                draw_object(frames[i], obj, float(az[i]), float(el[i]), float(size[i]))
            equirect = torch.as_tensor((frames * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)
            crops = gnomonic_crop(equirect, az0, el0, fov, crop_size)  # uint8
            item_id = f"{motion}-{k:03d}"
            data[item_id] = crops.numpy()[None]  # (1, T, 3, S, S)
            item = Item(id=item_id, label=label, label_name=motion, group=item_id)
            (train if k < per_class_train else test).append(item)
    return SyntheticTask(name="synth-video-motion", classes=MOTIONS, train=train, test=test, data=data)


def make_task(name: str, *, seed: int = 0, crop_size: int = 112, small: bool = False,
              test_per_class: int | None = None) -> SyntheticTask:
    """One of :data:`AUDIO_TASKS` + :data:`VIDEO_TASKS` by name (``small``: fewer items, for tests).

    ``test_per_class``: test items per class instead of the task's default; more test items narrow the interval
    of a difference between two encoders. The training items stay the same, and the default's test items are
    the first of the larger set.
    """
    sizes = dict(per_class_train=3, per_class_test=2) if small else {}
    if test_per_class is not None:
        if test_per_class < 1:
            raise ValueError(f"test_per_class must be at least 1, got {test_per_class}")
        sizes["per_class_test"] = test_per_class
    if name == "synth-foa-scenes":
        return scene_task(seed=seed, **sizes)
    if name == "synth-binaural-scenes":
        return scene_task(binaural=True, seed=seed, **sizes)
    if name == "synth-video-motion":
        return motion_task(seed=seed, crop_size=crop_size, **sizes)
    raise ValueError(f"unknown synthetic task {name!r}")
