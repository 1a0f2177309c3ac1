"""One training per run folder: a lock, and a config check before continuing a run."""

import os
import socket

import pytest
import yaml

from avsa.cli import main
from avsa.errors import ConfigError
from avsa.train import trainer as trainer_mod
from avsa.train.checkpoint import CONFIG_FILE, LOCK_FILE, RunLockedError, config_differences, lock_run
from avsa.train.config import load_config, to_dict
from avsa.train.trainer import train


def config(tmp_path, *extra):
    return load_config("tiny/foa-iv", [f"data.cache={tmp_path / 'cache'}", f"out={tmp_path / 'runs'}", *extra])


@pytest.fixture
def trained(monkeypatch):
    """Replace the training itself: record the folder each call would write."""
    folders = []

    def run(self):
        folders.append(self.run_dir)
        assert (self.run_dir / LOCK_FILE).read_text().strip(), "the lock is held while training"
        (self.run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(self.config)))
        return self.run_dir

    monkeypatch.setattr(trainer_mod.Trainer, "run", run)
    return folders


def test_second_training_in_a_held_folder_stops_naming_the_holder(tmp_path, trained, capsys):
    run = tmp_path / "run"
    with lock_run(run):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            train(config(tmp_path), run_dir=run)
        assert main(["train", "--config", "tiny/foa-iv", f"data.cache={tmp_path}", "--run-dir", str(run)]) == 1
        assert "another training is writing" in capsys.readouterr().err
    assert trained == []
    assert train(config(tmp_path), run_dir=run) == run  # released: the next one goes ahead


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, trained):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text('{"pid": 999999999, "host": "%s", "started": "2026-01-01T00:00:00"}'
                                 % socket.gethostname())
    with pytest.warns(UserWarning, match="pid 999999999"):
        assert train(config(tmp_path), run_dir=run) == run
    assert (run / LOCK_FILE).read_text() == ""  # released cleanly: no warning next time


def test_continuing_a_run_with_another_config_stops_naming_the_keys(tmp_path, trained):
    run = tmp_path / "run"
    train(config(tmp_path, "avsa.lr=0.001"), run_dir=run)
    with pytest.raises(ConfigError, match=r"avsa\.lr \(0\.001 there, 0\.002 now\)") as err:
        train(config(tmp_path, "avsa.lr=0.002", "data.crops=objects"), run_dir=run)
    assert "data.crops" in str(err.value) and "--new-run" in str(err.value)
    assert trained == [run]
    # where it runs and how often it logs may differ
    assert train(config(tmp_path, "avsa.lr=0.001", "device=cpu", "data.num_workers=0", "log_every=3"),
                 run_dir=run) == run


def test_new_run_starts_a_numbered_folder(tmp_path, trained):
    run = tmp_path / "run"
    train(config(tmp_path), run_dir=run)
    assert train(config(tmp_path, "avsa.lr=0.002"), run_dir=run, new_run=True) == tmp_path / "run-2"
    assert train(config(tmp_path), run_dir=run, new_run=True) == tmp_path / "run-3"
    assert trained == [run, tmp_path / "run-2", tmp_path / "run-3"]


def test_config_differences_ignores_only_the_free_keys():
    a = {"device": "cuda", "seed": 0, "data": {"num_workers": 4, "crop_size": 112}}
    b = {"device": "cpu", "seed": 1, "data": {"num_workers": 0, "crop_size": 96}}
    assert config_differences(a, b) == ["data.crop_size", "seed"]


def test_adding_a_later_stage_continues_the_curriculum(tmp_path, trained):
    run = tmp_path / "run"
    train(config(tmp_path, "stages=avc", "avsa.steps=5"), run_dir=run)
    assert train(config(tmp_path, "avsa.steps=1"), run_dir=run) == run  # AVSA never ran there
    with pytest.raises(ConfigError, match="stages"):
        train(config(tmp_path, "stages=avc"), run_dir=run)  # dropping a trained stage is another run
