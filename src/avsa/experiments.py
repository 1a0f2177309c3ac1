"""``avsa experiments paper``: the paper's headline claims, checked on the synthetic world.

::

    avsa experiments paper --scale small --out experiments_out      # about 45 min on 2 CPU cores
    avsa experiments paper --scale full --out experiments_out       # more videos, steps and seeds

Trains the variants the claims need (every variant with ``seeds`` seeds, all
with the same tiny architecture), evaluates them on the same test windows, and
reports each claim with a paired 95 % interval over clips (or scenes):

1. FOA-IV beats log-mel on AVSA contrastive accuracy (paper: about +10 points).
2. Object-oriented crops beat random crops on AVC accuracy (paper: +1.7).
3. AVSA pretraining beats AVC pretraining for FOA scene classification with a
   frozen encoder (paper: +7).
4. Stereo-trained encoders transfer to the binaural scene task (here: they beat
   the same encoder with random weights).
5. Table I: training only on clips that pass the ambisonic validity test
   (|ρ − 1| ≤ τ) beats training on all clips, and a random subset of the same
   size, when some training videos carry broken FOA (swapped channels, a
   stereo file up-mixed to four channels).

Object crops come from the demo's weight-free detector (saliency blobs on
the equirect frame, :data:`avsa.demo.DETECTIONS`), for training and for
evaluation, never from the ground truth; AVSA accuracy is also reported per
crop kind (detector-centred vs. the random crops of quadrants without a
detection), as
``docs/system.md`` §8 asks. A claim *holds* when the interval of the difference is
above 0, is *contradicted* when it is below 0, and is *inconclusive* otherwise.

Every stage is resumable: rerunning reuses the world, finished runs and
finished evaluations in ``--out``; the tables are rewritten from what exists.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from avsa.errors import AvsaError, InputError


@dataclass(frozen=True)
class Scale:
    """Sizes of one experiment scale."""

    videos: int
    duration_s: float
    avc_steps: int
    avsa_steps: int
    seeds: int
    validity_videos: int
    synth_width: int = 512
    cache_width: int = 256
    overrides: tuple[str, ...] = ()
    """Config overrides applied to every run (tests shrink the models with these)."""
    small_tasks: bool = False
    """Synthetic downstream tasks with few scenes (tests)."""


SCALES = {
    # small: the tiny configs (within-clip loss share 0.8, crop jitter 15°: AVSA leaves chance in ~50 steps)
    "small": Scale(videos=64, duration_s=10.0, avc_steps=100, avsa_steps=300, seeds=3, validity_videos=40),
    "full": Scale(videos=160, duration_s=10.0, avc_steps=300, avsa_steps=1500, seeds=4, validity_videos=100),
}


@dataclass(frozen=True)
class Variant:
    """One trained model of the experiment."""

    name: str
    config: str
    stages: tuple[str, ...] = ("avc", "avsa")
    overrides: tuple[str, ...] = ()
    cache: str = "main"  # "main" or "validity"
    clips: str = ""  # "", "all", "pass", "random": Table I subsets of the validity cache


def variants(scale: Scale, detector: str) -> list[tuple[Variant, int]]:
    """(variant, seed) pairs to train, claims first."""
    objects = (f"data.detector={detector}",)
    base = [
        Variant("foa-mel-objects", "tiny/objects", overrides=("data.format=ambi", "data.features=mel") + objects),
        Variant("foa-iv-objects", "tiny/foa-iv-objects", overrides=objects),
        Variant("foa-iv-random", "tiny/foa-iv", stages=("avc",)),
        Variant("stereo-objects", "tiny/stereo-objects", overrides=objects),
    ]
    # claim 4 already holds with one seed, so the stereo encoder trains once
    runs = [(v, s) for s in range(scale.seeds) for v in base if s == 0 or v.name != "stereo-objects"]
    # Table I: the passing subset is small, so all three train with AVC batches of 16 clips
    runs += [(Variant(f"validity-{kind}", "tiny/foa-iv-objects", overrides=objects + ("avc.batch_size=16",),
                      cache="validity", clips=kind), 0)
             for kind in ("all", "pass", "random")]
    return runs


# ------------------------------------------------------------------ worlds
def build_main_world(out: Path, scale: Scale) -> Path:
    """The clean synthetic world: synth → prepare → stats (3 front-ends) → oracle detections."""
    from avsa.demo import DemoConfig, build_world

    cache = build_world(DemoConfig(out=str(out / "world"), videos=scale.videos, duration_s=scale.duration_s,
                                   synth_width=scale.synth_width, cache_width=scale.cache_width))
    _stats(cache)
    return cache


def _stats(cache: Path) -> None:
    from avsa.data.cache_stats import write_stats
    from avsa.data.normalize import stats_path

    for fmt, feats in (("ambi", "mel"), ("ambi", "iv"), ("stereo", "mel")):
        if not stats_path(cache, fmt, feats).exists():
            write_stats(cache, fmt=fmt, features=feats, n_windows=256)


def build_validity_world(out: Path, scale: Scale) -> Path:
    """A world where 40 % of the training videos carry broken FOA (half swapped channels, half stereo up-mix).

    Test videos (one in five, every scene among them: ``world_split``) are all valid. Returns the prepared cache with
    the demo detector's detections and the clip lists ``lists/{all,pass,random}.txt`` of
    its training clips (``avsa check --subset``).
    """
    from avsa.demo import detect_objects
    from avsa.media.prepare import PrepareOptions, has_usable_clip, prepare_cache
    from avsa.media.synth.config import SynthConfig
    from avsa.media.synth.scenes import video_seed, world_scene, world_split
    from avsa.media.synth.world import render_scene, write_scene

    root = out / "validity"
    src, cache = root / "synth", root / "cache"
    if not (src / "test.txt").exists():
        src.mkdir(parents=True, exist_ok=True)
        stems = []
        for i in range(scale.validity_videos):
            test = world_split(i) == "test"
            convention = "ambix" if test or i % 5 in (0, 2, 4) else ("swapped" if i % 5 == 1 else "stereo-upmix")
            config = SynthConfig(duration_s=scale.duration_s, width=scale.synth_width, convention=convention)
            synth = render_scene(config, video_seed(7919, i), scene=world_scene(i))
            stems.append(f"synth-{i:05d}")
            write_scene(synth, src, stems[-1], config=config, audio_codec="flac")
            print(f"validity world: video {i + 1}/{scale.validity_videos} ({convention})", flush=True)
        for split in ("train", "test"):
            (src / f"{split}.txt").write_text("".join(f"{s}\n" for i, s in enumerate(stems) if world_split(i) == split))
    if not has_usable_clip(prepare_cache(src, cache, options=PrepareOptions(width=scale.cache_width), jobs=2)):
        raise AvsaError(f"{cache}: no usable clip was prepared")
    detect_objects(cache)
    _stats(cache)
    lists = root / "lists"
    lists.mkdir(exist_ok=True)
    from avsa.media.cache import Cache
    from avsa.media.check import check_cache, subset

    rows = [r for r in check_cache(Cache(cache), tau=0.1)
            if r.name in {c.clip_id for c in Cache(cache).clips("train")}]
    for kind in ("all", "pass", "random"):
        (lists / f"{kind}.txt").write_text("".join(f"{n}\n" for n in subset(rows, kind, seed=0)))
    return cache


# ----------------------------------------------------------------- training
def train_variant(out: Path, variant: Variant, seed: int, scale: Scale, caches: dict[str, Path]) -> Path:
    """Train (or resume, or reuse) one variant; returns its run folder."""
    from avsa.train.checkpoint import LAST, checkpoint_path
    from avsa.train.config import load_config
    from avsa.train.trainer import resume, train

    run = out / "runs" / f"{variant.name}-s{seed}"
    final = checkpoint_path(run, variant.stages[-1])
    if final.exists():
        return run
    if checkpoint_path(run, LAST).exists():
        return resume(run)
    overrides = [f"data.cache={caches[variant.cache]}", f"seed={seed}", f"name={variant.name}",
                 f"avc.steps={scale.avc_steps}", f"avsa.steps={scale.avsa_steps}",
                 f"stages=[{', '.join(variant.stages)}]", *variant.overrides, *scale.overrides]
    if variant.clips:
        overrides.append(f"data.clips={caches[variant.cache].parent / 'lists' / f'{variant.clips}.txt'}")
    print(f"\n== training {run.name} ({variant.config} {' '.join(variant.overrides)})", flush=True)
    return train(load_config(variant.config, overrides), run_dir=run)


def _train_in_worker(out: Path, variant: Variant, seed: int, scale: Scale, caches: dict[str, Path]) -> Path:
    torch.set_num_threads(1)
    return train_variant(out, variant, seed, scale, caches)


def train_all(out: Path, todo: list[tuple[Variant, int]], scale: Scale, caches: dict[str, Path], *,
              jobs: int = 1) -> dict[tuple[str, int], Path]:
    """Train every (variant, seed), ``jobs`` at a time; returns their run folders.

    A failed run is reported and left out (its claims then read "not run"), so one
    bad variant does not lose the others; a rerun resumes it.
    """
    from concurrent.futures import ProcessPoolExecutor

    from avsa.media.workers import spawn_context

    runs: dict[tuple[str, int], Path] = {}
    if jobs == 1:
        for variant, seed in todo:
            runs[(variant.name, seed)] = train_variant(out, variant, seed, scale, caches)
        return runs
    with ProcessPoolExecutor(jobs, mp_context=spawn_context()) as pool:
        futures = {(v.name, s): pool.submit(_train_in_worker, out, v, s, scale, caches) for v, s in todo}
        for key, future in futures.items():
            try:
                runs[key] = future.result()
            except AvsaError as exc:
                print(f"training {key[0]}-s{key[1]} failed: {exc}", flush=True)
    return runs


# --------------------------------------------------------------- evaluation
def _saved(folder: Path, task: str, compute):
    from avsa.evaluate.results import load_results, save_result

    done = load_results(folder)
    if task not in done:
        results = compute()
        for r in (results if isinstance(results, list) else [results]):
            save_result(folder, r)
        done = load_results(folder)
    return done[task]


def evaluate_checkpoint(out: Path, run: Path, stage: str, cache: Path, detector: str, tasks: tuple[str, ...],
                        *, small: bool = False) -> dict:
    """In-domain results (main world test split, the detector's object crops) and synthetic tasks."""
    from avsa.evaluate.downstream import evaluate_downstream
    from avsa.evaluate.indomain import run_indomain
    from avsa.inference.pretrained import load_pretrained
    from avsa.evaluate.results import load_results
    from avsa.train.checkpoint import checkpoint_path

    folder = out / "eval" / f"{run.name}-{stage}"
    p = None

    def pretrained():
        nonlocal p
        p = p or load_pretrained(checkpoint_path(run, stage))
        return p

    _saved(folder, "avsa-contrastive", lambda: list(run_indomain(
        pretrained(), cache, n_per_clip=4, crops="objects", detector=detector, seed=0, binary=False).values()))
    results = load_results(folder)  # every in-domain result that run wrote
    for task in tasks:
        results[task] = _saved(folder, task, lambda: evaluate_downstream(pretrained(), task, progress=False,
                                                                         small=small))
    return results


def random_init_result(out: Path, run: Path, task: str, *, small: bool = False) -> object:
    """``task`` with the run's architecture and front-end but random weights (the transfer baseline)."""
    from avsa.evaluate.downstream import evaluate_downstream
    from avsa.inference.pretrained import load_pretrained
    from avsa.train.checkpoint import checkpoint_path
    from avsa.train.config import stage_model

    def compute():
        p = load_pretrained(checkpoint_path(run, "avsa"))
        torch.manual_seed(12345)
        p.model = stage_model(p.config, p.stage).to(p.device).eval()
        p.checkpoint = "random-init"
        return evaluate_downstream(p, task, progress=False, small=small)

    return _saved(out / "eval" / f"{run.name}-random-init", task, compute)


# ------------------------------------------------------------------- claims
@dataclass
class Claim:
    """One row of the claims table."""

    number: str
    statement: str
    paper: str
    a_label: str
    b_label: str
    a: list = field(default_factory=list)  # Results of A (one per seed)
    b: list = field(default_factory=list)
    detail: str = ""
    key: str = "hits"  # per-trial outcome list in Result.details

    def difference(self):
        from avsa.evaluate.intervals import paired_difference

        if not self.a or len(self.a) != len(self.b):
            return None
        a, b, groups = [], [], []
        for seed, (ra, rb) in enumerate(zip(self.a, self.b)):
            ha, hb = ra.details[self.key], rb.details[self.key]
            ga, gb = ra.details["groups"], rb.details["groups"]
            if ga != gb:
                raise AvsaError(f"claim {self.number}: the two models were not scored on the same trials")
            a += ha
            b += hb
            groups += [str(g) for g in ga]  # same clip across seeds = one cluster
        return paired_difference(np.array(a, float), np.array(b, float), groups=groups)

    def row(self) -> list[str]:
        diff = self.difference()
        if diff is None:
            return [self.number, self.statement, self.paper, "—", "—", "—", "not run"]
        i = diff.interval
        verdict = "holds" if i.low > 0 else "contradicted" if i.high < 0 else "inconclusive"
        mean = lambda rs: 100 * float(np.mean([r.value for r in rs]))  # noqa: E731
        return [self.number, self.statement, self.paper, f"{self.a_label} {mean(self.a):.1f}",
                f"{self.b_label} {mean(self.b):.1f}",
                f"{100 * i.estimate:+.1f} [{100 * i.low:+.1f}, {100 * i.high:+.1f}]", verdict]


def _per_kind(results: list, kind: str) -> str:
    vals = [r.details.get("per_kind", {}).get(kind, {}).get("value") for r in results]
    vals = [v for v in vals if v is not None]
    return f"{100 * np.mean(vals):.1f}" if vals else "—"


def build_claims(out: Path, runs: dict[tuple[str, int], Path], scale: Scale, main: Path, validity: Path | None,
                 detector: str) -> tuple[list[Claim], list[list[str]]]:
    """Evaluate what is trained and assemble the claims (missing runs leave a claim 'not run')."""
    claims = [
        Claim("1", "FOA-IV beats log-mel on AVSA contrastive accuracy", "+10", "IV", "mel"),
        Claim("2", "object crops beat random crops on AVC contrastive accuracy", "+1.7", "objects", "random"),
        Claim("3", "AVSA beats AVC pretraining on FOA scenes (frozen)", "+7", "AVSA", "AVC", key="item_correct"),
        Claim("4", "stereo encoders transfer to binaural scenes (vs random weights)", "(transfer)", "trained",
              "random init", key="item_correct"),
        Claim("5a", "Table I: valid clips beat all clips (AVSA contrastive)", "(better)", "pass", "all"),
        Claim("5b", "Table I: valid clips beat a random subset of the same size", "(better)", "pass", "random"),
    ]
    kinds: list[list[str]] = []
    for seed in range(scale.seeds):
        have = lambda name: (name, seed) in runs  # noqa: E731
        ev = lambda name, stage, tasks=(): evaluate_checkpoint(out, runs[(name, seed)], stage, main,  # noqa: E731
                                                               detector, tasks, small=scale.small_tasks)
        if have("foa-iv-objects") and have("foa-mel-objects"):
            iv, mel = ev("foa-iv-objects", "avsa", ("synth-foa-scenes",)), ev("foa-mel-objects", "avsa")
            claims[0].a.append(iv["avsa-contrastive"])
            claims[0].b.append(mel["avsa-contrastive"])
            avc = ev("foa-iv-objects", "avc", ("synth-foa-scenes",))
            claims[2].a.append(iv["synth-foa-scenes"])
            claims[2].b.append(avc["synth-foa-scenes"])
            if have("foa-iv-random"):
                rnd = ev("foa-iv-random", "avc")
                claims[1].a.append(avc["avc-contrastive"])
                claims[1].b.append(rnd["avc-contrastive"])
        if have("stereo-objects"):
            st = ev("stereo-objects", "avsa", ("synth-binaural-scenes",))
            claims[3].a.append(st["synth-binaural-scenes"])
            claims[3].b.append(random_init_result(out, runs[("stereo-objects", seed)], "synth-binaural-scenes",
                                                 small=scale.small_tasks))
    for c in claims[:1]:
        for label, rs in ((c.a_label, c.a), (c.b_label, c.b)):
            if rs:
                kinds.append([label, _per_kind(rs, "object"), _per_kind(rs, "random"),
                              f"{100 * np.mean([r.value for r in rs]):.1f}"])
    if validity is not None and all((f"validity-{k}", 0) in runs for k in ("all", "pass", "random")):
        v = {k: ev_validity(out, runs[(f"validity-{k}", 0)], main, detector) for k in ("all", "pass", "random")}
        claims[4].a, claims[4].b = [v["pass"]], [v["all"]]
        claims[5].a, claims[5].b = [v["pass"]], [v["random"]]
    return claims, kinds


def ev_validity(out: Path, run: Path, main: Path, detector: str):
    """AVSA contrastive accuracy of a Table I run, on the clean main world's test split."""
    return evaluate_checkpoint(out, run, "avsa", main, detector, ())["avsa-contrastive"]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_tables(out: Path, claims: list[Claim], kinds: list[list[str]], scale: Scale, scale_name: str,
                 minutes: float, validity_counts: dict | None) -> Path:
    header = ["#", "claim", "paper", "A (%)", "B (%)", "A − B, points [95% CI]", "verdict"]
    text = [f"# The paper's claims on the synthetic world (`avsa experiments paper --scale {scale_name}`)", "",
            f"{scale.seeds} seed(s); {scale.videos} videos of {scale.duration_s:g} s; tiny models, AVC "
            f"{scale.avc_steps} + AVSA {scale.avsa_steps} steps; object crops from the demo's blob detector "
            f"(on the equirect frame), for training and evaluation; intervals are paired cluster bootstraps over test clips "
            f"(scenes for 3–4), pooled over seeds. Wall time {minutes:.0f} min.", "",
            _markdown(header, [c.row() for c in claims]), ""]
    if kinds:
        text += ["AVSA contrastive accuracy by crop kind (mean over seeds, %; chance 25):", "",
                 _markdown(["features", "object-centred crops", "random crops (empty quadrants)", "all"], kinds), ""]
    if validity_counts:
        text += [f"Table I world: {validity_counts}", ""]
    path = out / "claims.md"
    path.write_text("\n".join(text))
    (out / "claims.json").write_text(json.dumps({"scale": asdict(scale), "rows": [c.row() for c in claims],
                                                 "kinds": kinds}, indent=1))
    return path


def run_paper(out: Path, scale: str | Scale, *, cache: Path | None = None, only: str = "all", jobs: int = 1) -> Path:
    """Everything of ``avsa experiments paper``; returns ``claims.md``.

    ``scale``: a name of :data:`SCALES` or a :class:`Scale`; ``cache``: reuse a prepared
    synthetic cache (the demo's detector runs on it); ``only``: ``claims``, ``validity`` or ``all``;
    ``jobs``: variants trained at once (spawned processes, one PyTorch thread each).
    """
    t0 = time.perf_counter()
    scale_name = scale if isinstance(scale, str) else "custom"
    scale = SCALES[scale] if isinstance(scale, str) else scale
    out.mkdir(parents=True, exist_ok=True)
    main = cache or build_main_world(out, scale)
    if cache is not None:
        _stats(cache)
    from avsa.demo import detect_objects

    detector = detect_objects(main)
    caches = {"main": main}
    validity = None
    if only in ("all", "validity"):
        validity = build_validity_world(out, scale)
        caches["validity"] = validity
    todo = [(v, s) for v, s in variants(scale, detector)
            if only == "all" or (v.cache == "validity") == (only == "validity")]
    runs = train_all(out, todo, scale, caches, jobs=jobs)
    print("\n== evaluating", flush=True)
    claims, kinds = build_claims(out, runs, scale, main, validity, detector)
    counts = None
    if validity is not None:
        counts = {k: len((validity.parent / "lists" / f"{k}.txt").read_text().split())
                  for k in ("all", "pass", "random")}
        counts = f"{counts['all']} training clips, {counts['pass']} pass the validity test; random subset {counts['random']}"
    path = write_tables(out, claims, kinds, scale, scale_name, (time.perf_counter() - t0) / 60, counts)
    print("\n" + path.read_text())
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=("paper",), help="which experiment")
    parser.add_argument("--scale", choices=tuple(SCALES), default="small")
    parser.add_argument("--out", type=Path, default=Path("experiments_out"), help="output folder (reused on rerun)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="an existing prepared synthetic cache (skips building the world; "
                             "the demo's detector runs on it)")
    parser.add_argument("--only", choices=("all", "claims", "validity"), default="all")
    parser.add_argument("--jobs", type=int, default=2,
                        help="variants trained at once, one thread each (default 2: tiny models train faster "
                             "two at a time on one thread each than one at a time on two)")


def run(args: argparse.Namespace) -> int:
    if args.cache is not None and not (args.cache / "manifest.csv").is_file():
        raise InputError(f"{args.cache}: not a prepared cache (no manifest.csv; run avsa prepare first)")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    run_paper(args.out, args.scale, cache=args.cache, only=args.only, jobs=args.jobs)
    return 0
