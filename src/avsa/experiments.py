"""``avsa experiments paper``: the paper's headline claims, checked on the synthetic world (and
``avsa experiments compare``: two runs' verdicts side by side).

::

    avsa experiments paper --scale small --out experiments_out      # seeds 0-5
    avsa experiments paper --scale small --seeds 6-11 --out experiments_out_b  # a disjoint set of seeds
    avsa experiments compare experiments_out experiments_out_b     # do their verdicts agree?
    avsa experiments paper --scale full --out experiments_out       # more videos and steps

Trains the variants the claims need (claims 1–3 with every seed of ``--seeds``,
claim 4's stereo model with the first ``Scale.stereo_seeds`` of them, all with
the same tiny architecture), evaluates them on the same test windows
(``Scale.eval_windows`` per test clip; the scene tasks of claims 3–4 on
``Scale.scene_test_per_class`` test scenes per class), and decides each claim
from the spread over training seeds:

1. FOA-IV beats log-mel on AVSA contrastive accuracy (paper: about +10 points).
2. Object-oriented crops beat random crops on AVC accuracy (paper: +1.7).
3. AVSA pretraining beats AVC pretraining for FOA scene classification with a
   frozen encoder (paper: +7).
4. Stereo-trained encoders transfer to the binaural scene task (here: they beat
   the same encoder with random weights).
5. Table I: training only on clips that pass the ambisonic validity test
   (|ρ − 1| ≤ τ) beats training on all clips, and a random subset of the same
   size, when some training videos carry broken FOA (swapped channels, a
   stereo file up-mixed to four channels). Its three variants train with the
   first ``Scale.validity_seeds`` seeds (``--validity-seeds``; 1 at the small
   scale, so claim 5 reads "not decidable (1 seed)" there).

Object crops come from the demo's weight-free detector (saliency blobs on
the equirect frame, :data:`avsa.demo.DETECTIONS`), for training and for
evaluation, never from the ground truth; AVSA accuracy is also reported per
crop kind (detector-centred vs. the random crops of quadrants without a
detection), as ``docs/system.md`` §8 asks.

**How a claim is decided.** For each seed s, A and B trained with seed s are
scored on the same test items and d_s = mean(A − B) over them; the interval is
the 95 % t-interval of the mean of the S seeds' d_s (S − 1 degrees of freedom,
:func:`avsa.evaluate.intervals.seed_level_difference`), so it carries the
spread of training as well as that of the test items. With the interval
[L, H] and the claim's margin δ (:data:`DELTA`, fixed before any run: 2 points
of accuracy for every claim), the verdict is, in this order:

- **contradicted** — H < 0: B is better than A;
- **holds** — L > 0: A is better than B (a claim is directional; an effect
  smaller than δ still holds, and the table shows how large it is);
- **equivalent** — −δ ≤ L and H ≤ δ: A and B differ by less than δ;
- **undecided** — otherwise: the interval holds 0 and reaches past ±δ.

A claim with fewer than 2 seeds is **not decidable (1 seed)**; one with no
trained pair is **not run**.

Every stage is resumable: rerunning reuses the world, finished runs and
finished evaluations in ``--out`` (kept per evaluation protocol, in
``eval/<Scale.protocol>/``); the tables are rewritten from what exists.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from avsa.errors import AvsaError, InputError

DELTA = 0.02
"""Margin δ of every claim (a fraction: 2 points of accuracy), fixed before any run: a difference
whose 95 % interval lies inside [−δ, +δ] is "equivalent"."""
VERDICTS = ("holds", "contradicted", "equivalent", "undecided")
"""The verdicts an interval can get (see the module docstring for the rules)."""
MIN_SEEDS = 6
"""Seeds below which a run warns that claims 1–3 may stay undecided."""


@dataclass(frozen=True)
class Scale:
    """Sizes of one experiment scale."""

    videos: int
    duration_s: float
    avc_steps: int
    avsa_steps: int
    seeds: int
    """Default seeds of claims 1–3: 0 … seeds − 1 (``--seeds`` chooses others)."""
    validity_videos: int
    synth_width: int = 512
    cache_width: int = 256
    overrides: tuple[str, ...] = ()
    """Config overrides applied to every run (tests shrink the models with these)."""
    small_tasks: bool = False
    """Synthetic downstream tasks with few scenes (tests)."""
    stereo_seeds: int = 3
    """The stereo model (claim 4) trains with the first this many of the run's seeds (all of them if fewer)."""
    validity_seeds: int = 1
    """Table I trains with the first this many of the run's seeds (claim 5 needs 2 or more to be decided)."""
    eval_windows: int = 16
    """Test windows per clip of the in-domain claims (1, 2 and Table I). Scored on few windows, a seed's d_s
    carries the test sample's noise besides training's: on the same checkpoints, claim 1's spread over six
    seeds fell from 4.4 and 6.2 points at 4 windows per clip to 2.7 and 2.9 at 16 (``docs/claims.md``)."""
    scene_test_per_class: int = 96
    """Test scenes per class of the synthetic scene tasks (claims 3 and 4; the tasks' own default is 24)."""

    @property
    def protocol(self) -> str:
        """The evaluation's sizes, naming the folder its results are kept in (``eval/<protocol>/``)."""
        return f"windows{self.eval_windows}-scenes{self.scene_test_per_class}"


SCALES = {
    # small: the tiny configs (within-clip loss share 0.8, crop jitter 15°: AVSA leaves chance in ~50 steps)
    "small": Scale(videos=64, duration_s=10.0, avc_steps=100, avsa_steps=300, seeds=6, validity_videos=40),
    "full": Scale(videos=160, duration_s=10.0, avc_steps=300, avsa_steps=1500, seeds=6, validity_videos=100,
                  stereo_seeds=6, validity_seeds=6),
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


def variants(detector: str, seeds: tuple[int, ...], stereo_seeds: tuple[int, ...],
             validity_seeds: tuple[int, ...]) -> list[tuple[Variant, int]]:
    """(variant, seed) pairs to train: claims 1–3 with each of ``seeds``, claim 4's stereo model with
    ``stereo_seeds``, then Table I with ``validity_seeds``."""
    objects = (f"data.detector={detector}",)
    base = [
        Variant("foa-mel-objects", "tiny/objects", overrides=("data.format=ambi", "data.features=mel") + objects),
        Variant("foa-iv-objects", "tiny/foa-iv-objects", overrides=objects),
        Variant("foa-iv-random", "tiny/foa-iv", stages=("avc",)),
        Variant("stereo-objects", "tiny/stereo-objects", overrides=objects),
    ]
    runs = [(v, s) for s in seeds for v in base if v.name != "stereo-objects" or s in stereo_seeds]
    # Table I: the passing subset is small, so all three train with AVC batches of 16 clips
    runs += [(Variant(f"validity-{kind}", "tiny/foa-iv-objects", overrides=objects + ("avc.batch_size=16",),
                      cache="validity", clips=kind), s)
             for s in validity_seeds for kind in ("all", "pass", "random")]
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
    if not has_usable_clip(prepare_cache(src, cache, options=PrepareOptions(width=scale.cache_width, ground_truth=True), jobs=2)):
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
                        scale: Scale) -> dict:
    """In-domain results (main world test split, the detector's object crops, ``scale.eval_windows`` windows
    per clip) and synthetic tasks (``scale.scene_test_per_class`` test items per class), kept in
    ``out/eval/<scale.protocol>/``."""
    from avsa.evaluate.downstream import evaluate_downstream
    from avsa.evaluate.indomain import run_indomain
    from avsa.inference.pretrained import load_pretrained
    from avsa.evaluate.results import load_results
    from avsa.train.checkpoint import checkpoint_path

    folder = out / "eval" / scale.protocol / f"{run.name}-{stage}"
    p = None

    def pretrained():
        nonlocal p
        p = p or load_pretrained(checkpoint_path(run, stage))
        return p

    _saved(folder, "avsa-contrastive", lambda: list(run_indomain(
        pretrained(), cache, n_per_clip=scale.eval_windows, crops="objects", detector=detector, seed=0,
        binary=False).values()))
    results = load_results(folder)  # every in-domain result that run wrote
    for task in tasks:
        results[task] = _saved(folder, task, lambda: evaluate_downstream(
            pretrained(), task, progress=False, small=scale.small_tasks, test_per_class=scale.scene_test_per_class))
    return results


def random_init_result(out: Path, run: Path, task: str, scale: Scale) -> object:
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
        return evaluate_downstream(p, task, progress=False, small=scale.small_tasks,
                                   test_per_class=scale.scene_test_per_class)

    return _saved(out / "eval" / scale.protocol / f"{run.name}-random-init", task, compute)


# ------------------------------------------------------------------- claims
def verdict(interval, delta: float = DELTA) -> str:
    """The verdict of an interval of A − B (one of :data:`VERDICTS`; rules in the module docstring).

    Parameters
    ----------
    interval : Interval
        Of the difference A − B (fractions, like ``delta``).
    delta : float
        The claim's margin δ > 0.
    """
    if delta <= 0:
        raise InputError(f"delta must be positive, got {delta}")
    if interval.high < 0:
        return "contradicted"
    if interval.low > 0:
        return "holds"
    if -delta <= interval.low and interval.high <= delta:
        return "equivalent"
    return "undecided"


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


@dataclass
class Claim:
    """One row of the claims table: results of A and B, one pair per seed."""

    number: str
    statement: str
    paper: str
    a_label: str
    b_label: str
    a: list = field(default_factory=list)  # Results of A, one per seed
    b: list = field(default_factory=list)  # Results of B, same seeds in the same order
    detail: str = ""
    key: str = "hits"  # per-trial outcome list in Result.details
    seeds: list = field(default_factory=list)  # the seed of each pair
    delta: float = DELTA

    def _outcomes(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-seed outcome arrays of A and of B, checked to be scored on the same trials."""
        a, b = [], []
        for ra, rb in zip(self.a, self.b):
            ga, gb = ra.details["groups"], rb.details["groups"]
            if ga != gb:
                raise AvsaError(f"claim {self.number}: the two models were not scored on the same trials")
            a.append(np.asarray(ra.details[self.key], float))
            b.append(np.asarray(rb.details[self.key], float))
        return a, b

    def per_seed(self) -> list[float]:
        """d_s = mean over the trials of A − B, one per seed (empty when nothing was run)."""
        return [float(np.mean(x - y)) for x, y in zip(*self._outcomes())]

    def difference(self):
        """The seed-level difference (:class:`~avsa.evaluate.intervals.SeedLevelDifference`); None below 2 seeds."""
        from avsa.evaluate.intervals import seed_level_difference

        if len(self.a) != len(self.b):
            raise AvsaError(f"claim {self.number}: {len(self.a)} results of A but {len(self.b)} of B")
        if len(self.a) < 2:
            return None
        return seed_level_difference(*self._outcomes())

    def verdict(self) -> str:
        if not self.a:
            return "not run"
        diff = self.difference()
        return "not decidable (1 seed)" if diff is None else verdict(diff.interval, self.delta)

    def row(self) -> list[str]:
        """#, claim, paper, seeds, δ, A, B, A − B per seed, A − B [95 % CI], verdict."""
        seeds = ", ".join(str(s) for s in self.seeds) or "—"
        head = [self.number, self.statement, self.paper, seeds, f"{100 * self.delta:.0f}"]
        if not self.a:
            return head + ["—", "—", "—", "—", "not run"]
        mean = lambda rs: 100 * float(np.mean([r.value for r in rs]))  # noqa: E731
        d = self.per_seed()
        per_seed = " / ".join(_points(x) for x in d)
        diff = self.difference()
        if diff is None:
            interval = f"{_points(d[0])} (1 seed: no interval)"
        else:
            i = diff.interval
            interval = f"{_points(i.estimate)} [{_points(i.low)}, {_points(i.high)}]"
        return head + [f"{self.a_label} {mean(self.a):.1f}", f"{self.b_label} {mean(self.b):.1f}", per_seed,
                       interval, self.verdict()]


def _per_kind(results: list, kind: str) -> str:
    vals = [r.details.get("per_kind", {}).get(kind, {}).get("value") for r in results]
    vals = [v for v in vals if v is not None]
    return f"{100 * np.mean(vals):.1f}" if vals else "—"


def build_claims(out: Path, runs: dict[tuple[str, int], Path], scale: Scale, main: Path, validity: Path | None,
                 detector: str, seeds: tuple[int, ...],
                 validity_seeds: tuple[int, ...]) -> tuple[list[Claim], list[list[str]]]:
    """Evaluate what is trained and assemble the claims (missing runs leave a claim 'not run').

    A seed enters a claim only when both its A and its B are trained, so A and B stay paired by seed.
    """
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
    def add(claim: Claim, seed: int, a, b) -> None:
        claim.a.append(a)
        claim.b.append(b)
        claim.seeds.append(seed)

    for seed in seeds:
        have = lambda name: (name, seed) in runs  # noqa: E731
        ev = lambda name, stage, tasks=(): evaluate_checkpoint(out, runs[(name, seed)], stage, main,  # noqa: E731
                                                               detector, tasks, scale)
        if have("foa-iv-objects") and have("foa-mel-objects"):
            iv, mel = ev("foa-iv-objects", "avsa", ("synth-foa-scenes",)), ev("foa-mel-objects", "avsa")
            add(claims[0], seed, iv["avsa-contrastive"], mel["avsa-contrastive"])
            avc = ev("foa-iv-objects", "avc", ("synth-foa-scenes",))
            add(claims[2], seed, iv["synth-foa-scenes"], avc["synth-foa-scenes"])
            if have("foa-iv-random"):
                add(claims[1], seed, avc["avc-contrastive"], ev("foa-iv-random", "avc")["avc-contrastive"])
        if have("stereo-objects"):
            st = ev("stereo-objects", "avsa", ("synth-binaural-scenes",))
            add(claims[3], seed, st["synth-binaural-scenes"],
                random_init_result(out, runs[("stereo-objects", seed)], "synth-binaural-scenes", scale))
    for c in claims[:1]:
        for label, rs in ((c.a_label, c.a), (c.b_label, c.b)):
            if rs:
                kinds.append([label, _per_kind(rs, "object"), _per_kind(rs, "random"),
                              f"{100 * np.mean([r.value for r in rs]):.1f}"])
    for seed in validity_seeds if validity is not None else ():
        if all((f"validity-{k}", seed) in runs for k in ("all", "pass", "random")):
            v = {k: ev_validity(out, runs[(f"validity-{k}", seed)], main, detector, scale)
                 for k in ("all", "pass", "random")}
            add(claims[4], seed, v["pass"], v["all"])
            add(claims[5], seed, v["pass"], v["random"])
    return claims, kinds


def ev_validity(out: Path, run: Path, main: Path, detector: str, scale: Scale):
    """AVSA contrastive accuracy of a Table I run, on the clean main world's test split."""
    return evaluate_checkpoint(out, run, "avsa", main, detector, (), scale)["avsa-contrastive"]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def decision_text(delta: float = DELTA) -> str:
    """The interval method and the verdict vocabulary, as the claims table states them."""
    d = f"{100 * delta:g}"
    return (f"Each claim's interval is the 95 % t-interval, over the seeds, of the per-seed paired difference "
            f"d_s = mean over test clips (scenes for claims 3–4) of A − B, A and B trained with seed s "
            f"(S − 1 degrees of freedom for S seeds): it carries the spread of training. Verdicts, with "
            f"δ = {d} points fixed before the run: **contradicted** if the interval lies below 0; else **holds** "
            f"if it lies above 0; else **equivalent** if it lies inside [−{d}, +{d}]; else **undecided**. A claim "
            f"trained with one seed is **not decidable (1 seed)**.")


def write_tables(out: Path, claims: list[Claim], kinds: list[list[str]], scale: Scale, scale_name: str,
                 minutes: float, validity_counts: dict | None, *, seeds: tuple[int, ...],
                 stereo_seeds: tuple[int, ...] = (), validity_seeds: tuple[int, ...] = ()) -> Path:
    header = ["#", "claim", "paper", "seeds", "δ (points)", "A (%)", "B (%)", "A − B per seed, points",
              "A − B, points [95% CI, t over seeds]", "verdict"]
    table1 = format_seeds(validity_seeds) if validity_seeds else "none"
    text = [f"# The paper's claims on the synthetic world "
            f"(`avsa experiments paper --scale {scale_name} --seeds {format_seeds(seeds)}`)", "",
            f"Seeds {format_seeds(seeds)} for claims 1–3 ({len(seeds)} seeds); claim 4 (the stereo model): seeds "
            f"{format_seeds(stereo_seeds) if stereo_seeds else 'none'}; Table I (claim 5): seeds {table1}; "
            f"δ = {100 * DELTA:g} points for every claim. {scale.videos} videos of {scale.duration_s:g} s; tiny "
            f"models, AVC {scale.avc_steps} + AVSA {scale.avsa_steps} steps; object crops from the demo's blob "
            f"detector (on the equirect frame), for training and evaluation; {scale.eval_windows} test windows per "
            f"clip, {scale.scene_test_per_class} test scenes per class. Wall time {minutes:.0f} min.", "",
            decision_text(), "",
            _markdown(header, [c.row() for c in claims]), ""]
    if kinds:
        text += ["AVSA contrastive accuracy by crop kind (mean over seeds, %; chance 25):", "",
                 _markdown(["features", "object-centred crops", "random crops (empty quadrants)", "all"], kinds), ""]
    if validity_counts:
        text += [f"Table I world: {validity_counts}", ""]
    path = out / "claims.md"
    path.write_text("\n".join(text))
    per_claim = {}
    for c in claims:
        diff = c.difference() if c.a else None
        per_claim[c.number] = {"seeds": list(c.seeds), "delta": c.delta, "verdict": c.verdict(),
                               "per_seed": c.per_seed() if c.a else None,
                               "interval": asdict(diff.interval) if diff else None}
    (out / "claims.json").write_text(json.dumps({"scale": asdict(scale), "seeds": list(seeds),
                                                 "stereo_seeds": list(stereo_seeds),
                                                 "validity_seeds": list(validity_seeds), "delta": DELTA,
                                                 "rows": [c.row() for c in claims], "claims": per_claim,
                                                 "kinds": kinds}, indent=1))
    return path


def run_paper(out: Path, scale: str | Scale, *, cache: Path | None = None, only: str = "all", jobs: int = 1,
              seeds: tuple[int, ...] | None = None, validity_seeds: int | None = None) -> Path:
    """Everything of ``avsa experiments paper``; returns ``claims.md``.

    ``scale``: a name of :data:`SCALES` or a :class:`Scale`; ``cache``: reuse a prepared
    synthetic cache (the demo's detector runs on it); ``only``: ``claims``, ``validity`` or ``all``;
    ``jobs``: variants trained at once (spawned processes, one PyTorch thread each); ``seeds``: training
    seeds of claims 1–3 (default ``0 … scale.seeds − 1``; claim 4 takes the first ``scale.stereo_seeds``);
    ``validity_seeds``: how many of them (the first)
    Table I trains with (default ``scale.validity_seeds``).
    """
    t0 = time.perf_counter()
    scale_name = scale if isinstance(scale, str) else "custom"
    scale = SCALES[scale] if isinstance(scale, str) else scale
    seeds = tuple(range(scale.seeds)) if seeds is None else tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"seeds must be distinct non-negative integers, got {seeds}")
    n_validity = scale.validity_seeds if validity_seeds is None else validity_seeds
    if not 1 <= n_validity <= len(seeds):
        raise InputError(f"Table I seeds must be between 1 and the number of seeds ({len(seeds)}), got {n_validity}")
    table1, stereo = seeds[:n_validity], seeds[:scale.stereo_seeds]
    if len(seeds) < MIN_SEEDS:
        warnings.warn(f"{len(seeds)} seed(s): the intervals over seeds will be wide and claims 1–3 may stay "
                      f"undecided; {MIN_SEEDS} or more decide them", stacklevel=2)
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
    todo = [(v, s) for v, s in variants(detector, seeds, stereo, table1)
            if only == "all" or (v.cache == "validity") == (only == "validity")]
    runs = train_all(out, todo, scale, caches, jobs=jobs)
    print("\n== evaluating", flush=True)
    claims, kinds = build_claims(out, runs, scale, main, validity, detector, seeds, table1)
    counts = None
    if validity is not None:
        counts = {k: len((validity.parent / "lists" / f"{k}.txt").read_text().split())
                  for k in ("all", "pass", "random")}
        counts = (f"{counts['all']} training clips, {counts['pass']} pass the validity test; "
                  f"random subset {counts['random']}")
    path = write_tables(out, claims, kinds, scale, scale_name, (time.perf_counter() - t0) / 60, counts,
                        seeds=seeds, stereo_seeds=stereo, validity_seeds=table1 if validity is not None else ())
    print("\n" + path.read_text())
    return path


def compare_runs(a: Path, b: Path) -> str:
    """Markdown comparing the verdicts of two ``paper`` runs (their ``--out`` folders), claim by claim.

    Raises
    ------
    InputError
        A folder without ``claims.json`` (the run has not finished), or runs of different scales (test sizes
        included).
    """
    runs = []
    for folder in (a, b):
        path = Path(folder) / "claims.json"
        if not path.is_file():
            raise InputError(f"{folder}: no claims.json (run avsa experiments paper --out {folder} first)")
        runs.append(json.loads(path.read_text()))
    if runs[0]["scale"] != runs[1]["scale"]:
        differ = sorted(k for k in set(runs[0]["scale"]) | set(runs[1]["scale"])
                        if runs[0]["scale"].get(k) != runs[1]["scale"].get(k))
        raise InputError(f"{a} and {b} were run at different scales ({', '.join(differ)} differ): their verdicts "
                         f"are not comparable")
    shared = sorted(set(runs[0]["seeds"]) & set(runs[1]["seeds"]))
    names = [f"seeds {format_seeds(tuple(r['seeds']))}" for r in runs]
    header = ["#", "claim", f"{names[0]}: A − B [95% CI]", "verdict", f"{names[1]}: A − B [95% CI]", "verdict",
              "same verdict", "both sets pooled: A − B [95% CI]", "verdict"]
    rows, differ, undecided = [], [], []
    by_number = [{row[0]: row for row in r["rows"]} for r in runs]
    for number, row_a in by_number[0].items():
        row_b = by_number[1].get(number)
        if row_b is None:
            continue
        same = row_a[-1] == row_b[-1]
        if not same:
            differ.append(number)
        if number in ("1", "2", "3") and "undecided" in (row_a[-1], row_b[-1]):
            undecided.append(number)
        rows.append([number, row_a[1], row_a[-2], row_a[-1], row_b[-2], row_b[-1], "yes" if same else "**no**",
                     *_pooled([r.get("claims", {}).get(number) for r in runs], shared)])
    text = [_markdown(header, rows), "",
            "Every claim has the same verdict in both runs." if not differ else
            f"The verdicts differ for claim(s) {', '.join(differ)}.",
            "None of claims 1–3 is undecided." if not undecided else
            f"Undecided among claims 1–3: {', '.join(undecided)}.",
            "Pooled: the same t-interval over the seeds of both runs together (each seed's d_s as its run "
            "measured it), the decision more seeds would give; whether it is stable needs two disjoint sets of "
            "that many seeds."]
    if shared:
        text.append(f"Warning: the runs share seed(s) {', '.join(map(str, shared))}; they are not independent.")
    return "\n".join(text)


def _pooled(claims: list, shared: list) -> list[str]:
    """Interval and verdict of one claim over the seeds of two runs together (``claims.json`` entries)."""
    from avsa.evaluate.intervals import seed_level_difference

    if shared or any(c is None or not c.get("per_seed") for c in claims):
        return ["—", "—"]
    d = [x for c in claims for x in c["per_seed"]]
    interval = seed_level_difference([[x] for x in d], [[0.0] for _ in d]).interval  # d_s, one item per seed
    return [f"{_points(interval.estimate)} [{_points(interval.low)}, {_points(interval.high)}] ({len(d)} seeds)",
            verdict(interval, claims[0].get("delta", DELTA))]


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from the command line: ``"0-5"``, ``"6,7,8,9,10,11"`` or both mixed (``"0-2,7"``), in that order.

    Raises
    ------
    InputError
        An empty list, a part that is not a non-negative integer or an increasing range ``a-b``, or a seed
        given twice; the message names the part.
    """
    if not text.strip():
        raise InputError("--seeds: no seed given (write e.g. 0-5 or 6,7,8,9,10,11)")
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise InputError(f"--seeds: {part!r} in {text!r} is not a seed or a range of seeds "
                             f"(write e.g. 0-5 or 6,7,8,9,10,11)")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise InputError(f"--seeds: the range {part!r} ends before it starts (write {high}-{low})")
        seeds += range(low, high + 1)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise InputError(f"--seeds: {text!r} names seed(s) {', '.join(map(str, repeated))} more than once")
    return tuple(seeds)


def format_seeds(seeds: tuple[int, ...]) -> str:
    """The shortest :func:`parse_seeds` text of ``seeds`` (runs of consecutive seeds as ranges)."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if j == i else f"{seeds[i]},{seeds[j]}" if j == i + 1 else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=("paper", "compare"),
                        help="paper: train and decide the claims; compare: the verdicts of two paper runs")
    parser.add_argument("folders", nargs="*", type=Path, default=[],
                        help="compare: the --out folders of two paper runs (e.g. on disjoint seed sets)")
    parser.add_argument("--scale", choices=tuple(SCALES), default="small")
    parser.add_argument("--out", type=Path, default=Path("experiments_out"), help="output folder (reused on rerun)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="an existing prepared synthetic cache (skips building the world; "
                             "the demo's detector runs on it)")
    parser.add_argument("--only", choices=("all", "claims", "validity"), default="all")
    parser.add_argument("--seeds", default=None,
                        help="training seeds, e.g. 0-5 or 6,7,8,9,10,11 (default 0 … the scale's seeds − 1; "
                             "run two disjoint sets into two --out folders to see whether the verdicts agree)")
    parser.add_argument("--validity-seeds", type=int, default=None,
                        help="Table I trains with the first N of --seeds (default: the scale's, 1 at small and "
                             "6 at full; claim 5 is decided from 2 on)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="variants trained at once, one thread each (default 2: tiny models train faster "
                             "two at a time on one thread each than one at a time on two)")


def run(args: argparse.Namespace) -> int:
    if args.experiment == "compare":
        if len(args.folders) != 2:
            raise InputError(f"experiments compare needs two run folders, got {len(args.folders)}")
        print(compare_runs(*args.folders))
        return 0
    if args.folders:
        raise InputError(f"experiments paper takes no folders (got {', '.join(map(str, args.folders))}); "
                         "name its output with --out")
    if args.cache is not None and not (args.cache / "manifest.csv").is_file():
        raise InputError(f"{args.cache}: not a prepared cache (no manifest.csv; run avsa prepare first)")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    run_paper(args.out, args.scale, cache=args.cache, only=args.only, jobs=args.jobs, seeds=seeds,
              validity_seeds=args.validity_seeds)
    return 0
