"""``avsa evaluate RUN --task starss23 --root ROOT``: does the model localize real, labelled sounds?

For every recording of a STARSS23 folder (:mod:`avsa.media.starss23`) the
evaluation picks up to ``windows_per_file`` windows (of the model's length)
whose middle 100-ms frame holds at least one labelled event, evenly spread
over those frames. For each window the audio-visual heatmap of the
checkpoint (:func:`avsa.inference.localize.alignment_map`) is computed and its
peak compared with the labelled directions of the events active in the middle
frame:

* **hit rate**: the peak lies within ``max_angle`` (20°) of an active event;
  chance = the mean fraction of grid directions within 20° of one (a peak
  drawn uniformly from the grid);
* **median angular error**: of the peak to the nearest active event; chance =
  the median over windows of the median distance from the grid directions to
  the nearest active event.

Both are reported per split folder (``dev-test-sony`` …), as results
``starss23-hit-<split>`` (95 % interval: cluster bootstrap over recordings)
and ``starss23-error-<split>`` (degrees; interval: bootstrap over recordings
of the median).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avsa.errors import AvsaError, InputError
from avsa.evaluate.intervals import accuracy_interval
from avsa.inference.localize import ScoreFn, alignment_map, peak_direction
from avsa.inference.pretrained import Pretrained
from avsa.evaluate.results import Result
from avsa.media import starss23
from avsa.media.sources import starss23_sources
from avsa.spatial import sphere

TASK = "starss23"
MAX_ANGLE = math.radians(20.0)


@dataclass(frozen=True)
class WindowScore:
    """One evaluated window: the recording, the peak's error and the chance levels (radians / fraction)."""

    recording: str
    time_s: float
    error: float
    hit: bool
    chance_hit: float
    chance_error: float


def event_windows(gt, *, window_s: float, n_windows: int) -> list[float]:
    """Window starts (s) whose middle frame has an active event, at most ``n_windows``, evenly spread.

    Windows must fit inside the recording (``gt.duration_s``).
    """
    middles = []
    for k, t in enumerate(gt.frame_times_s):
        middle = float(t) + starss23.FRAME_S / 2
        start = middle - window_s / 2
        if start >= 0 and start + window_s <= gt.duration_s + 1e-9 and gt.at(middle):
            middles.append(start)
    if len(middles) <= n_windows:
        return middles
    picks = np.linspace(0, len(middles) - 1, n_windows).round().astype(int)
    return [middles[i] for i in sorted(set(picks.tolist()))]


def score_window(scores: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor, events,
                 *, max_angle: float = MAX_ANGLE) -> tuple[float, bool, float, float]:
    """(error, hit, chance hit, chance error) of one heatmap against the active ``events`` (ObjectStates)."""
    pa, pe = peak_direction(scores, azimuth, elevation)
    error = min(float(sphere.angular_distance(pa, pe, o.azimuth, o.elevation)) for o in events)
    grid_error = torch.stack([sphere.angular_distance(azimuth, elevation, o.azimuth, o.elevation)
                              for o in events]).amin(0)
    return error, error <= max_angle, float((grid_error <= max_angle).float().mean()), float(grid_error.median())


def _median_interval(values: np.ndarray, groups: np.ndarray, *, n_boot: int = 2000, seed: int = 0):
    """Percentile bootstrap (95 %) of the median, resampling whole groups."""
    names = np.unique(groups)
    members = [values[groups == g] for g in names]
    rng = np.random.default_rng(seed)
    boots = [np.median(np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))]))
             for _ in range(n_boot)]
    return float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def evaluate_localization(p: Pretrained, root: str | os.PathLike, *, windows_per_file: int = 8,
                          grid: tuple[int, int] = (36, 9), max_angle: float = MAX_ANGLE, width: int = 512,
                          score: str = "spatial", score_fn: ScoreFn | None = None) -> list[Result]:
    """Hit rate and median angular error of the heatmap peak, per split folder of a STARSS23 ``root``.

    Parameters
    ----------
    p : Pretrained
    root : path
        STARSS23 folder (``foa_dev/``, ``video_dev/``, ``metadata_dev/``).
    windows_per_file : int
        Windows scored per recording.
    grid, score, score_fn
        As in :func:`avsa.inference.localize.alignment_map`.
    max_angle : float
        Hit threshold, radians.
    width : int
        Frames are read as W × W/2 equirect.

    Returns
    -------
    list of Result
        ``starss23-hit-<split>`` and ``starss23-error-<split>`` for each split folder with labelled windows.
        A recording that cannot be read is skipped and listed in ``details["skipped"]``.
    """
    from avsa.media import io

    root = Path(root)
    if not starss23.is_layout(root):
        raise InputError(f"--root {root}: not a STARSS23 folder (needs {starss23.AUDIO_DIR}/ and "
                         f"{starss23.VIDEO_DIR}/)")
    d = p.config.data
    by_split: dict[str, list[WindowScore]] = {}
    skipped: dict[str, list[dict]] = {}
    for source in starss23_sources(root, {}):
        folder = source.video.parent.name
        if source.groundtruth is None:
            continue
        try:
            durations = [d for d in (io.probe(source.audio).duration_s, io.probe(source.video).duration_s) if d]
            gt = starss23.load_groundtruth(source.groundtruth, duration_s=min(durations) if durations else None)
            for start in event_windows(gt, window_s=d.window_s, n_windows=windows_per_file):
                middle = start + d.window_s / 2
                frame_start = max(middle - d.n_frames / d.fps / 2, 0.0)
                frames = io.read_frames(source.video, start_s=frame_start, duration_s=d.n_frames / d.fps,
                                        fps=d.fps, size=(width, width // 2))[:d.n_frames]
                foa = io.read_audio(source.audio, start_s=start, duration_s=d.window_s,
                                    sample_rate=d.sample_rate, layout="ambix")
                scores, az, el = alignment_map(p, torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2),
                                               torch.as_tensor(foa), grid=grid, score=score, score_fn=score_fn)
                error, hit, chance_hit, chance_error = score_window(scores, az, el, gt.at(middle),
                                                                    max_angle=max_angle)
                by_split.setdefault(folder, []).append(
                    WindowScore(source.name, middle, error, hit, chance_hit, chance_error))
        except AvsaError as exc:
            skipped.setdefault(folder, []).append({"item": source.name, "problem": str(exc)})
    if not by_split:
        raise InputError(f"--root {root}: no recording with labelled events could be scored")
    results = []
    for folder, windows in sorted(by_split.items()):
        groups = np.array([w.recording for w in windows])
        hits = np.array([w.hit for w in windows], dtype=float)
        errors = np.degrees([w.error for w in windows])
        details = {"split": folder, "recordings": int(np.unique(groups).size), "grid": list(grid),
                   "max_angle_deg": math.degrees(max_angle), "score": score, "skipped": skipped.get(folder, [])}
        ci = accuracy_interval(hits, groups=groups)
        results.append(Result(task=f"{TASK}-hit-{folder}", value=float(ci.estimate), low=float(ci.low),
                              high=float(ci.high), n=len(windows), n_groups=int(np.unique(groups).size),
                              chance=float(np.mean([w.chance_hit for w in windows])), checkpoint=p.checkpoint,
                              details=details))
        median = float(np.median(errors))
        low, high = _median_interval(errors, groups)
        results.append(Result(task=f"{TASK}-error-{folder}", value=median, low=min(low, median),
                              high=max(high, median), n=len(windows), metric="median_error_deg",
                              n_groups=int(np.unique(groups).size),
                              chance=float(np.degrees(np.median([w.chance_error for w in windows]))),
                              checkpoint=p.checkpoint, details=details))
    return results


# ------------------------------------------------------------------ SELD with the frozen audio encoder

DCASE2024_FOA_BASELINE = {
    "f_score": 0.131, "doa_error_deg": 36.9,
    "what": "DCASE 2024 task 3 baseline, audio-only FOA + multi-ACCDOA, on the STARSS23 development test split, "
            "as published by the challenge (frame-level F at 20° with a relative distance threshold of 1) - "
            "NOT measured here",
}
"""The external reference row printed next to the SELD results."""
ACTIVITY_THRESHOLD = 0.5
"""An ACCDOA vector longer than this is an active event."""


def frame_embeddings(p: Pretrained, foa: np.ndarray, n_frames: int, *, batch_size: int = 64) -> np.ndarray:
    """(n_frames, dim): the frozen audio embedding of the 1-s window centred on each 100-ms label frame.

    ``foa`` is ambiX (4, N) at the model's rate; windows reaching past either end are zero-padded.
    Windows are embedded ``batch_size`` at a time, so a long recording never holds all its features.
    """
    rate = p.sample_rate
    half = rate // 2
    padded = np.pad(np.asarray(foa, dtype=np.float32), ((0, 0), (half, half)))
    middles = ((np.arange(n_frames) + 0.5) * starss23.FRAME_S * rate).astype(int)
    out = []
    for first in range(0, n_frames, batch_size):
        windows = np.stack([padded[:, m:m + 2 * half] for m in middles[first:first + batch_size]])
        _, emb = p.encode(None, p.foa_input(torch.as_tensor(windows)), batch_size=batch_size)
        out.append(emb.cpu().numpy())
    return np.concatenate(out)


def accdoa_targets(rows, n_frames: int, n_classes: int = len(starss23.CLASSES)) -> np.ndarray:
    """(n_frames, n_classes, 3) ACCDOA targets: the unit direction of an active class, zero otherwise.

    Two events of one class in one frame (which single-track ACCDOA cannot hold) keep the first.
    """
    from avsa.evaluate.seld_metrics import unit_vector

    y = np.zeros((n_frames, n_classes, 3), np.float32)
    for row in rows:
        if row.frame < n_frames and not y[row.frame, row.cls].any():
            y[row.frame, row.cls] = unit_vector(row.azimuth_deg, row.elevation_deg)
    return y


def train_head(x: np.ndarray, y: np.ndarray, *, epochs: int = 50, lr: float = 1e-3, batch_size: int = 256,
               seed: int = 0) -> torch.nn.Module:
    """A linear ACCDOA head (dim → classes × 3, tanh) fitted by mean squared error on frames ``x`` → ``y``."""
    torch.manual_seed(seed)
    n_classes = y.shape[1]
    head = torch.nn.Sequential(torch.nn.Linear(x.shape[1], n_classes * 3), torch.nn.Tanh())
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32).flatten(1)
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-6)
    head.register_buffer("mean", mean)
    head.register_buffer("std", std)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(max(int(epochs), 0)):
        for batch in torch.randperm(len(xt), generator=generator).split(batch_size):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(head((xt[batch] - mean) / std), yt[batch])
            loss.backward()
            optimiser.step()
    return head.eval()


@torch.no_grad()
def predict_rows(head: torch.nn.Module, x: np.ndarray, *, threshold: float = ACTIVITY_THRESHOLD) -> list[tuple]:
    """Rows ``(frame, class, 0, azimuth°, elevation°)`` of the frames' active ACCDOA vectors."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = head((xt - head.mean) / head.std).reshape(len(xt), -1, 3).numpy()
    rows = []
    for frame, cls in zip(*np.nonzero(np.linalg.norm(out, axis=-1) > threshold)):
        vx, vy, vz = out[frame, cls]
        rows.append((int(frame), int(cls), 0, math.degrees(math.atan2(vy, vx)),
                     math.degrees(math.atan2(vz, math.hypot(vx, vy)))))
    return rows


def _jackknife(files, make, key: str) -> tuple[float, float]:
    """95 % jackknife interval (over files, as the DCASE tools) of one score; NaN with fewer than 3 files."""
    from scipy import stats as scipy_stats

    n = len(files)
    if n < 3:
        return math.nan, math.nan
    full = getattr(make(files), key)
    partial = np.array([getattr(make(files[:i] + files[i + 1:]), key) for i in range(n)])
    bias = (n - 1) * (np.nanmean(partial) - full)
    spread = math.sqrt((n - 1) * np.nanmean((partial - np.nanmean(partial)) ** 2))
    t = scipy_stats.t.ppf(0.975, n - 1)
    estimate = full - bias
    return float(min(estimate - t * spread, full)), float(max(estimate + t * spread, full))


def evaluate_seld(p: Pretrained, root: str | os.PathLike, *, epochs: int = 50, seed: int = 0,
                  threshold: float = ACTIVITY_THRESHOLD) -> list[Result]:
    """SELD with the checkpoint's frozen audio encoder and a linear single-track ACCDOA head.

    The head is trained on the frames of the ``train`` splits (``dev-train-*``) and scored on the
    ``test`` splits with :mod:`avsa.evaluate.seld_metrics`, segment-level and frame-level.

    Returns
    -------
    list of Result
        ``starss23-seld-{segment,frame}-{f,doa,recall}`` (F and recall as fractions, DOA error in
        degrees), intervals by jackknife over test recordings (NaN with fewer than 3). Each result's
        details carry :data:`DCASE2024_FOA_BASELINE` as ``reference`` and the recordings that could not be
        read (a bad label file, audio that does not decode) as ``skipped`` (each also warned about).
    """
    from avsa.evaluate.seld_metrics import FrameSeldMetrics, SegmentSeldMetrics
    from avsa.media import io

    root = Path(root)
    if not starss23.is_layout(root):
        raise InputError(f"--root {root}: not a STARSS23 folder (needs {starss23.AUDIO_DIR}/ and "
                         f"{starss23.VIDEO_DIR}/)")
    data = {"train": [], "test": []}
    skipped: list[dict] = []
    for source in starss23_sources(root, {}):
        if source.groundtruth is None:
            continue
        try:  # one bad recording or label file is listed and skipped, not the end of the evaluation
            info = io.probe(source.audio)
            rows = starss23.read_labels(source.groundtruth)
            n_frames = max(int(math.ceil((info.duration_s or 0) / starss23.FRAME_S - 1e-9)), 1)
            audio = io.read_audio(source.audio, layout="ambix", sample_rate=p.sample_rate)
        except AvsaError as exc:
            warnings.warn(f"SELD: skipped {source.name}: {exc}", stacklevel=2)
            skipped.append({"item": source.name, "problem": str(exc)})
            continue
        x = frame_embeddings(p, audio, n_frames)
        data[source.split].append((source.name, x, rows, n_frames))
    if not data["train"] or not data["test"]:
        raise InputError(f"--root {root}: SELD needs labelled recordings in a dev-train-* and a dev-test-* split "
                         f"(found {len(data['train'])} and {len(data['test'])})")
    x = np.concatenate([d[1] for d in data["train"]])
    y = np.concatenate([accdoa_targets(d[2], d[3]) for d in data["train"]])
    head = train_head(x, y, epochs=epochs, seed=seed)
    files = [(predict_rows(head, xt, threshold=threshold),
              [(r.frame, r.cls, r.source, r.azimuth_deg, r.elevation_deg) for r in rows])
             for _, xt, rows, _ in data["test"]]
    results = []
    for granularity, metric_class in (("segment", SegmentSeldMetrics), ("frame", FrameSeldMetrics)):
        def make(chosen, metric_class=metric_class):
            m = metric_class(len(starss23.CLASSES))
            for predictions, references in chosen:
                m.update(predictions, references)
            return m.scores(class_names=list(starss23.CLASSES))

        scores = make(files)
        details = {"granularity": granularity, "head": "linear single-track ACCDOA on the frozen audio encoder",
                   "train_frames": int(len(x)), "test_recordings": len(files), "epochs": epochs,
                   "error_rate": scores.error_rate, "seld_score": scores.seld_score,
                   "per_class": scores.per_class, "reference": DCASE2024_FOA_BASELINE, "skipped": skipped}
        for short, key, metric in (("f", "f_score", "f_score"), ("doa", "doa_error_deg", "doa_error_deg"),
                                   ("recall", "recall", "recall")):
            value = getattr(scores, key)
            low, high = _jackknife(files, make, key)
            results.append(Result(task=f"{TASK}-seld-{granularity}-{short}", value=float(value), low=low, high=high,
                                  n=len(files), metric=metric, checkpoint=p.checkpoint, details=details))
    return results
