"""Ground truth of the synthetic world: where every object is, frame by frame.

One JSON file per video, ``<stem>.json`` beside ``<stem>.mp4`` (format in
``docs/interfaces.md``)::

    {"version": 1, "seed": 7, "scene": "street", "fps": 16.0, "duration_s": 10.0,
     "width": 512, "height": 256, "sample_rate": 24000,
     "audio_convention": "ambix", "video_projection": "equirectangular",
     "frame_times_s": [0.0, 0.0625, ...],
     "objects": [{"id": 0, "label": "cat", "sounding": true, "size": 0.52,
                  "azimuth": [...], "elevation": [...]}]}

Angles are radians in the frame of ``docs/conventions.md`` (azimuth positive to the
left, elevation up); ``size`` is the object's angular width in radians.
An object may carry ``"active": [true, false, ...]`` (one flag per frame):
it is present only in the frames marked true (labelled sound events of real
recordings, :mod:`avsa.media.starss23`); without it an object is present in
every frame.
``width``/``height`` are those of the equirectangular rendering (when
``video_projection`` is ``"cubemap"`` the file holds its equi-angular cubemap).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from avsa.errors import InputError, MediaError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ObjectState:
    """One object at one instant.

    Attributes
    ----------
    id : int
        The object's id within its video.
    label : str
        Its class ("cat", "person", ...).
    sounding : bool
        Whether it emits sound (False for silent distractors).
    azimuth, elevation : float
        Its centre direction, radians.
    size : float
        Its angular width, radians.
    """

    id: int
    label: str
    sounding: bool
    azimuth: float
    elevation: float
    size: float


@dataclass
class ObjectTrack:
    """One object over the whole video.

    Attributes
    ----------
    id : int
    label : str
    sounding : bool
    size : float
        Angular width, radians.
    azimuth, elevation : np.ndarray, float64, shape (T,)
        Centre direction per frame, radians (azimuth wrapped to (−π, π]).
    active : np.ndarray of bool, shape (T,), or None
        Frames in which the object is present (None: all of them).
    """

    id: int
    label: str
    sounding: bool
    size: float
    azimuth: np.ndarray
    elevation: np.ndarray
    active: np.ndarray | None = None

    def to_dict(self) -> dict:
        out = {
            "id": int(self.id),
            "label": self.label,
            "sounding": bool(self.sounding),
            "size": float(self.size),
            "azimuth": [float(a) for a in self.azimuth],
            "elevation": [float(e) for e in self.elevation],
        }
        if self.active is not None:
            out["active"] = [bool(a) for a in self.active]
        return out


@dataclass
class GroundTruth:
    """Every object of one synthetic video, per frame (see module docstring)."""

    seed: int
    scene: str
    fps: float
    duration_s: float
    width: int
    height: int
    sample_rate: int
    frame_times_s: np.ndarray
    objects: list[ObjectTrack] = field(default_factory=list)
    audio_convention: str = "ambix"
    video_projection: str = "equirectangular"
    version: int = FORMAT_VERSION

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "seed": int(self.seed),
            "scene": self.scene,
            "fps": float(self.fps),
            "duration_s": float(self.duration_s),
            "width": int(self.width),
            "height": int(self.height),
            "sample_rate": int(self.sample_rate),
            "audio_convention": self.audio_convention,
            "video_projection": self.video_projection,
            "frame_times_s": [float(t) for t in self.frame_times_s],
            "objects": [o.to_dict() for o in self.objects],
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the ground truth as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> "GroundTruth":
        """Build from the JSON structure; raises MediaError naming ``source``."""
        try:
            version = int(data["version"])
            if version != FORMAT_VERSION:
                raise MediaError(source, f"ground-truth version {version} is not {FORMAT_VERSION}")
            times = np.asarray(data["frame_times_s"], dtype=np.float64)
            objects = []
            for o in data["objects"]:
                az = np.asarray(o["azimuth"], dtype=np.float64)
                el = np.asarray(o["elevation"], dtype=np.float64)
                if az.shape != times.shape or el.shape != times.shape:
                    raise MediaError(
                        source,
                        f"object {o['id']} has {az.size} azimuths / {el.size} elevations "
                        f"for {times.size} frames",
                    )
                active = None
                if "active" in o:
                    active = np.asarray(o["active"], dtype=bool)
                    if active.shape != times.shape:
                        raise MediaError(source, f"object {o['id']} has {active.size} active flags "
                                                 f"for {times.size} frames")
                objects.append(
                    ObjectTrack(int(o["id"]), str(o["label"]), bool(o["sounding"]),
                                float(o["size"]), az, el, active)
                )
            return cls(
                seed=int(data["seed"]), scene=str(data["scene"]), fps=float(data["fps"]),
                duration_s=float(data["duration_s"]), width=int(data["width"]),
                height=int(data["height"]), sample_rate=int(data["sample_rate"]),
                frame_times_s=times, objects=objects,
                audio_convention=str(data["audio_convention"]),
                video_projection=str(data["video_projection"]), version=version,
            )
        except KeyError as exc:
            raise MediaError(source, f"not an avsa ground-truth file (no {exc.args[0]!r} key; the format is in "
                                     "docs/interfaces.md)") from exc
        except (TypeError, ValueError) as exc:
            raise MediaError(source, f"not a valid ground-truth file ({exc!r})") from exc

    # -- queries -----------------------------------------------------------
    def slice(self, start_s: float, duration_s: float) -> "GroundTruth":
        """The part of the video in ``[start_s, start_s + duration_s)``.

        Frame times are re-based so the window starts at 0; objects keep
        their ids. Raises InputError for a window outside the video.
        """
        if duration_s <= 0 or start_s < 0 or start_s >= self.duration_s:
            raise InputError(
                f"window start {start_s} s, duration {duration_s} s is outside the "
                f"{self.duration_s} s video"
            )
        eps = 1e-9
        keep = (self.frame_times_s >= start_s - eps) & (
            self.frame_times_s < start_s + duration_s - eps
        )
        objects = [
            replace(o, azimuth=o.azimuth[keep].copy(), elevation=o.elevation[keep].copy(),
                    active=None if o.active is None else o.active[keep].copy())
            for o in self.objects
        ]
        return replace(
            self,
            frame_times_s=self.frame_times_s[keep] - start_s,
            duration_s=float(min(duration_s, self.duration_s - start_s)),
            objects=objects,
        )

    def at(self, time_s: float) -> list[ObjectState]:
        """Every object's state at ``time_s`` (seconds, video time).

        Directions are interpolated linearly between frames (azimuth across the
        seam the short way); before the first / after the last frame the
        nearest frame holds. An object with ``active`` flags is left out unless
        the frame holding ``time_s`` (the last frame starting at or before it)
        is active. Raises InputError outside ``[0, duration_s]``.
        """
        times = self.frame_times_s
        if not (-1e-9 <= time_s <= self.duration_s + 1e-9) or times.size == 0:
            raise InputError(f"time {time_s} s is outside the {self.duration_s} s video")
        frame = max(int(np.searchsorted(times, time_s + 1e-9, side="right")) - 1, 0)
        states = []
        for o in self.objects:
            if o.active is not None and not o.active[frame]:
                continue
            az = float(np.interp(time_s, times, np.unwrap(o.azimuth)))
            el = float(np.interp(time_s, times, o.elevation))
            az = math.pi - (math.pi - az) % (2 * math.pi)  # wrap to (−π, π]
            states.append(ObjectState(o.id, o.label, o.sounding, az, el, o.size))
        return states


def load(path: str | os.PathLike) -> GroundTruth:
    """Read a ground-truth JSON file; raises MediaError if it is unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MediaError(path, f"cannot read ground truth ({exc})") from exc
    return GroundTruth.from_dict(data, source=os.fspath(path))
