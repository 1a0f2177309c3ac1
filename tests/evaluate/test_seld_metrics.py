"""SELD metrics on a hand-counted case (definitions in avsa.evaluate.seld_metrics)."""

import math

import pytest

from avsa.errors import InputError
from avsa.evaluate.seld_metrics import SegmentSeldMetrics, reference_frames, seld_scores, segment_labels

# Rows: (frame, class, track, azimuth deg, elevation deg). Three 1-s segments (frames 0-9, 10-19, 20-29).
REFERENCES = (
    [(f, 0, 0, 0.0, 0.0) for f in range(0, 5)]      # seg 0, class 0: frames 0-4 at the front
    + [(5, 1, 0, 90.0, 0.0)]                         # seg 0, class 1: never predicted
    + [(10, 0, 0, 0.0, 0.0), (10, 0, 1, 90.0, 0.0)]  # seg 1, class 0: two sources in one frame
    + [(12, 1, 0, 0.0, 0.0)]                         # seg 1, class 1
    + [(20, 1, 0, 0.0, 0.0)]                         # seg 2, class 1
)
PREDICTIONS = (
    [(f, 0, 0, 10.0, 0.0) for f in range(2, 7)]     # seg 0, class 0: frames 2-6, 10° off
    + [(10, 0, 0, 80.0, 0.0)]                        # seg 1, class 0: one direction, 10° from the 2nd source
    + [(12, 1, 0, 30.0, 0.0)]                        # seg 1, class 1: 30° off
    + [(25, 1, 0, 0.0, 0.0)]                         # seg 2, class 1: right place, other frame than the reference
    + [(21, 0, 0, 0.0, 0.0), (21, 0, 1, 45.0, 0.0)]  # seg 2, class 0: two predictions, no reference
)

# Hand count, segment by segment:
# seg 0  class 0: R = P = 1; common frames 2, 3, 4 at 10° each -> mean 10° <= 20: TP, TP_loc, DOA error += 10.
#        class 1: reference only -> FN += 1.                      FP_s = 0, FN_s = 1: D += 1.
# seg 1  class 0: R = 2, P = 1; the prediction (80°) is matched to position 1 (90°) at 10° -> TP, TP_loc, += 10;
#                 P < R -> FN += 1.
#        class 1: R = P = 1; 30° > 20 -> FP_spatial, TP_loc, DOA error += 30.   FP_s = 1, FN_s = 1: S += 1.
# seg 2  class 1: both active but never in the same frame -> FN += P = 1.
#        class 0: prediction only, P = 2 -> FP += 2.                FP_s = 2, FN_s = 1: S += 1, I += 1.
# Totals  class 0: TP 2, FP_sp 0, FP 2, FN 1, TP_loc 2 (20°), FN_loc 1, N_ref 1 + 2 = 3
#         class 1: TP 0, FP_sp 1, FP 0, FN 2, TP_loc 1 (30°), FN_loc 2, N_ref 3
# ER = (S 2 + D 1 + I 1) / 6 = 2/3
# F  = mean(2 / (2 + 0 + ½(2 + 1)), 0 / (0 + 1 + ½(0 + 2))) = mean(4/7, 0) = 2/7
# LE = mean(20/2, 30/1) = 20°;  LR = mean(2/3, 1/3) = 1/2
# SELD per class = mean(ER, 1 − F, LE/180, 1 − LR):
SELD_0 = (2 / 3 + 3 / 7 + 10 / 180 + 1 / 3) / 4
SELD_1 = (2 / 3 + 1 + 30 / 180 + 2 / 3) / 4


def test_hand_counted_case():
    metrics = SegmentSeldMetrics(2)
    metrics.update(PREDICTIONS, REFERENCES, n_frames=30)
    s = metrics.scores(class_names=["speech", "music"])
    assert s.error_rate == pytest.approx(2 / 3)
    assert s.f_score == pytest.approx(2 / 7)
    assert s.doa_error_deg == pytest.approx(20.0)
    assert s.recall == pytest.approx(0.5)
    assert s.seld_score == pytest.approx((SELD_0 + SELD_1) / 2)
    assert s.per_class["f_score"] == pytest.approx([4 / 7, 0.0])
    assert s.per_class["doa_error_deg"] == pytest.approx([10.0, 30.0])
    assert s.per_class["class"] == ["speech", "music"]
    assert (metrics.substitutions, metrics.deletions, metrics.insertions) == (2, 1, 1)


def test_perfect_prediction_and_unlocalized_class():
    ref = [(f, 0, 0, 30.0, 10.0) for f in range(12)]
    s = seld_scores([(ref, ref)], n_classes=2)
    # frames scored: the segments of the largest frame index (11), ceil(11/10) = 2; one TP each for class 0;
    # class 1 never occurs: F 0, recall 0, DOA error 180 (the baseline's value for an unlocalized class)
    assert s.per_class["f_score"][0] == pytest.approx(1.0)
    assert s.per_class["doa_error_deg"] == pytest.approx([0.0, 180.0], abs=1e-4)
    assert s.f_score == pytest.approx(0.5)
    assert s.error_rate == pytest.approx(0.0)


def test_frames_and_segments():
    assert reference_frames([(3, 0, 0, 0, 0), (17, 1, 0, 0, 0)]) == 17
    segments = segment_labels([(3, 0, 0, 90.0, 0.0), (17, 1, 0, 0.0, 90.0), (20, 1, 0, 0, 0)], 20, n_classes=2)
    assert len(segments) == 2  # frame 20 starts a third segment, beyond the scored ones
    assert len(segment_labels([(19, 0, 0, 0, 0)], 11, n_classes=1)[1][0]) == 1  # inside the last segment: kept
    assert list(segments[0][0]) == [3] and list(segments[1][1]) == [7]
    x, y, z = segments[0][0][3][0]
    assert (x, y, z) == pytest.approx((0.0, 1.0, 0.0), abs=1e-12)  # 90° azimuth is the left (+y)
    assert segments[1][1][7][0][2] == pytest.approx(1.0)


def test_bad_rows_are_named():
    with pytest.raises(InputError, match="class 5"):
        seld_scores([([(0, 5, 0, 0.0, 0.0)], [])], n_classes=2)
    with pytest.raises(InputError, match="not \\(frame"):
        seld_scores([([("a", 0)], [])], n_classes=2)
    with pytest.raises(InputError, match="non-finite"):
        seld_scores([([], [(1, 0, 0, math.nan, 0.0)])], n_classes=2)


def test_frame_level_hand_counted_case():
    """The same rows scored frame by frame (the DCASE 2024 default).

    class 0: frames 0, 1 reference only (FN 2); 2-4 matched at 10° (TP 3, DOA error 30); 5, 6 prediction only
             (FP 2); frame 10: one of two sources matched at 10° (TP 1, +10°, FN 1); frame 21: FP 2.
             -> TP 4, FP_sp 0, FP 4, FN 3, TP_loc 4 (40°), FN_loc 3
    class 1: frame 5 FN 1; frame 12 matched at 30° (FP_sp 1, TP_loc 1, 30°); frame 20 FN 1; frame 25 FP 1.
             -> TP 0, FP_sp 1, FP 1, FN 2, TP_loc 1 (30°), FN_loc 2
    per frame: D in 0, 1, 10, 20; S in 5 (a class-0 FP with a class-1 FN); I in 6, 12, 21 (2), 25 -> 1 + 4 + 5
    N_ref = 7 + 3, so ER = 10 / 10.
    """
    from avsa.evaluate.seld_metrics import FrameSeldMetrics

    metrics = FrameSeldMetrics(2)
    metrics.update(PREDICTIONS, REFERENCES, n_frames=30)
    s = metrics.scores()
    assert (metrics.substitutions, metrics.deletions, metrics.insertions) == (1, 4, 5)
    assert s.error_rate == pytest.approx(1.0)
    assert s.f_score == pytest.approx((4 / 7.5 + 0.0) / 2)
    assert s.doa_error_deg == pytest.approx(20.0)
    assert s.recall == pytest.approx((4 / 7 + 1 / 3) / 2)
    seld_0 = (1.0 + (1 - 4 / 7.5) + 10 / 180 + (1 - 4 / 7)) / 4
    seld_1 = (1.0 + 1.0 + 30 / 180 + (1 - 1 / 3)) / 4
    assert s.seld_score == pytest.approx((seld_0 + seld_1) / 2)
    # a class never localized has no DOA error (NaN), left out of the mean
    never = FrameSeldMetrics(2)
    never.update([(1, 0, 0, 0.0, 0.0)], [(1, 0, 0, 0.0, 0.0), (2, 0, 0, 0.0, 0.0)])
    assert math.isnan(never.scores().per_class["doa_error_deg"][1])
    assert never.scores().doa_error_deg == pytest.approx(0.0, abs=1e-4)
