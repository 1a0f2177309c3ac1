"""The localization hit rate on clips with ground truth: does the heatmap peak land on a sounding object?

The heatmap itself is :func:`avsa.inference.localize.alignment_map`; this
module scores it against the synthetic world's ground truth.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from avsa.errors import InputError
from avsa.evaluate.intervals import wilson_interval
from avsa.evaluate.results import Result
from avsa.inference.localize import ScoreFn, alignment_map, peak_direction
from avsa.inference.pretrained import Pretrained
from avsa.spatial import sphere


def localization_hit_rate(p: Pretrained, cache, *, split: str = "test", n_per_clip: int = 2,
                          max_angle: float = math.radians(20), grid: tuple[int, int] = (36, 9), seed: int = 0,
                          score_fn: ScoreFn | None = None, score: str = "spatial") -> Result:
    """How often the heatmap peak lies within ``max_angle`` of a sounding object (synthetic ground truth)."""
    from avsa.media.cache import Cache
    from avsa.media.clips import ClipWindows, windows_for_eval

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    d = p.config.data
    windows = windows_for_eval(cache, split, n_per_clip, seed, window_s=d.window_s, n_frames=d.n_frames, fps=d.fps)
    data = ClipWindows(cache, split=split, window_s=d.window_s, n_frames=d.n_frames, fps=d.fps,
                       sample_rate=d.sample_rate, windows=windows)
    hits, chance = [], []
    for i in range(len(data)):
        item = data[i]
        gt = item.get("groundtruth")
        if gt is None:
            continue
        sounding = [o for o in gt.at(d.window_s / 2) if o.sounding]
        if not sounding:
            continue
        scores, az, el = alignment_map(p, item["frames"], item["audio"], grid=grid, score_fn=score_fn, score=score)
        pa, pe = peak_direction(scores, az, el)
        dist = min(float(sphere.angular_distance(pa, pe, o.azimuth, o.elevation)) for o in sounding)
        hits.append(dist <= max_angle)
        # chance: a peak drawn uniformly from the grid hits when its cell is near a sounding object
        near = torch.zeros(az.shape, dtype=torch.bool)
        for o in sounding:
            near |= sphere.angular_distance(az, el, o.azimuth, o.elevation) <= max_angle
        chance.append(float(near.float().mean()))
    if not hits:
        raise InputError(f"{cache.root}: no windows with ground truth in split {split!r}")
    ci = wilson_interval(int(sum(hits)), len(hits))
    return Result(task="localization", value=float(ci.estimate), low=float(ci.low), high=float(ci.high),
                  n=len(hits), checkpoint=p.checkpoint, chance=float(np.mean(chance)),
                  details={"max_angle_deg": math.degrees(max_angle), "grid": list(grid), "score": score})
