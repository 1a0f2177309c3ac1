"""Training on bad data and bad settings stops with a clear error, before or instead of a hang."""

import logging
import shutil
from pathlib import PurePosixPath

import pytest
import torch

from avsa.errors import AvsaError, ConfigError, InputError
from avsa.media.cache import Cache
from avsa.train import trainer as trainer_mod
from avsa.train.checkpoint import load_checkpoint, save_checkpoint
from avsa.train.config import load_config
from avsa.train.batches import UnfillableBatchError, read_clip_list
from avsa.train.trainer import resume, train

from .test_trainer import tiny_config


def cache_copy(synthetic_cache, tmp_path, *, unreadable: int) -> tuple:
    """A copy of the synthetic cache whose first ``unreadable`` train clips do not decode."""
    cache = tmp_path / "cache"
    shutil.copytree(synthetic_cache, cache)
    train_clips = Cache(cache).clips("train")
    for clip in train_clips[:unreadable]:
        (cache / clip.video).write_bytes(b"\x00garbage" * 64)
    return cache, len(train_clips)


def count_steps(monkeypatch) -> dict:
    calls = {"n": 0}
    real = trainer_mod.compute_loss

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "compute_loss", counting)
    return calls


def test_every_clip_unreadable_stops_instead_of_skipping_forever(synthetic_cache, tmp_path, monkeypatch):
    cache, n = cache_copy(synthetic_cache, tmp_path, unreadable=10**6)
    calls = count_steps(monkeypatch)
    with pytest.raises(InputError, match="unreadable"):
        train(tiny_config(cache, tmp_path / "runs", "stages=avc", "avc.steps=3"))
    assert calls["n"] == 0


def test_one_readable_clip_per_batch_stops_instead_of_training_on_batches_of_one(synthetic_cache, tmp_path,
                                                                                 monkeypatch):
    cache, n = cache_copy(synthetic_cache, tmp_path, unreadable=7)
    assert n == 8
    calls = count_steps(monkeypatch)
    with pytest.raises(UnfillableBatchError, match="fewer than 2 readable clip"):
        train(tiny_config(cache, tmp_path / "runs", "stages=avc", "avc.steps=3", "avc.batch_size=2"))
    assert calls["n"] == 0


def test_shrunk_batches_are_warned_about_and_still_train(synthetic_cache, tmp_path, caplog):
    cache, _ = cache_copy(synthetic_cache, tmp_path, unreadable=1)
    with caplog.at_level(logging.WARNING, logger="avsa.train.batches"):
        run = train(tiny_config(cache, tmp_path / "runs", "stages=avc", "avc.steps=2"))
    assert any("a batch shrank to 3 of 4 clips" in r.getMessage() for r in caplog.records)
    assert load_checkpoint(run / "checkpoints" / "avc.pt")["finished"]


def test_every_stage_batch_size_is_checked_before_any_training(synthetic_cache, tmp_path, monkeypatch):
    calls = count_steps(monkeypatch)
    with pytest.raises(ConfigError, match=r"8 clips in split 'train' give no batch of 9 clips; lower avsa.batch_size"):
        train(tiny_config(synthetic_cache, tmp_path / "runs", "avc.steps=2", "avsa.steps=2", "avsa.batch_size=9"))
    assert calls["n"] == 0


@pytest.mark.parametrize("override, named", [
    ("data.fps=8", "video at 16 fps, not data.fps=8"),
    ("data.sample_rate=16000", "audio at 24000 Hz, not data.sample_rate=16000"),
])
def test_the_loader_checks_the_cache_against_the_config(synthetic_cache, tmp_path, override, named):
    with pytest.raises(InputError, match="cache .* holds") as error:
        train(tiny_config(synthetic_cache, tmp_path / "runs", "stages=avc", "avc.steps=1", override))
    assert named in str(error.value)


@pytest.mark.parametrize("override, named", [
    ("data.fps=8", "video at 16 fps, not data.fps=8"),
    ("data.sample_rate=16000", "audio at 24000 Hz, not data.sample_rate=16000"),
])
def test_a_cache_without_its_options_record_is_checked_by_its_clips(synthetic_cache, tmp_path, override, named):
    cache, _ = cache_copy(synthetic_cache, tmp_path, unreadable=0)
    (cache / "prepare.json").unlink()
    with pytest.raises(InputError, match=named):
        train(tiny_config(cache, tmp_path / "runs", "stages=avc", "avc.steps=1", override))


@pytest.mark.parametrize("override, named", [
    ("device=tpu", "device='tpu'"),
    ("avc.lr=-1", "avc: lr=-1.0"),
    ("avsa.lr=nan", "avsa: lr=nan"),
])
def test_impossible_settings_are_named(override, named):
    with pytest.raises(ConfigError) as error:
        load_config("tiny/foa-iv", [override])
    assert named in str(error.value)


def test_a_device_torch_does_not_know_is_a_config_error():
    from avsa.train.distributed import pick_device

    for name in ("tpu", "meta"):
        with pytest.raises(ConfigError, match=f"device='{name}'"):
            pick_device(name)


def test_a_checkpoint_whose_config_disagrees_with_its_weights_is_named(tiny_run, tmp_path):
    from avsa.inference.pretrained import load_pretrained

    payload = load_checkpoint(tiny_run / "checkpoints" / "avsa.pt")
    payload["config"]["model"]["dim"] = payload["config"]["model"]["dim"] * 2
    payload.pop("format")
    bad = save_checkpoint(tmp_path / "edited.pt", payload)
    with pytest.raises(AvsaError, match=r"edited.pt: its weights do not fit the model its config describes"):
        load_pretrained(bad)


def test_random_bytes_are_not_a_checkpoint_and_no_unsafe_retry_is_advised(tmp_path):
    bad = tmp_path / "random.pt"
    bad.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
                    .numpy().tobytes())
    with pytest.raises(AvsaError, match="random.pt: not a readable checkpoint") as error:
        load_checkpoint(bad)
    assert "weights_only=False" not in str(error.value)
    zipped = tmp_path / "pickled.pt"
    torch.save({"format": "avsa-checkpoint-1", "thing": PurePosixPath("x")}, zipped)  # a class to unpickle
    with pytest.raises(AvsaError) as error:
        load_checkpoint(zipped)
    assert "weights_only=False" not in str(error.value)


def test_resume_of_a_finished_run_leaves_its_checkpoints_alone(synthetic_cache, tmp_path):
    cfg = tiny_config(synthetic_cache, tmp_path, "avc.steps=2", "avsa.steps=2")
    run = train(cfg, run_dir=tmp_path / "run")
    files = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    metrics = (run / "metrics.jsonl").read_text()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["metrics"]
    assert resume(run) == run
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == files
    assert (run / "metrics.jsonl").read_text() == metrics


def test_resume_killed_between_stages_keeps_the_finished_stage(synthetic_cache, tmp_path):
    cfg = tiny_config(synthetic_cache, tmp_path, "avc.steps=2", "avsa.steps=1")
    run = train(tiny_config(synthetic_cache, tmp_path, "stages=avc", "avc.steps=2"), run_dir=tmp_path / "run")
    avc = (run / "checkpoints" / "avc.pt").read_bytes()
    train(cfg, run_dir=run)  # the AVC stage is finished in last.pt: only AVSA runs
    assert (run / "checkpoints" / "avc.pt").read_bytes() == avc
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["stage"] == "avsa" and last["finished"] and last["metrics"]


def test_clip_lists_keep_a_hash_inside_an_id(tmp_path):
    listing = tmp_path / "clips.txt"
    listing.write_text("# a comment line\ntake#2_c000\n  s1_c000   # why this clip\n\n#another\n")
    assert read_clip_list(str(listing)) == ["take#2_c000", "s1_c000"]



def test_resume_with_a_config_that_does_not_fit_the_checkpoint_is_named(synthetic_cache, tmp_path):
    import yaml

    cfg = tiny_config(synthetic_cache, tmp_path, "stages=avc", "avc.steps=3", "checkpoint_every=1")
    run = train(cfg, run_dir=tmp_path / "run")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    last.update(finished=False, step=1)
    last.pop("format")
    save_checkpoint(run / "checkpoints" / "last.pt", last)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved["model"]["dim"] *= 2
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(AvsaError, match=r"last.pt: its weights do not fit the model of .*config.yaml"):
        resume(run)
