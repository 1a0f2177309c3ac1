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
