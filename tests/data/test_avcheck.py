"""`avsa check --av`: the convention that makes the audio point at the detected objects, or none."""

import math

import numpy as np
import pytest
import soundfile

from avsa.cli import main
from avsa.data import avcheck
from avsa.data.detection.base import Detection, load_detections
from avsa.errors import InputError
from avsa.media.cache import Cache
from avsa.media.layouts import apply_channel_map
from avsa.spatial.ambisonics import encode, rotate
from avsa.spatial.sphere import yaw


def test_every_signed_permutation_is_a_candidate_and_named_from_one_plane_wave():
    rate = 24000
    noise = 0.1 * np.random.default_rng(0).standard_normal(rate)
    az, el = math.radians(70.0), math.radians(35.0)  # |x|, |y|, |z| differ: the candidates move it ≥ 15.9° apart
    foa = encode(noise, az, el).numpy()
    detections = [Detection(az, el, 0.3, "thing", 1.0, t) for t in (0.25, 0.75)]
    assert len(avcheck.CANDIDATES) == 48
    assert len({m.tobytes() for m in avcheck.CANDIDATES.values()}) == 48
    for candidate in avcheck.CANDIDATES:
        broken = avcheck.break_channels(foa, candidate)
        # the printed channel map undoes the break
        np.testing.assert_allclose(apply_channel_map(broken, avcheck.channel_map(candidate)), foa, atol=1e-6)
        verdict = avcheck.judge_clip(broken, rate, detections, agree_angle=math.radians(10.0))
        assert verdict.verdict == candidate and verdict.agreement[candidate] == 1.0
        assert verdict.margin == 1.0  # every other candidate points elsewhere
    assert avcheck.channel_map("fuma order read as ambix") == "0,2,3,1"
    assert avcheck.channel_map("y-z swapped", "fuma") == "0*1.41421,2,1,3"


def test_a_source_on_the_horizon_cannot_tell_z_flips_apart():
    rate = 24000
    noise = 0.1 * np.random.default_rng(1).standard_normal(rate)
    foa = encode(noise, math.radians(70.0), 0.0).numpy()
    detections = [Detection(math.radians(70.0), 0.0, 0.3, "thing", 1.0, 0.5)]
    verdict = avcheck.judge_clip(avcheck.break_channels(foa, "y-z swapped"), rate, detections)
    assert verdict.verdict.startswith("ambiguous between")
    assert {"y-z swapped", "map 0,2,-1,3"} <= set(verdict.ties)  # Z = ±(the Y channel): both put it on the horizon
    assert verdict.margin < avcheck.TIE_MARGIN


def _judge_cache(cache, breaker):
    folder = cache.detections_dir("oracle")
    verdicts = []
    for i, clip in enumerate(cache.clips()):
        audio, rate = soundfile.read(cache.audio_path(clip), dtype="float32", always_2d=True)
        v = avcheck.judge_clip(breaker(audio.T, i), rate, load_detections(folder / f"{clip.clip_id}.json").detections,
                               clip_id=clip.clip_id)
        if v is not None:
            verdicts.append(v)
    return verdicts


@pytest.mark.parametrize("candidate", ["y-z swapped", "x-z swapped", "fuma order read as ambix", "as is"])
def test_broken_conventions_on_the_synthetic_world_are_named_or_declared_ambiguous(synthetic_cache, candidate):
    """The 10-clip world (2-4 sounding objects, oracle detections) with its channels broken.

    A clip may be ambiguous (few sources leave symmetries), but never names a wrong convention alone, and the
    cache verdict is right (rates: docs/real-data.md, "How reliable the checks are").
    """
    verdicts = _judge_cache(Cache(synthetic_cache), lambda a, i: avcheck.break_channels(a, candidate))
    assert len(verdicts) == 10
    confident_wrong = [v.verdict for v in verdicts if len(v.ties) == 1 and v.verdict not in (candidate, avcheck.NO_FIT)]
    assert not confident_wrong
    assert sum(v.verdict == candidate or (len(v.ties) > 1 and candidate in v.ties) for v in verdicts) >= 8
    s = avcheck.summary(verdicts)
    assert s.verdict == candidate and s.margin > 0.2 and s.agreement[candidate] >= avcheck.MIN_AGREEMENT


@pytest.mark.parametrize("outside", ["yaw 30", "random mix"])
def test_a_field_outside_the_candidates_fits_no_convention(synthetic_cache, outside):
    def breaker(audio, i):
        if outside == "yaw 30":
            return rotate(audio, yaw(math.radians(30.0))).numpy()
        return (np.random.default_rng(i).standard_normal((4, 4)) @ audio).astype(np.float32) / 2

    verdicts = _judge_cache(Cache(synthetic_cache), breaker)
    s = avcheck.summary(verdicts)
    assert s.verdict == avcheck.NO_FIT
    assert s.agreement[s.best] < avcheck.MIN_AGREEMENT
    report = avcheck.format_report(verdicts, "turned")
    assert "turned: no convention fits (best" in report


def test_cli_on_a_cache(synthetic_cache, capsys, tmp_path):
    assert main(["check", "--av", str(synthetic_cache), "--detections", "oracle"]) == 0
    out = capsys.readouterr().out
    assert "'as is' makes audio and video agree" in out and "margin" in out and "runner-up" in out
    assert main(["check", "--av", str(tmp_path)]) == 1  # not a cache
    with pytest.raises(InputError, match="unknown convention"):
        avcheck.break_channels(np.zeros((4, 10)), "upside-down")
