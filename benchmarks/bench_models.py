"""Forward + backward time of the AVC and AVSA models on CPU.

Full models (width 1, 8×112×112 crops, audio (C, 100, 128), transformers
512/2048) at 4 samples per step (AVC 4 clips, AVSA 1 clip × 4 crops) — the paper's batches (AVC 112 clips, AVSA
28 clips × 4 crops) are extrapolated per sample — and the tiny CPU configs
(width 0.25, 32×32 crops, ff 256) at their config batch sizes. Every timing
is forward + loss + backward in train mode; the table gives ms per sample
and the ratio to the tiny AVC model measured in the same run.

    python benchmarks/bench_models.py            # ~1 min on one core
    python benchmarks/bench_models.py --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from avsa.models.build import build_model, parameter_count
from avsa.models.losses import avc_loss, avsa_loss


@dataclass
class Case:
    name: str
    stage: str
    width: float
    transformer_ff: int
    clips: int
    crops: int  # 1 for AVC
    size: int  # crop side in pixels
    paper_clips: int  # clips per step in the paper / config, for the extrapolation


CASES = [
    Case("tiny AVC", "avc", 0.25, 256, 32, 1, 32, 32),
    Case("tiny AVSA", "avsa", 0.25, 256, 16, 4, 32, 16),
    Case("full AVC", "avc", 1.0, 2048, 4, 1, 112, 112),
    Case("full AVSA", "avsa", 1.0, 2048, 1, 4, 112, 28),
]


def step_seconds(case: Case, *, channels: int, repeats: int) -> tuple[float, int]:
    """Fastest of ``repeats`` forward+loss+backward (least disturbed by other load), and the parameter count."""
    torch.manual_seed(0)
    model = build_model(case.stage, audio_channels=channels, width=case.width, transformer_ff=case.transformer_ff)
    model.train()
    video = torch.randn(case.clips, case.crops, 3, 8, case.size, case.size)
    audio = torch.randn(case.clips, case.crops, channels, 100, 128)

    def once() -> float:
        t0 = time.perf_counter()
        if case.stage == "avc":
            out = model(video[:, 0], audio[:, 0])
            loss = avc_loss(out.video, out.audio).loss
        else:
            loss = avsa_loss(model(video, audio)).loss
        model.zero_grad(set_to_none=True)
        loss.backward()
        return time.perf_counter() - t0

    once()  # warm-up
    return min(once() for _ in range(repeats)), parameter_count(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--audio-channels", type=int, default=7, help="7 = FOA-IV (the largest input)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), audio channels {args.audio_channels}, "
          f"fastest of {args.repeats} after 1 warm-up; forward + loss + backward, train mode")
    rows = []
    for case in CASES:
        seconds, params = step_seconds(case, channels=args.audio_channels, repeats=args.repeats)
        samples = case.clips * case.crops
        rows.append((case, seconds, params, seconds / samples))
    ref = rows[0][3]
    header = (f"{'model':10s} {'params':>11s} {'batch':>9s} {'step s':>8s} {'ms/sample':>10s} "
              f"{'× tiny AVC':>11s} {'paper step s':>13s}")
    print(header)
    print("-" * len(header))
    for case, seconds, params, per_sample in rows:
        batch = f"{case.clips}x{case.crops}" if case.crops > 1 else f"{case.clips}"
        paper_step = per_sample * case.paper_clips * case.crops
        print(f"{case.name:10s} {params:>11,d} {batch:>9s} {seconds:8.2f} {1000 * per_sample:10.1f} "
              f"{per_sample / ref:11.1f} {paper_step:13.1f}")
    full_avc, full_avsa = rows[2][3], rows[3][3]
    print(f"full/tiny per sample: AVC {full_avc / rows[0][3]:.1f}x, AVSA {full_avsa / rows[1][3]:.1f}x; "
          f"full AVSA/AVC per sample {full_avsa / full_avc:.2f}x")
    print("'paper step s' = ms/sample x the paper's (full) or config's (tiny) samples per step "
          "(AVC 112, AVSA 28x4; tiny 32, 16x4), linear extrapolation on this CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
