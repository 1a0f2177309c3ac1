"""The rule: a model input may carry what the camera knows (where each video crop looks), never the rotation an
audio token was made with — that is the label AVSA asks the model to find."""

from importlib import resources

import pytest

from avsa.demo import DemoConfig, training_config
from avsa.train.config import ModelConfig, load_config


def _shipped_configs() -> list[str]:
    root = resources.files("avsa") / "configs"
    names = []
    for scale in ("tiny", "full"):
        for entry in (root / scale).iterdir():
            if entry.name.endswith(".yaml") and not entry.name.startswith("_"):
                names.append(f"{scale}/{entry.name[:-5]}")
    return sorted(names)


def _leaks(model: ModelConfig) -> bool:
    return bool(model.direction_encoding and model.a2v_directions)


def test_the_default_model_gives_the_audio_side_no_direction():
    assert ModelConfig().a2v_directions is False


@pytest.mark.parametrize("name", _shipped_configs())
def test_no_shipped_config_gives_the_audio_side_its_rotation(name):
    config = load_config(name)
    assert not _leaks(config.model), name
    # with direction encoding turned on from the command line, the audio side still gets none
    assert not _leaks(load_config(name, ["model.direction_encoding=true"]).model), name


def test_there_are_shipped_configs_to_check():
    names = _shipped_configs()
    assert "tiny/foa-iv-objects" in names and "full/foa-iv-objects" in names and len(names) >= 20


@pytest.mark.parametrize("direction_encoding", [True, False])
def test_the_demo_gives_the_audio_side_no_direction(direction_encoding, tmp_path):
    config = training_config(DemoConfig(direction_encoding=direction_encoding), tmp_path / "cache")
    assert not _leaks(config.model)
