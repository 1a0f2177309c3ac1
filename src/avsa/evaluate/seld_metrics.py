"""SELD metrics as the DCASE 2024 task-3 baseline computes them.

Sound event localization and detection (SELD) is scored jointly: a detection
counts as correct only when its direction is close enough. The baseline
(Mesaros et al., WASPAA 2019, with the multi-instance extension of Politis et
al., TASLP 2020) offers two granularities, both macro-averaged over classes:
:class:`SegmentSeldMetrics` over 1-s segments (the scoring of the 2019–2023
challenges, the baseline's ``segment_based_metrics`` option) and
:class:`FrameSeldMetrics` per 100-ms frame (the 2024 challenge's default,
there with a distance threshold as well, which this project does not score).
Both were checked against the baseline's own implementation on random
multi-source cases. Write-up in ``docs/real-data.md``.

Labels and predictions are rows ``(frame, class, track, azimuth, elevation)``:
frames of 100 ms, class indices, a track (source) index, angles in **degrees**
(azimuth counter-clockwise from the front, elevation up). Segment-level
scoring, per file:

1. **Segments.** Frames ``0 … n_frames − 1`` are grouped into segments of
   ``frames_per_segment`` (10: one second). Within a segment, each class keeps
   the frames where it is active and, per frame, its directions in the order
   of the rows.
2. **Counting per segment and class.** ``R`` = the largest number of
   reference directions of the class in one frame of the segment, ``P`` the
   same for the predictions. ``N_ref += R``.

   * Reference only: ``FN += R``. Prediction only: ``FP += P``.
   * Both: in every frame where both are active, reference and predicted
     directions are matched by the Hungarian algorithm on their angular
     distance; a reference *position* (first, second … direction of the
     frame) collects the distances of its matches over the segment. If no
     frame has both, the class is missed: ``FN += P`` (sic — the baseline
     counts the predicted number here). Otherwise each reference position with
     matches is one localized detection: its mean distance ``d`` adds to the
     class's total DOA error and ``TP_loc += 1``; it is a true positive
     (``TP += 1``) when ``d ≤ threshold`` (20°), else a spatial false positive
     (``FP_spatial += 1``). Then ``P > R`` adds ``FP += P − R`` and ``P < R``
     adds ``FN += R − P``.
   * Per segment, ``FP_s`` / ``FN_s`` (all classes, spatial false positives
     included) give substitutions ``min(FP_s, FN_s)``, deletions
     ``max(0, FN_s − FP_s)``, insertions ``max(0, FP_s − FN_s)``.
3. **Scores** (per class ``c``, then the mean over classes, "macro"):

   * location-aware F-score ``F_c = TP / (TP + FP_spatial + ½(FP + FN))``;
   * class-aware DOA error ``LE_c = total DOA error / TP_loc`` (180° for a
     class never localized);
   * localization recall ``LR_c = TP_loc / (TP_loc + FN_loc)``, where
     ``FN_loc`` counts the same misses as ``FN``;
   * error rate ``ER = (S + D + I) / Σ N_ref`` (one value for all classes);
   * SELD score ``mean(ER, 1 − F, LE / 180, 1 − LR)`` (per class, averaged).

A reference file's number of frames is, as in the baseline, its **largest
frame index** (:func:`reference_frames`), and every frame of the
``ceil(n_frames / frames_per_segment)`` segments is scored: the last labelled
frame is left out only when its index is a multiple of ``frames_per_segment``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from avsa.errors import InputError

FRAME_S = 0.1
"""Length of one label frame, seconds."""
FRAMES_PER_SEGMENT = 10
"""Frames in one scoring segment (1 s)."""
DOA_THRESHOLD_DEG = 20.0
"""Largest mean angular error of a true positive, degrees."""
EPS = float(np.finfo(float).eps)
"""Guard of every ratio, as in the baseline."""

Row = tuple[int, int, int, float, float]
"""(frame, class, track, azimuth degrees, elevation degrees)."""


def unit_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """[x, y, z] of a direction in degrees (x forward, y left, z up)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def angle_matrix_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between the rows of ``a`` (M, 3) and ``b`` (K, 3) (normalised first)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(a @ b.T, -1.0, 1.0)))


def _check_rows(rows: Iterable, n_classes: int, what: str) -> list[Row]:
    checked = []
    for row in rows:
        try:
            frame, cls, track, azimuth, elevation = row
            frame, cls, track = int(frame), int(cls), int(track)
            azimuth, elevation = float(azimuth), float(elevation)
        except (TypeError, ValueError):
            raise InputError(f"{what}: row {row!r} is not (frame, class, track, azimuth, elevation)") from None
        if not 0 <= cls < n_classes:
            raise InputError(f"{what}: class {cls} in row {row!r} is outside 0..{n_classes - 1}")
        if frame < 0 or not (math.isfinite(azimuth) and math.isfinite(elevation)):
            raise InputError(f"{what}: row {row!r} has a negative frame or a non-finite angle")
        checked.append((frame, cls, track, azimuth, elevation))
    return checked


def reference_frames(rows: Iterable) -> int:
    """Number of frames the baseline scores for a reference file: its largest frame index (0 if empty)."""
    frames = [int(row[0]) for row in rows]
    return max(frames) if frames else 0


def segment_labels(rows: Iterable, n_frames: int, *, n_classes: int,
                   frames_per_segment: int = FRAMES_PER_SEGMENT, what: str = "labels") -> list[dict]:
    """Group rows into segments: ``[segment][class] = {frame in segment: [unit vectors in row order]}``.

    Segments number ``ceil(n_frames / frames_per_segment)``; frames after the last segment are ignored
    (frames ``n_frames …`` inside the last segment count, as in the baseline).
    """
    if frames_per_segment < 1:
        raise InputError(f"frames_per_segment {frames_per_segment}: must be at least 1")
    n_segments = -(-max(int(n_frames), 0) // frames_per_segment)
    segments: list[dict] = [{} for _ in range(n_segments)]
    for frame, cls, _track, azimuth, elevation in sorted(_check_rows(rows, n_classes, what), key=lambda r: r[0]):
        if frame >= n_segments * frames_per_segment:
            continue
        per_class = segments[frame // frames_per_segment].setdefault(cls, {})
        per_class.setdefault(frame % frames_per_segment, []).append(unit_vector(azimuth, elevation))
    return segments


@dataclass(frozen=True)
class SeldScores:
    """DCASE SELD scores (see the module docstring).

    Attributes
    ----------
    error_rate : float
        ER, location-aware (one value over all classes).
    f_score : float
        Location-aware F-score (0–1), mean over classes.
    doa_error_deg : float
        Class-aware DOA error, degrees, mean over classes (180 for a class never localized).
    recall : float
        Class-aware localization recall (0–1), mean over classes.
    seld_score : float
        mean(ER, 1 − F, LE/180, 1 − LR), per class then averaged.
    per_class : dict of str to list of float
        ``f_score``, ``doa_error_deg``, ``recall``, ``seld_score`` per class.
    """

    error_rate: float
    f_score: float
    doa_error_deg: float
    recall: float
    seld_score: float
    per_class: dict = field(default_factory=dict)


class SegmentSeldMetrics:
    """Accumulates the SELD counts of files; :meth:`scores` gives the macro-averaged result.

    Parameters
    ----------
    n_classes : int
        Number of sound classes (13 for STARSS23).
    threshold_deg : float, default 20
        DOA threshold of a true positive.
    frames_per_segment : int, default 10
        Frames per scoring segment (1 s of 100-ms frames).
    """

    def __init__(self, n_classes: int, *, threshold_deg: float = DOA_THRESHOLD_DEG,
                 frames_per_segment: int = FRAMES_PER_SEGMENT):
        if n_classes < 1:
            raise InputError(f"n_classes {n_classes}: must be at least 1")
        if not threshold_deg > 0:
            raise InputError(f"threshold_deg {threshold_deg}: must be positive")
        self.n_classes, self.threshold_deg, self.frames_per_segment = n_classes, threshold_deg, frames_per_segment
        zeros = lambda: np.zeros(n_classes)  # noqa: E731
        self.tp, self.fp, self.fp_spatial, self.fn, self.n_ref = zeros(), zeros(), zeros(), zeros(), zeros()
        self.total_doa_error, self.tp_loc, self.fn_loc, self.fp_loc = zeros(), zeros(), zeros(), zeros()
        self.substitutions = self.deletions = self.insertions = 0

    def update(self, predictions: Iterable, references: Iterable, n_frames: int | None = None) -> None:
        """Add one file.

        Parameters
        ----------
        predictions, references : iterable of (frame, class, track, azimuth°, elevation°)
        n_frames : int, optional
            Frames scored; default :func:`reference_frames` of ``references`` (the baseline's rule).
        """
        references = list(references)
        if n_frames is None:
            n_frames = reference_frames(references)
        pred = segment_labels(predictions, n_frames, n_classes=self.n_classes,
                              frames_per_segment=self.frames_per_segment, what="predictions")
        ref = segment_labels(references, n_frames, n_classes=self.n_classes,
                             frames_per_segment=self.frames_per_segment, what="references")
        for pred_segment, ref_segment in zip(pred, ref):
            self._update_segment(pred_segment, ref_segment)

    def _update_segment(self, pred: dict, ref: dict) -> None:
        seg_fp = seg_fn = 0
        for c in range(self.n_classes):
            n_ref = max((len(v) for v in ref[c].values()), default=0) if c in ref else 0
            n_pred = max((len(v) for v in pred[c].values()), default=0) if c in pred else 0
            self.n_ref[c] += n_ref
            if c in ref and c in pred:
                distances: dict[int, list[float]] = {}
                for frame, ref_doas in ref[c].items():
                    if frame not in pred[c]:
                        continue
                    cost = angle_matrix_deg(np.stack(ref_doas), np.stack(pred[c][frame]))
                    rows, cols = linear_sum_assignment(cost)
                    for r, k in zip(rows, cols):
                        distances.setdefault(int(r), []).append(float(cost[r, k]))
                if not distances:  # active in the same segment but never in the same frame
                    seg_fn += n_pred
                    self.fn[c] += n_pred
                    self.fn_loc[c] += n_pred
                    continue
                for matched in distances.values():
                    mean = sum(matched) / len(matched)
                    self.total_doa_error[c] += mean
                    self.tp_loc[c] += 1
                    if mean <= self.threshold_deg:
                        self.tp[c] += 1
                    else:
                        seg_fp += 1
                        self.fp_spatial[c] += 1
                if n_pred > n_ref:
                    seg_fp += n_pred - n_ref
                    self.fp[c] += n_pred - n_ref
                    self.fp_loc[c] += n_pred - n_ref
                elif n_pred < n_ref:
                    seg_fn += n_ref - n_pred
                    self.fn[c] += n_ref - n_pred
                    self.fn_loc[c] += n_ref - n_pred
            elif c in ref:
                seg_fn += n_ref
                self.fn[c] += n_ref
                self.fn_loc[c] += n_ref
            elif c in pred:
                seg_fp += n_pred
                self.fp[c] += n_pred
                self.fp_loc[c] += n_pred
        self.substitutions += min(seg_fp, seg_fn)
        self.deletions += max(0, seg_fn - seg_fp)
        self.insertions += max(0, seg_fp - seg_fn)

    def scores(self, *, class_names: list[str] | None = None) -> SeldScores:
        """Macro-averaged scores of everything added so far."""
        error_rate = (self.substitutions + self.deletions + self.insertions) / (self.n_ref.sum() + EPS)
        f = self.tp / (EPS + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))
        doa = np.where(self.tp_loc > 0, self.total_doa_error / (self.tp_loc + EPS), 180.0)
        recall = self.tp_loc / (EPS + self.tp_loc + self.fn_loc)
        seld = np.mean([np.full(self.n_classes, error_rate), 1 - f, doa / 180.0, 1 - recall], axis=0)
        names = class_names or [str(c) for c in range(self.n_classes)]
        per_class = {"class": list(names), "f_score": f.tolist(), "doa_error_deg": doa.tolist(),
                     "recall": recall.tolist(), "seld_score": seld.tolist()}
        return SeldScores(error_rate=float(error_rate), f_score=float(f.mean()), doa_error_deg=float(doa.mean()),
                          recall=float(recall.mean()), seld_score=float(seld.mean()), per_class=per_class)


def seld_scores(files: Iterable[tuple[Iterable, Iterable]], n_classes: int, *,
                threshold_deg: float = DOA_THRESHOLD_DEG) -> SeldScores:
    """Macro-averaged SELD scores of ``(predictions, references)`` row lists, one pair per file."""
    metrics = SegmentSeldMetrics(n_classes, threshold_deg=threshold_deg)
    for predictions, references in files:
        metrics.update(predictions, references)
    return metrics.scores()


def frame_labels(rows: Iterable, n_frames: int, *, n_classes: int, what: str = "labels") -> list[dict]:
    """Group rows by frame: ``[frame][class] = [unit vectors]`` for frames ``0 … n_frames − 1``."""
    frames: list[dict] = [{} for _ in range(max(int(n_frames), 0))]
    for frame, cls, _track, azimuth, elevation in _check_rows(rows, n_classes, what):
        if frame < len(frames):
            frames[frame].setdefault(cls, []).append(unit_vector(azimuth, elevation))
    return frames


class FrameSeldMetrics:
    """The frame-level variant the DCASE 2024 baseline reports by default (distance not scored).

    Per 100-ms frame and class with ``R`` reference and ``P`` predicted directions: both present →
    Hungarian matching of the ``K = min(P, R)`` pairs, every matched angle adds to the DOA error and
    ``TP_loc += K``; matches above the threshold are spatial false positives, the others true positives;
    ``P > R`` adds ``FP += P − R``, ``P < R`` adds ``FN += R − P``. Reference only: ``FN += R``;
    prediction only: ``FP += P``. Scores as :class:`SegmentSeldMetrics`, except that a class never
    localized has no DOA error (NaN, left out of the mean) and the SELD score is the NaN-ignoring
    mean of its four terms. A reference file's frames are ``0 … largest frame index − 1``
    (:func:`reference_frames`), as in the baseline.
    """

    def __init__(self, n_classes: int, *, threshold_deg: float = DOA_THRESHOLD_DEG):
        if n_classes < 1:
            raise InputError(f"n_classes {n_classes}: must be at least 1")
        if not threshold_deg > 0:
            raise InputError(f"threshold_deg {threshold_deg}: must be positive")
        self.n_classes, self.threshold_deg = n_classes, threshold_deg
        zeros = lambda: np.zeros(n_classes)  # noqa: E731
        self.tp, self.fp, self.fp_spatial, self.fn, self.n_ref = zeros(), zeros(), zeros(), zeros(), zeros()
        self.total_doa_error, self.tp_loc, self.fn_loc, self.fp_loc = zeros(), zeros(), zeros(), zeros()
        self.substitutions = self.deletions = self.insertions = 0

    def update(self, predictions: Iterable, references: Iterable, n_frames: int | None = None) -> None:
        """Add one file (rows as in :class:`SegmentSeldMetrics`)."""
        references = list(references)
        if n_frames is None:
            n_frames = reference_frames(references)
        pred = frame_labels(predictions, n_frames, n_classes=self.n_classes, what="predictions")
        ref = frame_labels(references, n_frames, n_classes=self.n_classes, what="references")
        for p, r in zip(pred, ref):
            frame_fp = frame_fn = 0
            for c in range(self.n_classes):
                n_ref, n_pred = len(r.get(c, ())), len(p.get(c, ()))
                self.n_ref[c] += n_ref
                if n_ref and n_pred:
                    cost = angle_matrix_deg(np.stack(r[c]), np.stack(p[c]))
                    rows, cols = linear_sum_assignment(cost)
                    errors = cost[rows, cols]
                    spatial = int(np.sum(errors > self.threshold_deg))
                    matched = min(n_ref, n_pred)
                    self.total_doa_error[c] += float(errors.sum())
                    self.tp[c] += matched - spatial
                    self.tp_loc[c] += matched
                    self.fp_spatial[c] += spatial
                    self.fp[c] += max(0, n_pred - n_ref)
                    self.fp_loc[c] += max(0, n_pred - n_ref)
                    self.fn[c] += max(0, n_ref - n_pred)
                    self.fn_loc[c] += max(0, n_ref - n_pred)
                    frame_fp += spatial + max(0, n_pred - n_ref)
                    frame_fn += max(0, n_ref - n_pred)
                elif n_ref:
                    self.fn[c] += n_ref
                    self.fn_loc[c] += n_ref
                    frame_fn += n_ref
                elif n_pred:
                    self.fp[c] += n_pred
                    self.fp_loc[c] += n_pred
                    frame_fp += n_pred
            self.substitutions += min(frame_fp, frame_fn)
            self.deletions += max(0, frame_fn - frame_fp)
            self.insertions += max(0, frame_fp - frame_fn)

    def scores(self, *, class_names: list[str] | None = None) -> SeldScores:
        """Macro-averaged scores (``doa_error_deg`` NaN when no class was localized)."""
        error_rate = (self.substitutions + self.deletions + self.insertions) / (self.n_ref.sum() + EPS)
        f = self.tp / (EPS + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))
        doa = np.where(self.tp_loc > 0, self.total_doa_error / (self.tp_loc + EPS), np.nan)
        recall = self.tp_loc / (EPS + self.tp_loc + self.fn_loc)
        terms = np.array([np.full(self.n_classes, error_rate), 1 - f, doa / 180.0, 1 - recall])
        seld = np.array([np.mean(col[~np.isnan(col)]) for col in terms.T])
        names = class_names or [str(c) for c in range(self.n_classes)]
        per_class = {"class": list(names), "f_score": f.tolist(), "doa_error_deg": doa.tolist(),
                     "recall": recall.tolist(), "seld_score": seld.tolist()}
        localized = doa[~np.isnan(doa)]
        return SeldScores(error_rate=float(error_rate), f_score=float(f.mean()),
                          doa_error_deg=float(localized.mean()) if localized.size else math.nan,
                          recall=float(recall.mean()), seld_score=float(seld.mean()), per_class=per_class)
