"""`avsa evaluate --task starss23`: heatmap peaks against STARSS23's labelled directions."""

import json
import math

import numpy as np
import pytest
import torch

from avsa.cli import main
from avsa.errors import InputError
from avsa.inference.pretrained import load_pretrained
from avsa.evaluate.seld import event_windows, evaluate_localization
from avsa.media import starss23
from avsa.spatial import sphere

from standins import make_starss23


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_starss23(tmp_path_factory.mktemp("starss23") / "STARSS23", seconds=2.0, width=64)


def marker_score(azimuth, elevation, frames, foa):
    """An oracle that looks at the pixels: the brightness of the middle frame at each grid direction."""
    frame = frames[len(frames) // 2].float().mean(0)  # (H, W)
    h, w = frame.shape
    u, v = sphere.direction_to_equirect(azimuth, elevation, w, h)
    return frame[v.long().clamp(0, h - 1), u.long() % w]


def test_windows_have_an_active_middle(standin):
    gt = starss23.load_groundtruth(standin / "metadata_dev" / "dev-test-tau" / "fold4_room1_mix002.csv",
                                   duration_s=2.0)
    starts = event_windows(gt, window_s=1.0, n_windows=4)
    # centred on 100-ms frames (middles 0.55 … 1.45 s fit a 1-s window in 2 s), spread evenly
    assert starts == pytest.approx([0.05, 0.35, 0.65, 0.95])
    assert all(gt.at(s + 0.5) for s in starts)


def test_oracle_scores_hit_and_chance_is_low(tiny_run, standin):
    p = load_pretrained(tiny_run)
    results = {r.task: r for r in evaluate_localization(p, standin, windows_per_file=3, score_fn=marker_score,
                                                        width=64)}
    assert sorted(results) == ["starss23-error-dev-test-tau", "starss23-error-dev-train-sony",
                               "starss23-hit-dev-test-tau", "starss23-hit-dev-train-sony"]
    for split in ("dev-test-tau", "dev-train-sony"):
        hit, error = results[f"starss23-hit-{split}"], results[f"starss23-error-{split}"]
        assert hit.value == 1.0 and hit.n == 3
        assert 0.0 < hit.chance < 0.2  # a few cells of the 36 × 9 grid lie within 20° of an event
        assert error.value < 15.0 and error.metric == "median_error_deg"  # grid spacing 10° × 15°
        assert error.chance > 45.0


def test_cli_writes_results_per_split(tiny_run, standin, tmp_path):
    out = tmp_path / "run"
    assert main(["evaluate", str(tiny_run), "--task", "starss23", "--root", str(standin), "--clips", "1",
                 "--out", str(out)]) == 0
    saved = json.loads((out / "eval" / "starss23-hit-dev-test-tau.json").read_text())
    assert 0.0 <= saved["value"] <= 1.0 and saved["n"] == 1 and 0.0 < saved["chance"] < 1.0
    error = json.loads((out / "eval" / "starss23-error-dev-train-sony.json").read_text())
    assert 0.0 <= error["value"] <= 180.0


def test_needs_a_starss23_root(tiny_run, tmp_path):
    with pytest.raises(InputError, match="not a STARSS23 folder"):
        evaluate_localization(load_pretrained(tiny_run), tmp_path)
    assert main(["evaluate", str(tiny_run), "--task", "starss23"]) == 1


def test_accdoa_targets_and_prediction_rows():
    from avsa.evaluate.seld import accdoa_targets, predict_rows, train_head

    labels = [starss23.LabelRow(0, 2, 0, 90.0, 0.0), starss23.LabelRow(1, 2, 0, 0.0, 90.0),
              starss23.LabelRow(1, 2, 1, 180.0, 0.0)]  # two clapping events in frame 1: the first is kept
    y = accdoa_targets(labels, 3)
    assert y.shape == (3, 13, 3)
    assert y[0, 2] == pytest.approx([0.0, 1.0, 0.0], abs=1e-6) and y[1, 2] == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)
    assert not y[2].any()
    # a head trained on separable frames predicts their classes and directions back
    x = np.eye(3, 8, dtype=np.float32).repeat(20, axis=0)
    head = train_head(x, np.repeat(y, 20, axis=0), epochs=300, lr=1e-2)
    predicted = predict_rows(head, x[::20])
    assert [(f, c) for f, c, *_ in predicted] == [(0, 2), (1, 2)]
    assert predicted[0][3] == pytest.approx(90.0, abs=10) and predicted[1][4] == pytest.approx(90.0, abs=10)


def test_seld_results_with_reference_row(tiny_run, standin):
    from avsa.evaluate.seld import DCASE2024_FOA_BASELINE, evaluate_seld

    results = {r.task: r for r in evaluate_seld(load_pretrained(tiny_run), standin, epochs=5)}
    assert sorted(results) == sorted(f"starss23-seld-{g}-{m}" for g in ("segment", "frame")
                                     for m in ("f", "doa", "recall"))
    f = results["starss23-seld-segment-f"]
    assert 0.0 <= f.value <= 1.0 and f.n == 1 and math.isnan(f.low)  # one test recording: no jackknife
    assert f.details["reference"] == DCASE2024_FOA_BASELINE and "NOT measured here" in f.details["reference"]["what"]
    assert f.details["train_frames"] == 20  # one 2-s training recording


def test_seld_skips_a_malformed_label_file_and_still_scores(tiny_run, tmp_path):
    from avsa.evaluate.seld import evaluate_seld

    root = make_starss23(tmp_path / "STARSS23", per_split=2, seconds=1.0, width=32)
    bad = sorted((root / starss23.METADATA_DIR / "dev-train-sony").glob("*.csv"))[0]
    bad.write_text("0,cat,0,10,0,100\n")
    with pytest.warns(UserWarning, match=f"skipped {bad.stem}"):
        results = evaluate_seld(load_pretrained(tiny_run), root, epochs=2)
    (skipped,) = results[0].details["skipped"]
    assert skipped["item"] == bad.stem and f"{bad.name}: line 1: class 'cat'" in skipped["problem"]
    assert results[0].n == 2  # both test recordings scored
