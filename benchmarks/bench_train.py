"""Training throughput of the tiny configs on CPU.

For every tiny paper row: clips per second through a full optimisation step
(decode → crops/rotation/features on the device → forward/backward → Adam),
and the same step on batches already in memory (model only). The ratio
pipeline / model-only shows what the data path costs on top of the model.

    python benchmarks/bench_train.py [--steps 6] [--rows baseline,foa-iv,...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from avsa.cli import main as avsa
from avsa.train import trainer as T
from avsa.train.config import stage_model
from avsa.train.config import load_config
from avsa.train.data import TrainBatches

ROWS = ["baseline", "objects", "mono", "foa-iv", "foa-iv-objects", "stereo", "stereo-icf"]


def make_cache(root: Path) -> Path:
    src, cache = root / "synth", root / "cache"
    assert avsa(["synth", "--out", str(src), "--videos", "40", "--duration", "3", "--width", "256"]) == 0
    assert avsa(["prepare", str(src), "--out", str(cache), "--width", "256"]) == 0
    for fmt, feats in [("ambi", "mel"), ("mono", "mel"), ("stereo", "mel"), ("ambi", "iv"), ("stereo", "icf")]:
        assert avsa(["stats", str(cache), "--format", fmt, "--features", feats, "--windows", "32"]) == 0
    assert avsa(["detect", str(cache), "--detector", "oracle"]) == 0
    return cache


def time_stage(cfg, stage: str, steps: int) -> tuple[float, float]:
    """(clips/s full step, clips/s model only) for one stage."""
    torch.manual_seed(0)
    model = stage_model(cfg, stage)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = TrainBatches(cfg, stage=stage)

    def step(video, audio, directions):
        result = T.compute_loss(stage, model, video, audio, directions, cfg)
        opt.zero_grad()
        result.loss.backward()
        opt.step()

    step(*next(batches))  # warm-up
    t0 = time.perf_counter()
    kept = []
    for _ in range(steps):
        batch = next(batches)
        kept.append(batch)
        step(*batch)
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch in kept:
        step(*batch)
    model_only = time.perf_counter() - t0
    batches.close()
    clips = getattr(cfg, stage).batch_size * steps
    return clips / full, clips / model_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rows", default=",".join(ROWS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        print(f"\n{'config':<22} {'stage':<5} {'clips/s':>8} {'model-only':>11} {'ratio':>6}")
        for row in args.rows.split(","):
            cfg = load_config(f"tiny/{row}", [f"data.cache={cache}"])
            for stage in ("avc", "avsa"):
                full, model_only = time_stage(cfg, stage, args.steps)
                print(f"tiny/{row:<17} {stage:<5} {full:8.1f} {model_only:11.1f} {full / model_only:6.2f}",
                      flush=True)
        print("\nclips/s: one thread; AVSA clips carry 4 crops each. ratio = full step / model-only step "
              "(goal >= 0.8: the data path hidden behind the model; it needs a spare core for the batch-building "
              "thread and the decoding workers).")


if __name__ == "__main__":
    main()
