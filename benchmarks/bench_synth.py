"""How fast ``avsa synth`` renders and writes a 10-s video, on one core.

    python benchmarks/bench_synth.py [--videos 5]

Prints, per video and on average, the CPU time of rendering (scene, frames,
FOA) and of writing (H.264 + FLAC via ``write_av``), and the ratios
real time / (render + write) — how many times faster than real time — and
render / write (the encoder as the reference in the same run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from avsa.media.synth import SynthConfig, render_scene, write_scene  # noqa: E402

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=5)
    args = parser.parse_args()
    config = SynthConfig()
    t0 = time.process_time()
    render_scene(config, 0)  # warm-up: imports, photos, caches
    print(f"warm-up (imports, loading photos): {time.process_time() - t0:.2f} s CPU, once per process")
    render_total = write_total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.videos + 1):
            t0 = time.process_time()
            synth = render_scene(config, seed)
            t1 = time.process_time()
            write_scene(synth, tmp, f"v{seed}", config=config)
            t2 = time.process_time()
            render_total += t1 - t0
            write_total += t2 - t1
            print(f"video {seed} ({synth.layout.scene.name}, {len(synth.layout.objects)} objects): "
                  f"render {t1 - t0:.2f} s, write {t2 - t1:.2f} s CPU")
    n = args.videos
    per_video = (render_total + write_total) / n
    print(f"mean per {config.duration_s:.0f}-s {config.width}x{config.height} video: render {render_total / n:.2f} s "
          f"+ write {write_total / n:.2f} s = {per_video:.2f} s CPU")
    print(f"ratio real time / (render + write): {config.duration_s / per_video:.1f}x")
    print(f"ratio render / write: {render_total / write_total:.2f}")


if __name__ == "__main__":
    main()
