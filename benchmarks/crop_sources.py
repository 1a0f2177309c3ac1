"""One checkpoint, several crop sources: where the sound decides, on the same held-out clips.

    python benchmarks/crop_sources.py CHECKPOINT CACHE DETECTIONS[,DETECTIONS...] [--seed N]

Each name is a detections folder of ``CACHE`` (``blob-equirect``, ``oracle``, ...); ``oracle-sounding``
is made from the ground truth when missing, and ``<name>-jitter<σ>`` by moving ``<name>``'s centres
as :func:`avsa.data.detection.oracle.jitter_detections` does. Prints, per source, AVSA contrastive,
its control (another clip's sound on the same crops) and their difference with its paired 95 %
interval, overall and per crop kind. Measured with it: docs/learning.md ("Why jittered ground truth
scores lower").
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("cache")
    parser.add_argument("detections", help="comma-separated detections folders")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from avsa.data.detection.oracle import jitter_detections
    from avsa.demo import _detect
    from avsa.evaluate.indomain import run_indomain
    from avsa.inference.pretrained import load_pretrained
    from avsa.media.cache import Cache

    pretrained, cache = load_pretrained(args.checkpoint), Cache(args.cache)
    print("| crops | AVSA | control | decided by the sound [95% CI] | per crop kind: n, points |")
    print("|---|---|---|---|---|")
    for name in args.detections.split(","):
        source, _, sigma = name.partition("-jitter")
        if source == "oracle-sounding" and not cache.detections_dir(source).is_dir():
            _detect(cache.root, source)
        if sigma:
            jitter_detections(cache.root, sigma_deg=float(sigma), seed=args.seed, source=source)
        r = run_indomain(pretrained, cache.root, n_per_clip=4, detector=name, seed=args.seed, binary=False)
        avsa, control, sound = r["avsa-contrastive"], r["avsa-contrastive-other-audio"], r["avsa-sound-dependent"]
        per_kind = "; ".join(f"{k} {part['n']}, {100 * part['value']:.1f}"
                             for k, part in sorted(sound.details["per_kind"].items()))
        print(f"| {name} | {100 * avsa.value:.1f} | {100 * control.value:.1f} | {100 * sound.value:.1f} "
              f"[{100 * sound.low:.1f}, {100 * sound.high:.1f}] | {per_kind} |", flush=True)


if __name__ == "__main__":
    main()
