"""AVSA training samples per second per core: our loader + batched sample assembly vs. references.

::

    .venv/bin/python benchmarks/bench_loader.py [--clips 6] [--samples 24] [--width 512]

Makes a small synthetic cache in a temporary folder (sources written with
``write_av``, then ``avsa prepare``), and times, on one core
(``torch.set_num_threads(1)``, no worker processes), the same AVSA windows
(4 random crops, ambi + IV features, 8 × 112 × 112 crops) through:

* **decode-only**: :class:`~avsa.media.clips.ClipWindows` alone (what a
  loader worker must at least do);
* **loader**: :class:`~avsa.data.loader.SampleDataset` + collate — the
  CPU-side work of a worker when the assembly runs on a GPU (goal ≥ 0.8 × decode-only);
* **full on CPU**: loader + :func:`~avsa.data.samples.build_batch` on the CPU
  (everything on one core, the worst case);
* **baseline-style**: decode the window from the *source* file, then per crop
  ``py360convert.e2p`` frame by frame, rotate the FOA in NumPy and compute
  log-mel + IV with librosa per rotated clip (goal: ≥ 3× slower than ours).

Times are CPU seconds of this process (BLAS and torch limited to one thread),
median per window, with the pipelines interleaved on the same windows.

Prints samples/s of each and the ratios.
"""

from __future__ import annotations

import argparse
import math
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core; idle BLAS threads would also bill spin time to the next pipeline

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from avsa.data.loader import SampleDataset, collate  # noqa: E402
from avsa.data.samples import build_batch  # noqa: E402
from avsa.media.cache import Cache  # noqa: E402
from avsa.media.clips import ClipWindows  # noqa: E402
from avsa.media.io import read_audio, read_frames, write_av  # noqa: E402
from avsa.media.prepare import PrepareOptions, prepare  # noqa: E402
from avsa.spatial import ambisonics, sphere  # noqa: E402

FPS, SR, N_CROPS, CROP = 16, 24000, 4, 112


def make_cache(root: Path, *, n_clips: int, width: int, duration_s: float) -> Cache:
    """Sources with a moving textured scene and a plane-wave FOA, prepared into a cache."""
    rng = np.random.default_rng(0)
    height = width // 2
    src = root / "src"
    src.mkdir(parents=True)
    names = []
    for k in range(n_clips):
        base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(int(duration_s * FPS))])
        noise = 0.1 * rng.standard_normal(int(duration_s * SR)).astype(np.float32)
        foa = ambisonics.encode(noise, float(rng.uniform(-math.pi, math.pi)), 0.2).numpy()
        write_av(src / f"s{k}.mp4", frames, FPS, audio=foa, sample_rate=SR)
        names.append(f"s{k}")
    (src / "train.txt").write_text("\n".join(names) + "\n")
    prepare(src, root / "cache", options=PrepareOptions(width=width, layout="ambix"), progress=False)
    return Cache(root / "cache")


def paired_rates(pipelines: dict, windows: list[tuple[int, int]], rounds: int) -> dict[str, float]:
    """Samples per CPU-second of each pipeline from the median CPU time per window.

    CPU time (all threads of this process) is what "per core" means, and it
    is far less disturbed than wall-clock time by other jobs on the machine.

    Every window is run through all pipelines back to back (after one
    warm-up), ``rounds`` times; the median per-window time of each pipeline is
    robust to other jobs on a shared machine, and pairing on the same windows
    keeps the ratios fair; the order of the pipelines rotates from window to
    window, so none always reads a file another has just warmed.
    """
    for fn in pipelines.values():
        fn(*windows[0])
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    names = list(pipelines)
    for r in range(rounds):
        for w, window in enumerate(windows):
            shift = (r * len(windows) + w) % len(names)  # rotate who goes first (warm caches)
            for name in names[shift:] + names[:shift]:
                fn = pipelines[name]
                start = time.process_time()
                fn(*window)
                times[name].append(time.process_time() - start)
    return {name: 1.0 / float(np.median(t)) for name, t in times.items()}


def baseline_sample(path: Path, start_s: float, azimuth, elevation, fov, mel_basis) -> None:
    """One AVSA sample the baseline way: source decode, e2p crop by crop, librosa per rotated clip."""
    import librosa
    import py360convert

    first_s = start_s + 0.25
    frames = read_frames(path, start_s=first_s, duration_s=8 / FPS, fps=FPS)[:8]
    foa = read_audio(path, start_s=start_s, duration_s=1.0, sample_rate=SR, layout="ambix")[:, :SR]
    for az, el, f in zip(azimuth, elevation, fov):
        f_deg = math.degrees(f)
        _crops = [py360convert.e2p(frame, fov_deg=(f_deg, f_deg), u_deg=-math.degrees(az),
                                   v_deg=math.degrees(el), out_hw=(CROP, CROP)) for frame in frames]
        m = sphere.front_rotation(float(az), float(el)).numpy()
        xyz = m @ foa[[3, 1, 2]]
        rotated = np.stack([foa[0], xyz[1], xyz[2], xyz[0]])
        specs = [librosa.stft(ch, n_fft=512, hop_length=240, center=True)[:, :100] for ch in rotated]
        _log_mel = [np.log(mel_basis @ np.abs(s) ** 2 + 1e-10) for s in specs]
        w = specs[0]
        denominator = mel_basis @ sum(np.abs(s) ** 2 for s in specs)
        _iv = [(mel_basis @ (2 * np.real(np.conj(w) * s))) / np.maximum(denominator, 1e-12)
               for s in (specs[3], specs[1], specs[2])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--samples", type=int, default=12, help="windows timed per round")
    parser.add_argument("--width", type=int, default=512, help="equirect width of sources and cache")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the windows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cache = make_cache(Path(tmp), n_clips=args.clips, width=args.width, duration_s=3.0)
        print(f"cache: {args.clips} clips of 3 s at {args.width}×{args.width // 2} "
              f"(made in {time.perf_counter() - t0:.1f} s)")
        n_clips = len(cache.clips("train"))

        windows = ClipWindows(cache, seed=0)
        dataset = SampleDataset(cache, crop_mode="random", n_crops=N_CROPS, seed=0)
        clips = {c.clip_id: c for c in cache.clips("train")}
        import librosa

        mel_basis = librosa.filters.mel(sr=SR, n_fft=512, n_mels=128)

        def decode_only(epoch: int, index: int) -> None:
            windows.set_epoch(epoch)
            windows[index]

        def loader_only(epoch: int, index: int):
            dataset.set_epoch(epoch)
            return collate([dataset[index]])

        def full(epoch: int, index: int) -> None:
            build_batch(loader_only(epoch, index), fmt="ambi", features="iv", crop_size=CROP, normalize=False)

        def baseline(epoch: int, index: int) -> None:
            dataset.set_epoch(epoch)
            item = dataset[index]  # the same window and crops, decoded again below from the source file
            clip = clips[item.clip_id]
            baseline_sample(Path(tmp) / "src" / clip.source, clip.start_s + item.start_s,
                            item.azimuth, item.elevation, item.fov, mel_basis)

        n_clips = len(clips)
        chosen = [(e, i) for e in range(-(-args.samples // n_clips)) for i in range(n_clips)][:args.samples]
        rates = paired_rates({"decode-only": decode_only, "loader (GPU setting)": loader_only,
                              "full on CPU": full, "baseline-style": baseline}, chosen, args.rounds)
    print(f"{'pipeline':<22}{'samples/s/core':>15}")
    for name, rate in rates.items():
        print(f"{name:<22}{rate:>15.2f}")
    print(f"loader / decode-only      = {rates['loader (GPU setting)'] / rates['decode-only']:.2f}  (goal >= 0.8)")
    print(f"full on CPU / decode-only = {rates['full on CPU'] / rates['decode-only']:.2f}")
    print(f"loader / baseline         = {rates['loader (GPU setting)'] / rates['baseline-style']:.2f}  "
          "(goal >= 3; assembly on the GPU)")
    print(f"full on CPU / baseline    = {rates['full on CPU'] / rates['baseline-style']:.2f}  "
          "(everything on one CPU core)")


if __name__ == "__main__":
    main()
