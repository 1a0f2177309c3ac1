"""avsa experiments paper: jittered detections, claim verdicts, and the whole pipeline at a toy scale."""

import math

import numpy as np
import pytest

from avsa.data.detection.base import angular_distance, load_detections
from avsa.evaluate.results import Result
from avsa.data.detection.oracle import jitter_detections
from avsa.experiments import Claim, Scale, run_paper

TOY = Scale(videos=0, duration_s=2.0, avc_steps=1, avsa_steps=1, seeds=1, validity_videos=10, synth_width=128,
            cache_width=128, small_tasks=True,
            overrides=("avc.batch_size=4", "avsa.batch_size=4", "model.video_width=0.125",
                       "model.audio_width=0.125", "model.transformer_ff=64", "data.crop_size=16"))


def test_jitter_moves_every_detection_by_about_sigma(synthetic_cache):
    name = jitter_detections(synthetic_cache, sigma_deg=15.0, seed=3)
    assert name == "oracle-jitter15"
    offsets = []
    for path in sorted((synthetic_cache / "detections" / "oracle").glob("*.json")):
        original, moved = load_detections(path), load_detections(synthetic_cache / "detections" / name / path.name)
        assert len(original.detections) == len(moved.detections)
        for a, b in zip(original.detections, moved.detections):
            assert (a.label, a.time_s, a.size) == (b.label, b.time_s, b.size)
            offsets.append(angular_distance(a.azimuth, a.elevation, b.azimuth, b.elevation))
    offsets = np.degrees(offsets)
    # |N(0, σ)| has mean σ·sqrt(2/π) ≈ 12°
    assert len(offsets) > 50 and 9 < offsets.mean() < 15 and offsets.max() < 80


def _result(hits, groups):
    hits = list(hits)
    v = float(np.mean(hits))
    return Result(task="t", value=v, low=v, high=v, n=len(hits), details={"hits": hits, "groups": list(groups)})


def test_claim_verdicts_follow_the_paired_interval():
    groups = [g for g in range(40) for _ in range(4)]
    rng = np.random.default_rng(0)
    good = rng.random(160) < 0.8
    bad = rng.random(160) < 0.3
    c = Claim("1", "A beats B", "+10", "A", "B", a=[_result(good, groups)], b=[_result(bad, groups)])
    assert c.row()[-1] == "holds"
    c = Claim("1", "A beats B", "+10", "A", "B", a=[_result(bad, groups)], b=[_result(good, groups)])
    assert c.row()[-1] == "contradicted"
    c = Claim("1", "A beats B", "+10", "A", "B", a=[_result(good, groups)], b=[_result(good, groups)])
    assert c.row()[-1] == "inconclusive"
    assert Claim("1", "x", "y", "A", "B").row()[-1] == "not run"


def test_toy_scale_end_to_end(synthetic_cache, tmp_path):
    path = run_paper(tmp_path / "exp", TOY, cache=synthetic_cache)
    text = path.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 6  # claims 1-4, Table I pass vs all / random
    assert all(any(v in row for v in ("holds", "contradicted", "inconclusive")) for row in rows), text
    lists = tmp_path / "exp" / "validity" / "lists"
    n_all, n_pass = (len((lists / f"{k}.txt").read_text().split()) for k in ("all", "pass"))
    assert n_pass < n_all  # the broken videos fail the validity test
    assert len((lists / "random.txt").read_text().split()) == n_pass
    again = run_paper(tmp_path / "exp", TOY, cache=synthetic_cache)  # resumes: nothing retrained
    assert again.read_text().split("Wall time")[0] == text.split("Wall time")[0]
