"""Detections computed elsewhere, read from one file for a whole cache.

Format (JSON or CSV), one row per detection:

========== ==========================================================
clip_id    the cache's clip id (``manifest.csv``)
time_s     seconds from the clip start
azimuth    centre direction, positive to the left (``docs/conventions.md``)
elevation  centre direction, positive up
size       angular width of the object
label      class name
score      confidence in [0, 1] (optional, default 1)
unit       ``rad`` (default) or ``deg``: the unit of azimuth, elevation, size
========== ==========================================================

CSV: a header row with these names (``unit`` optional). JSON: either a list of
row objects or ``{"unit": "deg", "detections": [rows...]}`` (a row's own
``unit`` wins).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from pathlib import Path

from avsa.data.detection.base import Detection
from avsa.errors import InputError, MediaError

REQUIRED = ("clip_id", "time_s", "azimuth", "elevation", "size", "label")


def _row_to_detection(row: dict, *, default_unit: str, where: str) -> tuple[str, Detection]:
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    unit = str(row.get("unit") or default_unit).strip().lower()
    if unit not in ("rad", "deg"):
        raise InputError(f"{where}: unit must be 'rad' or 'deg', got {unit!r}")
    k = math.pi / 180.0 if unit == "deg" else 1.0
    score = row.get("score")
    try:
        values = {name: float(row[name]) * k for name in ("azimuth", "elevation", "size")}
        det = Detection.from_dict(dict(values, label=row["label"], time_s=row["time_s"],
                                       score=1.0 if score in (None, "") else score), where=where)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None
    if not -math.pi / 2 - 1e-9 <= det.elevation <= math.pi / 2 + 1e-9:
        raise InputError(f"{where}: elevation {det.elevation:.3f} rad outside [−π/2, π/2] "
                         "(degrees without unit=deg?)")
    return str(row["clip_id"]), det


class PrecomputedDetections:
    """Detections of many clips loaded from a JSON/CSV file (see module doc).

    Parameters
    ----------
    path : path-like
        ``.json`` or ``.csv``.
    """

    mode = "precomputed"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        rows, default_unit = self._read_rows()
        by_clip: dict[str, list[Detection]] = defaultdict(list)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise MediaError(self.path, f"row {i + 1} is not an object")
            try:
                clip_id, det = _row_to_detection(row, default_unit=default_unit, where=f"row {i + 1}")
            except InputError as exc:
                raise MediaError(self.path, str(exc)) from None
            by_clip[clip_id].append(det)
        self._by_clip = {k: sorted(v, key=lambda d: d.time_s) for k, v in by_clip.items()}

    def _read_rows(self) -> tuple[list, str]:
        suffix = self.path.suffix.lower()
        try:
            if suffix == ".csv":
                with open(self.path, newline="") as f:
                    return list(csv.DictReader(f)), "rad"
            if suffix == ".json":
                doc = json.loads(self.path.read_text())
                if isinstance(doc, list):
                    return doc, "rad"
                if isinstance(doc, dict) and isinstance(doc.get("detections"), list):
                    return doc["detections"], str(doc.get("unit", "rad"))
                raise MediaError(self.path, "expected a list of rows or an object with 'detections'")
        except FileNotFoundError:
            raise MediaError(self.path, "no such file") from None
        except (OSError, ValueError, csv.Error) as exc:
            raise MediaError(self.path, f"unreadable ({exc})") from None
        raise MediaError(self.path, f"unknown format {suffix!r}; expected .json or .csv")

    @property
    def clip_ids(self) -> list[str]:
        return sorted(self._by_clip)

    def for_clip(self, clip_id: str) -> list[Detection]:
        """The detections of one clip (empty when the file has none for it)."""
        return list(self._by_clip.get(clip_id, []))


def write_precomputed_csv(path: str | os.PathLike, rows: list[tuple[str, Detection]]) -> None:
    """Write ``(clip_id, Detection)`` rows in the CSV format above (radians)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(REQUIRED) + ["score", "unit"])
        for clip_id, d in rows:
            w.writerow([clip_id, d.time_s, d.azimuth, d.elevation, d.size, d.label, d.score, "rad"])
