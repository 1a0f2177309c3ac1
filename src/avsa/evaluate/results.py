"""One result format for every evaluation, read by ``avsa report``.

Each evaluation writes ``<run>/eval/<task>.json``::

    {"task": "avsa-binary", "metric": "accuracy", "value": 0.83, "low": 0.80, "high": 0.86,
     "confidence": 0.95, "n": 400, "n_groups": 100, "chance": 0.5,
     "checkpoint": "checkpoints/avsa.pt", "details": {...}}

``low``/``high`` bound the 95% interval (Wilson or a cluster bootstrap over
``n_groups`` groups, see :mod:`avsa.evaluate.intervals`); ``details`` holds
anything task-specific (per-class accuracy, per-crop-kind accuracy, ...).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avsa.errors import InputError
from avsa.train.checkpoint import EVAL_DIR


PERCENT_METRICS = ("accuracy", "accuracy difference")
"""Metrics shown in percent (a difference of accuracies in points); others as they are."""


@dataclass
class Result:
    """One measured figure with its 95% confidence interval."""

    task: str
    value: float
    low: float
    high: float
    n: int
    metric: str = "accuracy"
    confidence: float = 0.95
    n_groups: int | None = None
    chance: float | None = None
    checkpoint: str = ""
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if not (self.low <= self.value <= self.high) and not any(map(math.isnan, (self.low, self.value, self.high))):
            raise InputError(f"result {self.task}: value {self.value} outside its interval [{self.low}, {self.high}]")

    def cell(self, *, percent: bool = True) -> str:
        """``"83.1 [80.2, 85.9]"`` — the value with its interval, for tables."""
        k = 100.0 if percent else 1.0
        return f"{k * self.value:.1f} [{k * self.low:.1f}, {k * self.high:.1f}]"


def result_path(run_dir: str | os.PathLike, task: str) -> Path:
    return Path(run_dir) / EVAL_DIR / f"{task}.json"


def save_result(run_dir: str | os.PathLike, result: Result) -> Path:
    """Write ``<run_dir>/eval/<task>.json`` atomically."""
    path = result_path(run_dir, result.task)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(result), f, indent=1, default=float)
    os.replace(tmp, path)
    return path


def load_results(run_dir: str | os.PathLike) -> dict[str, Result]:
    """Every result of a run folder, by task name."""
    out = {}
    for path in sorted((Path(run_dir) / EVAL_DIR).glob("*.json")):
        try:
            out[path.stem] = Result(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{path}: not an avsa result file ({exc})") from None
    return out
