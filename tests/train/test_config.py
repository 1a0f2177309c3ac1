import pytest

from avsa.errors import ConfigError
from avsa.train.config import TrainConfig, load_config, packaged_configs, to_dict, from_dict


def test_every_paper_row_has_a_full_and_a_tiny_config():
    names = packaged_configs()
    rows = {n.split("/")[1] for n in names}
    assert len(rows) == 10
    for row in rows:
        assert f"full/{row}" in names and f"tiny/{row}" in names


@pytest.mark.parametrize("name", packaged_configs())
def test_packaged_configs_load_and_validate(name):
    cfg = load_config(name)
    assert cfg.audio_channels in (1, 2, 4, 5, 7)
    assert ("objects" in name) == (cfg.data.crops == "objects")


def test_overrides_with_dotted_keys_and_types():
    cfg = load_config("tiny/baseline", ["avsa.batch_size=8", "data.features=iv", "stages=avsa", "amp=false"])
    assert cfg.avsa.batch_size == 8 and cfg.data.features == "iv" and cfg.stages == ["avsa"]
    assert cfg.amp is False and cfg.audio_channels == 7
    assert load_config(None, ["data.num_workers=auto"]).data.num_workers == "auto"
    assert load_config("tiny/baseline", ["data.num_workers=3"]).data.num_workers == 3


@pytest.mark.parametrize(
    "override, message",
    [
        ("avsa.batchsize=8", "unknown config key 'avsa.batchsize'"),
        ("nonsense=1", "unknown config key 'nonsense'"),
        ("data.features=icf", "not a valid pair"),
        ("data.crops=yolo", "data.crops: 'yolo' is not one of"),
        ("model.audio_pool=avg", "model.audio_pool: 'avg' is not one of 'max', 'mean'"),
        ("avc.steps=ten", "avc.steps: expected int"),
        ("avc.steps=1.5", "expected an integer"),
        ("stages=avsa,avc", "curriculum order"),
        ("temperature=0", "temperature must be positive"),
        ("amp=maybe", "expected true/false"),
        ("novalue", "key=value"),
        ("data.num_workers=-1", "num_workers"),
        ("data.num_workers=many", "num_workers"),
        ("data.random_elevation_deg=95", "random_elevation_deg must lie in"),
        ("data.random_elevation_deg=nan", "random_elevation_deg must lie in"),
        ("data.crop_jitter_warmup=1.5", r"data.crop_jitter_warmup must lie in \[0, 1\]"),
        ("data.crop_jitter_warmup=-0.1", r"data.crop_jitter_warmup must lie in \[0, 1\]"),
        ("data.crop_size=7", r"data.crop_size must lie in \[16, 1024\] pixels, got 7"),
        ("data.crop_size=0", r"data.crop_size must lie in \[16, 1024\]"),
        ("data.n_frames=1", r"data.n_frames must lie in \[8, 256\], got 1"),
        ("data.window_s=0", "data.window_s must be a positive number"),
        ("avsa.lr=0.001 #x", r"avsa.lr: expected float, got '0.001 #x'"),
        ("stages=[avc, avsa] #x", "quote the item"),
        ("data.split=[a", "not a valid value"),
    ],
)
def test_bad_config_is_a_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny/baseline", [override])


def test_a_hash_in_an_override_value_is_kept():
    cfg = load_config("tiny/baseline", ["data.clips=lists/take #2.txt", "data.cache=take#3",
                                        "data.detector='yolo #2'", "data.split=test"])
    assert cfg.data.clips == "lists/take #2.txt" and cfg.data.cache == "take#3"
    assert cfg.data.detector == "yolo #2" and cfg.data.split == "test"


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_round_trips_through_a_dict():
    cfg = load_config("full/foa-iv-objects")
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg


def test_clip_list_restricts_training_clips(synthetic_cache, tmp_path):
    from avsa.errors import ConfigError, InputError
    from avsa.media.cache import Cache
    from avsa.train.config import load_config
    from avsa.train.batches import TrainBatches, read_clip_list

    train_ids = [c.clip_id for c in Cache(synthetic_cache).clips("train")]
    listing = tmp_path / "pass.txt"
    listing.write_text(f"# a Table I subset\n{train_ids[0]}\n\n{train_ids[2]}  # comment\n")
    assert read_clip_list(str(listing)) == [train_ids[0], train_ids[2]]
    assert read_clip_list("") is None
    cfg = load_config("tiny/baseline", [f"data.cache={synthetic_cache}", f"data.clips={listing}",
                                        "avc.batch_size=2", "data.normalize=false"])
    batches = TrainBatches(cfg, stage="avc")
    assert sorted(c.clip_id for c in batches.dataset.windows.clips) == sorted([train_ids[0], train_ids[2]])
    listing.write_text("no-such-clip\n")
    with pytest.raises(InputError, match="no-such-clip"):
        TrainBatches(cfg, stage="avc")
    listing.write_text("\n# nothing\n")
    with pytest.raises(ConfigError, match="empty"):
        TrainBatches(cfg, stage="avc")


def test_random_crop_elevation_range_reaches_the_training_crops(synthetic_cache):
    """``data.random_elevation_deg`` bounds the training dataset's random crops, and widens them."""
    import numpy as np

    from avsa.train.batches import stage_dataset

    def elevations(degrees):
        cfg = load_config("tiny/baseline", [f"data.cache={synthetic_cache}", "data.crops=random",
                                            f"data.random_elevation_deg={degrees}"])
        dataset = stage_dataset(cfg, "avsa")
        return np.degrees(np.concatenate([dataset[i].elevation for i in range(len(dataset))]))

    narrow, wide = elevations(10), elevations(60)
    assert np.abs(narrow).max() <= 10.0 + 1e-3
    assert np.abs(wide).max() <= 60.0 + 1e-3 and np.abs(wide).max() > 10.0


def test_crop_jitter_warmup_is_a_share_of_the_stages_clips(synthetic_cache):
    """``data.crop_jitter_warmup``: the jitter reaches full size after that share of the stage's steps."""
    from avsa.train.batches import stage_dataset

    cfg = load_config("tiny/baseline", [f"data.cache={synthetic_cache}", "data.crop_jitter_deg=15",
                                        "data.crop_jitter_warmup=0.5", "avsa.steps=40", "avsa.batch_size=4"])
    dataset = stage_dataset(cfg, "avsa")
    assert dataset.crop_jitter_ramp == pytest.approx(0.5 * 40 * 4 / len(dataset))
    assert stage_dataset(load_config("tiny/baseline", [f"data.cache={synthetic_cache}"]), "avsa").crop_jitter_ramp == 0


# ---------------------------------------------------------------- configs that compose

def test_every_row_resolves_to_the_flat_config_it_replaced():
    """Each packaged row, its ``base:`` resolved, gives exactly the flat file it was before bases.

    ``flat_configs.json`` holds the mappings of the 20 flat YAML files as they were (dumped once,
    before the rows were rewritten over ``_base.yaml``).
    """
    import json
    from pathlib import Path

    from avsa.train.config import read_config_file, resolve_config_path

    flat = json.loads((Path(__file__).parent / "flat_configs.json").read_text())
    assert sorted(flat) == packaged_configs()
    for name, expected in flat.items():
        assert read_config_file(resolve_config_path(name)) == expected, name
        assert to_dict(load_config(name)) == to_dict(from_dict(TrainConfig, expected).validate()), name


def test_list_configs_does_not_list_bases():
    assert not [n for n in packaged_configs() if n.split("/")[-1].startswith("_")]


def test_a_base_is_merged_section_by_section(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "root.yaml").write_text("seed: 3\ndata:\n  crops: objects\n  features: iv\n")
    (tmp_path / "mid.yaml").write_text("base: common/root\navsa:\n  steps: 7\n")
    (tmp_path / "row.yaml").write_text("base: mid.yaml\nname: row\ndata:\n  features: mel\n")
    cfg = load_config(tmp_path / "row.yaml", ["avsa.steps=9"])
    assert (cfg.name, cfg.seed, cfg.data.crops, cfg.data.features, cfg.avsa.steps) == ("row", 3, "objects", "mel", 9)


def test_unknown_and_cyclic_bases_are_errors_naming_the_file(tmp_path):
    row = tmp_path / "row.yaml"
    row.write_text("base: nowhere\n")
    with pytest.raises(ConfigError, match=r"row\.yaml: base 'nowhere' not found"):
        load_config(row)
    (tmp_path / "a.yaml").write_text("base: b\n")
    (tmp_path / "b.yaml").write_text("base: a\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: the bases form a cycle"):
        load_config(tmp_path / "a.yaml")
    row.write_text("base: row\n")
    with pytest.raises(ConfigError, match=r"row\.yaml: the bases form a cycle"):
        load_config(row)
    row.write_text("base: [x]\n")
    with pytest.raises(ConfigError, match=r"row\.yaml: base: expected the name"):
        load_config(row)
