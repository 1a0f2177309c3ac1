"""avsa experiments paper: jittered detections, seed-level claim verdicts, --seeds, and the pipeline at a toy scale."""

import math

import numpy as np
import pytest

from avsa.data.detection.base import angular_distance, load_detections
from avsa.evaluate.results import Result
from avsa.data.detection.oracle import jitter_detections
from avsa.errors import InputError
from avsa.evaluate.intervals import Interval
from avsa.experiments import DELTA, SCALES, VERDICTS, Claim, Scale, add_arguments, format_seeds, parse_seeds, \
    run, run_paper, variants, verdict

TOY = Scale(videos=0, duration_s=2.0, avc_steps=1, avsa_steps=1, seeds=1, validity_videos=10, synth_width=128,
            cache_width=128, small_tasks=True, eval_windows=2, scene_test_per_class=2,
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


def _interval(low, high):
    return Interval((low + high) / 2, low, high, 100, 6, 0.95, "t over seeds")


@pytest.mark.parametrize("low, high, expected", [
    (0.005, 0.08, "holds"),         # above 0
    (0.001, 0.01, "holds"),         # above 0 though inside ±δ: a claim is directional
    (-0.09, -0.001, "contradicted"),  # below 0
    (-0.015, 0.019, "equivalent"),  # holds 0, inside [−δ, +δ]
    (-DELTA, DELTA, "equivalent"),  # the bounds count as inside
    (-0.01, 0.05, "undecided"),     # holds 0, reaches past +δ
    (-0.05, 0.01, "undecided"),     # holds 0, reaches past −δ
])
def test_verdict_vocabulary(low, high, expected):
    assert verdict(_interval(low, high)) == expected
    assert expected in VERDICTS


def test_verdict_uses_the_claims_delta():
    assert verdict(_interval(-0.03, 0.03), 0.05) == "equivalent"
    assert verdict(_interval(-0.03, 0.03), 0.02) == "undecided"
    with pytest.raises(InputError, match="delta"):
        verdict(_interval(-0.03, 0.03), 0.0)


def _seeded(number, a_rates, b_rates, groups=tuple(g for g in range(40) for _ in range(4))):
    """A claim with one (A, B) pair per seed: per-seed hit rates → fixed hit patterns on 160 trials."""
    c = Claim(number, "A beats B", "+10", "A", "B")
    for seed, (ra, rb) in enumerate(zip(a_rates, b_rates)):
        c.a.append(_result(np.arange(160) < round(160 * ra), groups))
        c.b.append(_result(np.arange(160) < round(160 * rb), groups))
        c.seeds.append(seed)
    return c


def test_claim_interval_is_t_over_seeds_by_hand():
    # per-seed differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t_{0.975, 2} = 4.302653 → half-width 0.248414
    c = _seeded("1", [0.5, 0.6, 0.7], [0.4, 0.4, 0.4])
    diff = c.difference()
    assert diff.per_seed == pytest.approx((0.1, 0.2, 0.3))
    assert diff.interval.method == "t over seeds"
    assert (diff.interval.low, diff.interval.high) == pytest.approx((0.2 - 0.248414, 0.2 + 0.248414), abs=1e-6)
    row = c.row()
    assert row[3] == "0, 1, 2" and row[4] == "2"
    assert row[7] == "+10.0 / +20.0 / +30.0"
    assert row[8] == "+20.0 [-4.8, +44.8]" and row[-1] == "undecided"


def test_claim_verdicts_over_seeds():
    assert _seeded("1", [0.8, 0.75, 0.85, 0.8, 0.78, 0.82], [0.3] * 6).verdict() == "holds"
    assert _seeded("1", [0.3] * 6, [0.8, 0.75, 0.85, 0.8, 0.78, 0.82]).verdict() == "contradicted"
    assert _seeded("1", [0.5, 0.51, 0.5, 0.49, 0.5, 0.5], [0.5] * 6).verdict() == "equivalent"
    # each seed clearly apart from 0 but in opposite directions: the clip-level noise says nothing here
    assert _seeded("1", [0.6, 0.4, 0.62, 0.38, 0.6, 0.4], [0.5] * 6).verdict() == "undecided"
    assert _seeded("5a", [0.8], [0.3]).verdict() == "not decidable (1 seed)"
    assert _seeded("5a", [0.8], [0.3]).row()[8] == "+50.0 (1 seed: no interval)"
    assert Claim("1", "x", "y", "A", "B").row()[-1] == "not run"


@pytest.mark.parametrize("text, seeds", [
    ("0-5", (0, 1, 2, 3, 4, 5)),
    ("6,7,8,9,10,11", (6, 7, 8, 9, 10, 11)),
    ("0-2, 7", (0, 1, 2, 7)),
    ("4", (4,)),
])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds
    assert parse_seeds(format_seeds(seeds)) == seeds
    assert format_seeds((6, 7, 8, 9, 10, 11)) == "6-11"


@pytest.mark.parametrize("text, named", [
    ("", "no seed"), ("a", "'a'"), ("0-x", "'0-x'"), ("-1", "'-1'"), ("1.5", "'1.5'"), ("5-2", "'5-2'"),
    ("0-3,2", "2"),
])
def test_parse_seeds_rejects_bad_values_naming_them(text, named):
    with pytest.raises(InputError, match="--seeds") as info:
        parse_seeds(text)
    assert named in str(info.value)


def test_variants_train_claims_1_to_3_with_every_seed():
    small = SCALES["small"]
    assert small.seeds >= 6 and small.stereo_seeds >= 2
    seeds = (6, 7, 8, 9, 10, 11)
    todo = variants("blob", seeds, seeds[:small.stereo_seeds], seeds[:small.validity_seeds])
    by_name = {}
    for v, s in todo:
        by_name.setdefault(v.name, []).append(s)
    for name in ("foa-mel-objects", "foa-iv-objects", "foa-iv-random"):
        assert by_name[name] == list(seeds)
    assert by_name["stereo-objects"] == [6, 7, 8]
    assert by_name["validity-pass"] == [6] and len(todo) == len(set((v.name, s) for v, s in todo))


def test_cli_seeds_reach_the_run(monkeypatch):
    import argparse

    import avsa.experiments as experiments

    seen = {}
    monkeypatch.setattr(experiments, "run_paper", lambda out, scale, **kw: seen.update(kw, out=out, scale=scale))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["paper", "--seeds", "6-11", "--out", "b"])) == 0
    assert seen["seeds"] == (6, 7, 8, 9, 10, 11) and seen["validity_seeds"] is None
    with pytest.raises(InputError, match="'x'"):
        run(parser.parse_args(["paper", "--seeds", "0-2,x"]))


def test_toy_scale_end_to_end(synthetic_cache, tmp_path):
    with pytest.warns(UserWarning, match="2 seed"):
        path = run_paper(tmp_path / "exp", TOY, cache=synthetic_cache, seeds=(3, 5))
    text = path.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 6  # claims 1-4, Table I pass vs all / random
    assert "--seeds 3,5" in text
    assert ("Seeds 3,5 for claims 1–3 (2 seeds); claim 4 (the stereo model): seeds 3,5; "
            "Table I (claim 5): seeds 3;") in text
    assert "δ = 2 points" in text and "t-interval" in text and "t over seeds" in text
    assert all(row.split(" | ")[3] == "3, 5" and any(v in row for v in VERDICTS) for row in rows[:4]), text
    assert all(row.split(" | ")[3] == "3" and "not decidable (1 seed)" in row for row in rows[4:]), text
    lists = tmp_path / "exp" / "validity" / "lists"
    n_all, n_pass = (len((lists / f"{k}.txt").read_text().split()) for k in ("all", "pass"))
    assert n_pass < n_all  # the broken videos fail the validity test
    assert len((lists / "random.txt").read_text().split()) == n_pass
    with pytest.warns(UserWarning):
        again = run_paper(tmp_path / "exp", TOY, cache=synthetic_cache, seeds=(3, 5))  # resumes: nothing retrained
    assert again.read_text().split("Wall time")[0] == text.split("Wall time")[0]
    # another evaluation protocol is scored afresh, beside the first (nothing retrained, nothing stale reused)
    import dataclasses
    import json

    fewer = dataclasses.replace(TOY, eval_windows=1, scene_test_per_class=3)
    with pytest.warns(UserWarning):
        third = run_paper(tmp_path / "exp", fewer, cache=synthetic_cache, seeds=(3, 5))
    assert "1 test windows per clip, 3 test scenes per class" in third.read_text()
    assert "2 test windows per clip, 2 test scenes per class" in text
    evals = tmp_path / "exp" / "eval"
    assert {p.name for p in evals.iterdir()} == {TOY.protocol, fewer.protocol}

    def n(protocol, name, task):
        return json.loads(next((evals / protocol / name).rglob(f"{task}.json")).read_text())["n"]

    assert n(fewer.protocol, "foa-iv-objects-s3-avsa", "avsa-contrastive") < n(
        TOY.protocol, "foa-iv-objects-s3-avsa", "avsa-contrastive")
    assert n(fewer.protocol, "foa-iv-objects-s3-avsa", "synth-foa-scenes") == 5 * 3  # 5 scene classes
    assert n(TOY.protocol, "foa-iv-objects-s3-avsa", "synth-foa-scenes") == 5 * 2


def _claims_json(folder, seeds, verdicts, scale=None):
    import json

    folder.mkdir(parents=True)
    rows = [[n, f"claim {n}", "+1", ", ".join(map(str, seeds)), "2", "A 50.0", "B 45.0", "…",
             f"+{i}.0 [+0.1, +9.0]", v] for i, (n, v) in enumerate(verdicts.items(), 1)]
    # claim 1's per-seed differences: +1, +2, +3 points in every run (pooled over two runs: 2 ± 0.84 points)
    claims = {n: {"per_seed": [0.01, 0.02, 0.03][:len(seeds)], "delta": 0.02} for n in verdicts}
    (folder / "claims.json").write_text(json.dumps({"scale": scale or {"videos": 64}, "seeds": list(seeds),
                                                    "rows": rows, "claims": claims}))


def test_compare_names_every_claim_whose_verdict_differs_and_undecided_claims(tmp_path, capsys):
    import argparse

    from avsa.experiments import compare_runs

    _claims_json(tmp_path / "a", (0, 1, 2), {"1": "holds", "2": "undecided", "3": "holds", "4": "holds"})
    _claims_json(tmp_path / "b", (3, 4, 5), {"1": "holds", "2": "holds", "3": "holds", "4": "holds"})
    text = compare_runs(tmp_path / "a", tmp_path / "b")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 4 and "| **no** |" in rows[1] and "| yes |" in rows[0]
    # pooled over both runs' six seeds: d = 1, 2, 3, 1, 2, 3 points → 2.0 ± t(5) · 0.894 / √6 = 2.0 ± 0.94
    from scipy import stats

    half = 100 * stats.t.ppf(0.975, 5) * np.std([0.01, 0.02, 0.03] * 2, ddof=1) / np.sqrt(6)
    assert rows[0].endswith(f"| +2.0 [{2 - half:+.1f}, {2 + half:+.1f}] (6 seeds) | holds |")
    assert "seeds 0-2: A − B" in text and "seeds 3-5: A − B" in text
    assert "The verdicts differ for claim(s) 2." in text and "Undecided among claims 1–3: 2." in text
    assert "share seed" not in text
    _claims_json(tmp_path / "c", (0, 1, 2), {"1": "holds", "2": "undecided", "3": "holds", "4": "holds"})
    text = compare_runs(tmp_path / "a", tmp_path / "c")
    assert "Every claim has the same verdict in both runs." in text and "share seed(s) 0, 1, 2" in text
    assert all(line.endswith("| — | — |") for line in text.splitlines() if line.startswith("| 1 |"))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["compare", str(tmp_path / "a"), str(tmp_path / "b")])) == 0
    assert "The verdicts differ for claim(s) 2." in capsys.readouterr().out
    with pytest.raises(InputError, match="no claims.json"):
        compare_runs(tmp_path / "a", tmp_path / "missing")
    _claims_json(tmp_path / "full", (6, 7), {"1": "holds"}, scale={"videos": 160})
    with pytest.raises(InputError, match="different scales"):
        compare_runs(tmp_path / "a", tmp_path / "full")
    # the same training, scored on other test sizes: not comparable either, and the message says what differs
    from dataclasses import asdict, replace

    _claims_json(tmp_path / "w16", (8, 9), {"1": "holds"}, scale=asdict(SCALES["small"]))
    _claims_json(tmp_path / "w4", (10, 11), {"1": "holds"}, scale=asdict(replace(SCALES["small"], eval_windows=4)))
    with pytest.raises(InputError, match=r"different scales \(eval_windows differ\)"):
        compare_runs(tmp_path / "w16", tmp_path / "w4")
    with pytest.raises(InputError, match="two run folders"):
        run(parser.parse_args(["compare", str(tmp_path / "a")]))
