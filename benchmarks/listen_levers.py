"""What makes AVSA listen: one lever at a time on the demo's world, scored by what the sound decides.

    python benchmarks/listen_levers.py NAME [key=value ...] [--out DIR] [--seed N] [--avc-steps N] [--avsa-steps N]
                                       [--videos N --duration S]

Builds the demo's world once (``DIR/world<seed>``), trains the demo's AVC stage once per model
configuration (the model, the audio format and features, the AVC steps), then the AVSA stage
(600 steps unless ``--avsa-steps``: the demo's before it moved to 1000) with the given config overrides, and
evaluates it on the held-out clips with the demo's detector crops and with ground-truth crops
jittered by 15°: AVSA contrastive, its control (the same crops, another clip's sound) and their
difference, overall, per crop kind and per number of sounding objects in the clip (``per_sources``;
ground-truth crops are centred on every object, sounding or silent). ``--videos``/``--duration`` build
another world than the demo's (``DIR/world<seed>-v<N>-d<S>``, its own AVC stage). Appends one JSON line to
``DIR/levers.jsonl``; a lever already trained is evaluated again.
Levers measured with it are tabled in docs/learning.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("overrides", nargs="*", help="training config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=Path("levers_out"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--avsa-steps", type=int, default=600)
    parser.add_argument("--avc-steps", type=int, default=None, help="AVC stage steps (default: the demo's)")
    parser.add_argument("--videos", type=int, default=None, help="videos of the world (default: the demo's)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per video (default: the demo's)")
    args = parser.parse_args()

    from avsa.demo import DETECTIONS, JITTER_DEG, DemoConfig, build_world
    from avsa.evaluate.indomain import run_indomain
    from avsa.inference.pretrained import load_pretrained
    from avsa.train.checkpoint import checkpoint_path
    from avsa.train.config import load_config
    from avsa.train.trainer import train

    sizes = {k: v for k, v in (("videos", args.videos), ("duration_s", args.duration)) if v is not None}
    world_tag = "".join(f"-{k[0]}{v:g}" for k, v in sizes.items())
    demo = DemoConfig(out=str(args.out / f"world{args.seed}{world_tag}"), seed=args.seed, **sizes)
    cache = build_world(demo)
    common = [f"data.cache={cache}", f"data.detector={DETECTIONS}", "data.crop_jitter_deg=0",
              "model.direction_encoding=true", f"seed={args.seed}"]
    # what the AVC stage's checkpoint depends on: the model and the audio encoder's input
    model_overrides = sorted(o for o in args.overrides
                             if o.startswith(("model.", "data.format=", "data.features=", "data.window_s=")))
    tag = "-".join(o.split(".", 1)[1].replace("=", "") for o in model_overrides)
    avc_steps = demo.avc_steps if args.avc_steps is None else args.avc_steps
    if avc_steps != demo.avc_steps:
        tag = f"{tag}-avc{avc_steps}" if tag else f"avc{avc_steps}"
    avc_run = args.out / f"avc{args.seed}{world_tag}{'-' + tag if tag else ''}"
    if not checkpoint_path(avc_run, "avc").exists():
        train(load_config(demo.config, [*common, f"avc.steps={avc_steps}", "stages=[avc]", "name=avc",
                                        *model_overrides]), run_dir=avc_run)
    run = args.out / f"run-{args.name}-s{args.seed}{world_tag}"
    t0 = time.time()
    if not checkpoint_path(run, "avsa").exists():
        train(load_config(demo.config, [*common, f"avsa.steps={args.avsa_steps}", "stages=[avsa]",
                                        f"init={checkpoint_path(avc_run, 'avc')}", f"name={args.name}",
                                        *args.overrides]), run_dir=run)
    row = {"name": args.name, "seed": args.seed, **sizes, "overrides": args.overrides, "avc_steps": avc_steps,
           "avsa_steps": args.avsa_steps, "train_min": (time.time() - t0) / 60}
    p = load_pretrained(checkpoint_path(run, "avsa"))
    from avsa.media.cache import Cache

    world = Cache(cache)
    sounding = {c.clip_id: sum(o.sounding for o in world.groundtruth(c).objects) for c in world.clips("test")}
    for detector, suffix in ((DETECTIONS, ""), (f"oracle-jitter{JITTER_DEG:g}", "-jittered")):
        r = run_indomain(p, cache, n_per_clip=4, detector=detector, seed=args.seed, binary=False)
        avsa, control = r["avsa-contrastive"], r["avsa-contrastive-other-audio"]
        sound = r["avsa-sound-dependent"]
        row[f"avsa{suffix}"], row[f"control{suffix}"] = avsa.value, control.value
        row[f"sound{suffix}"] = [sound.value, sound.low, sound.high]
        kinds, hits, other = (np.asarray(x) for x in (avsa.details["kinds"], avsa.details["hits"],
                                                       control.details["hits"]))
        row[f"per_kind{suffix}"] = {k: {"n": int((kinds == k).sum()), "avsa": float(hits[kinds == k].mean()),
                                        "control": float(other[kinds == k].mean())} for k in sorted(set(kinds))}
        sources = np.array([sounding[clip] for clip in avsa.details["groups"]])
        row[f"per_sources{suffix}"] = {int(n): {"n": int((sources == n).sum()), "avsa": float(hits[sources == n].mean()),
                                                "control": float(other[sources == n].mean())}
                                       for n in sorted(set(sources.tolist()))}
    print(json.dumps(row))
    with open(args.out / "levers.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
