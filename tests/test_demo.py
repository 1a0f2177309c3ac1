"""The demo's training choices reach the training config, and its flags turn them off."""

import argparse
from pathlib import Path

from avsa.demo import DETECTIONS, DemoConfig, add_arguments, training_config


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_demo_trains_with_direction_encoding_on_the_detectors_crops():
    config = training_config(DemoConfig(), Path("cache"))
    assert config.model.direction_encoding is True
    assert config.data.crop_jitter_deg == 0.0
    assert config.data.detector == DETECTIONS
    assert (config.avc.steps, config.avsa.steps) == (DemoConfig.avc_steps, DemoConfig.avsa_steps)


def test_demo_flags_set_jitter_and_turn_direction_encoding_off():
    assert _args().direction_encoding is True
    args = _args("--no-direction-encoding", "--crop-jitter", "15")
    config = training_config(DemoConfig(direction_encoding=args.direction_encoding, crop_jitter_deg=args.crop_jitter),
                             Path("cache"))
    assert config.model.direction_encoding is False
    assert config.data.crop_jitter_deg == 15.0


def test_demo_gives_the_video_side_the_crops_relative_directions_unless_told_not_to():
    assert _args().relative_directions is True
    assert training_config(DemoConfig(), Path("cache")).model.relative_directions is True
    args = _args("--no-relative-directions")
    config = training_config(DemoConfig(relative_directions=args.relative_directions), Path("cache"))
    assert config.model.relative_directions is False and config.model.direction_encoding is True


def _r(value, n=104, chance=0.25):
    return {"value": value, "low": value - 0.05, "high": value + 0.05, "n": n, "chance": chance}


def test_the_demo_bars_are_on_what_the_sound_decides():
    from avsa.demo import CONTROL_BAR, SOUND_BAR, bar_lines

    results = {"avsa-contrastive": _r(0.90), "avsa-contrastive-other-audio": _r(0.30),
               "avsa-sound-dependent": _r(0.60, chance=0.0), "localization": _r(0.8, n=104, chance=0.07)}
    lines = "\n".join(bar_lines(results, 10.0))
    assert "AVSA decided by the sound, detector crops" in lines and "60.0 points" in lines
    assert f"bar >= {100 * SOUND_BAR:.0f}): met" in lines and f"bar <= {100 * CONTROL_BAR:.0f}%): met" in lines
    # where the sound decides, by crop kind, when the result says
    results["avsa-sound-dependent"]["details"] = {"per_kind": {
        "object": {"value": 0.7, "avsa": 0.9, "control": 0.2, "n": 60},
        "random": {"value": 0.1, "avsa": 0.5, "control": 0.4, "n": 40}}}
    assert "by crop: on a detection 90.0 - 20.0 = 70.0 points (n 60); random fill of empty quadrants " \
           "50.0 - 40.0 = 10.0 points (n 40)" in "\n".join(bar_lines(results, 10.0))
    # a high AVSA that the control explains meets nothing: the bar is on the difference
    results.update({"avsa-contrastive-other-audio": _r(0.60), "avsa-sound-dependent": _r(0.30, chance=0.0)})
    lines = "\n".join(bar_lines(results, 10.0))
    assert f"bar >= {100 * SOUND_BAR:.0f}): NOT met" in lines and f"bar <= {100 * CONTROL_BAR:.0f}%): NOT met" in lines
    # localization needs enough windows as well as the rate
    results["localization"] = _r(0.9, n=50, chance=0.07)
    assert "over 50 windows" in "\n".join(bar_lines(results, 10.0))
    assert "windows): NOT met" in "\n".join(bar_lines(results, 10.0))


def test_demo_random_fill_elevation_is_the_configs_unless_given():
    from avsa.train.config import load_config

    assert _args().random_elevation is None
    default = training_config(DemoConfig(), Path("cache"))
    assert default.data.random_elevation_deg == load_config(DemoConfig.config).data.random_elevation_deg
    args = _args("--random-elevation", "30")
    config = training_config(DemoConfig(random_elevation_deg=args.random_elevation), Path("cache"))
    assert config.data.random_elevation_deg == 30.0
