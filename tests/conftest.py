"""Shared test set-up: small, deterministic, CPU-only."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """A tiny prepared cache of the synthetic world, made once per test session.

    Ten 2-s videos (256×128; 8 train, 2 test) → ``avsa prepare`` (128×64) → ``avsa stats`` for
    ambi+mel and ambi+iv → ``avsa detect --detector oracle``.
    """
    from avsa.cli import main

    root = tmp_path_factory.mktemp("synthetic-world")
    src, cache = root / "synth", root / "cache"
    steps = [
        ["synth", "--out", str(src), "--videos", "10", "--duration", "2", "--width", "256"],
        ["prepare", str(src), "--out", str(cache), "--width", "128", "--ground-truth"],
        ["stats", str(cache), "--format", "ambi", "--features", "mel", "--windows", "32", "--split", "train"],
        ["stats", str(cache), "--format", "ambi", "--features", "iv", "--windows", "32", "--split", "train"],
        ["detect", str(cache), "--detector", "oracle"],
    ]
    for argv in steps:
        assert main(argv) == 0, argv
    return cache


def train_tiny(cache, out, config="tiny/foa-iv-objects", *, steps=2, extra=()):
    """Train a very small model of ``config`` for ``steps`` steps per stage; returns its run folder."""
    from avsa.train.config import load_config
    from avsa.train.trainer import train

    cfg = load_config(config, [
        f"data.cache={cache}", f"out={out}", "data.detector=oracle", "model.video_width=0.125", "model.audio_width=0.125",
        "model.transformer_ff=64", "data.crop_size=16", "avc.batch_size=4", "avsa.batch_size=4",
        f"avc.steps={steps}", f"avsa.steps={steps}", *extra])
    return train(cfg, run_dir=out / "run")


@pytest.fixture(scope="session")
def tiny_trainer():
    """:func:`train_tiny`, for tests that need a model of another configuration."""
    return train_tiny


@pytest.fixture(scope="session")
def tiny_run(synthetic_cache, tmp_path_factory):
    """A run folder of a tiny foa-iv-objects model trained a few steps on ``synthetic_cache``."""
    return train_tiny(synthetic_cache, tmp_path_factory.mktemp("tiny-run"))
