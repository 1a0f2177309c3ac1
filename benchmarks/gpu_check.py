"""GPU check: the full-scale AVSA step and a single-node torchrun, on a CUDA machine (about 5 min).

1. Full-scale AVSA step (``full/foa-iv-objects``: 112² crops, full-width
   encoders, the paper's batch of 28 clips × 4 crops) with mixed precision
   (fp16 autocast + GradScaler) and the GPU-split loader (decoding in CPU
   worker processes; crops, rotation and features on the GPU): step time,
   samples/s, loader / model ratio (full step over the same step on batches
   already on the GPU) and peak GPU memory.
2. ``torchrun --standalone`` on this node with every GPU (NCCL,
   SyncBatchNorm, DDP) for a few AVSA steps of the same configuration:
   wall time, steps/s and that it finished.

The data is a small synthetic world (``avsa synth`` → ``prepare`` at 512 ×
256 → ``stats`` → oracle detections), made in a temporary folder. Without
CUDA the script says so and exits with status 0.

    python benchmarks/gpu_check.py [--steps 20] [--batch 28] [--skip-torchrun]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CONFIG = "full/foa-iv-objects"


def make_world(root: Path, videos: int) -> Path:
    """A prepared cache of the synthetic world with ambi+IV statistics and oracle detections."""
    from avsa.cli import main as avsa

    src, cache = root / "synth", root / "cache"
    jobs = str(max(1, min(8, (os.cpu_count() or 2) - 1)))
    steps = [
        ["synth", "--out", str(src), "--videos", str(videos), "--duration", "4", "--width", "1024", "--jobs", jobs],
        ["prepare", str(src), "--out", str(cache), "--width", "512", "--jobs", jobs],
        ["stats", str(cache), "--format", "ambi", "--features", "iv", "--windows", "64"],
        ["detect", str(cache), "--detector", "oracle"],
    ]
    for argv in steps:
        if avsa(argv) != 0:
            raise SystemExit(f"gpu_check: `avsa {' '.join(argv)}` failed")
    return cache


def overrides(cache: Path, out: Path, batch: int, steps: int) -> list[str]:
    return [f"data.cache={cache}", f"out={out}", "data.detector=oracle", "stages=avsa",
            f"avsa.batch_size={batch}", f"avsa.steps={steps}", "amp=true", "checkpoint_every=1000000",
            "data.num_workers=auto"]


def check_step(cache: Path, out: Path, batch: int, steps: int) -> None:
    from avsa.train import trainer as T
    from avsa.train.config import stage_model
    from avsa.train.config import load_config
    from avsa.train.batches import TrainBatches

    device = torch.device("cuda")
    cfg = load_config(CONFIG, overrides(cache, out, batch, steps))
    torch.manual_seed(0)
    model = stage_model(cfg, "avsa").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda")
    batches = TrainBatches(cfg, stage="avsa", device=device)

    def step(video, audio, directions):
        with torch.autocast("cuda", dtype=torch.float16):
            loss = T.compute_loss("avsa", model, video, audio, directions, cfg).loss
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    for _ in range(3):  # warm-up: cuDNN autotuning, allocator, worker start
        step(*next(batches))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    kept, start = [], time.perf_counter()
    for _ in range(steps):
        batch_ = next(batches)
        kept.append(batch_)
        loss = step(*batch_)
    torch.cuda.synchronize()
    full = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for batch_ in kept:
        step(*batch_)
    torch.cuda.synchronize()
    model_only = (time.perf_counter() - start) / steps
    batches.close()
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"1. {CONFIG}, AVSA, {batch} clips x 4 crops, fp16 autocast, "
          f"{batches.loader.num_workers} loader workers, {torch.cuda.get_device_name()}:")
    print(f"   step {1e3 * full:.1f} ms ({batch / full:.1f} clips/s, {4 * batch / full:.1f} crops/s); "
          f"model only {1e3 * model_only:.1f} ms; loader/model ratio (model-only / full step) "
          f"{model_only / full:.2f} (goal >= 0.8); peak memory {peak:.2f} GiB; last loss {float(loss):.3f}")


def check_torchrun(cache: Path, out: Path, batch: int, steps: int) -> None:
    gpus = torch.cuda.device_count()
    batch = max(batch // gpus, 2) * gpus  # global batch, split evenly
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
               "-m", "avsa.cli", "train", "--config", CONFIG, *overrides(cache, out, batch, steps),
               "sync_batchnorm=true"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    status = "finished" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"2. torchrun --standalone, {gpus} GPU(s), NCCL + SyncBatchNorm + DDP, {steps} AVSA steps of "
          f"{batch} clips: {status} in {elapsed:.1f} s (start-up included)")
    if result.returncode != 0:
        print("   last lines of its output:\n" + "\n".join("   " + line for line in
                                                        (result.stdout + result.stderr).splitlines()[-20:]))
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps of part 1")
    parser.add_argument("--batch", type=int, default=28, help="clips per step (the paper's AVSA batch: 28)")
    parser.add_argument("--videos", type=int, default=32, help="synthetic videos of 4 s")
    parser.add_argument("--skip-torchrun", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
              "this check needs a GPU — nothing was run.")
        return
    torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        cache = make_world(root, args.videos)
        print(f"0. synthetic world: {args.videos} videos of 4 s prepared in {time.perf_counter() - start:.0f} s")
        check_step(cache, root / "runs", args.batch, args.steps)
        if not args.skip_torchrun:
            check_torchrun(cache, root / "ddp", args.batch, steps=5)


if __name__ == "__main__":
    main()
