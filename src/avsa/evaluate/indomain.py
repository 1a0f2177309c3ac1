"""In-domain evaluation (paper Table II) on a prepared cache.

Fixed windows of the test split (no augmentation), four crops per window
(object-oriented when the cache has detections of ``detector``, else random):

- ``avsa-contrastive``: with the model's own heads, does each crop's audio pick
  its own crop among the window's four? (chance 25%) — also per crop kind
  (object-centred vs random) in ``details``.
- ``avsa-contrastive-other-audio``: the same with every window's sound field
  replaced by another clip's, rotated to the same crops (a control, chance
  25%): what stays above chance does not come from this clip's sound, e.g. a
  crop's look matched to its direction or elevation.
- ``avsa-sound-dependent``: the headline, AVSA contrastive minus its control
  on the same crops (points; 0 for a model that ignores the sound), with a
  paired interval.
- ``avc-contrastive``: does the audio of a window's crop k pick the video of
  crop k of its own clip among ``group`` windows, one per clip? (chance
  1/group). All four crops count, per crop kind in ``details``; an AVSA
  checkpoint scores each window with its four crops as context, as in training.
- ``avc-binary``: is this audio from this clip? Crop + its audio vs crop + the
  audio of another clip rotated to the same direction; chance 50%.
- ``avsa-binary``: is this audio spatially aligned? Crop + its audio vs crop +
  the sound field first rotated by a random yaw in [45°, 315°]; chance 50%.

The binary tasks train a logistic regression on frozen encoder embeddings
(features [v, a, v⊙a, |v − a|], standardised; [v, a] when the encoders'
sizes differ) on windows of the training split and test on the test split.
Every accuracy is a :class:`Result` with a 95% interval by a bootstrap over
clips (crops and windows of a clip are correlated).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from avsa.data.loader import KINDS, SampleDataset, collate
from avsa.data.samples import audio_format, crop_video, rotated_audio
from avsa.evaluate.intervals import bootstrap_interval, paired_difference
from avsa.inference.pretrained import Pretrained
from avsa.evaluate.results import Result
from avsa.media.cache import Cache
from avsa.media.clips import windows_for_eval
from avsa.spatial import ambisonics, sphere


def _windows(pretrained: Pretrained, cache: Cache, split: str, n_per_clip: int, crops: str, detector: str,
             seed: int) -> SampleDataset:
    d = pretrained.config.data
    windows = windows_for_eval(cache, split, n_per_clip, seed, window_s=d.window_s, n_frames=d.n_frames, fps=d.fps)
    if not windows:
        raise ValueError(f"{cache.root}: no evaluation windows in split {split!r}")
    return SampleDataset(cache, split=split, crop_mode=crops, n_crops=4, detector=detector, window_s=d.window_s,
                         n_frames=d.n_frames, fps=d.fps, sample_rate=d.sample_rate, seed=seed, augment=False,
                         windows=windows)


def _batch_bounds(ids: list[str], batch_size: int = 16) -> list[tuple[int, int]]:
    """(first, end) of each batch over windows ordered by clip: whole clips, at least ``batch_size`` windows
    and two clips each, save the last batch, which joins the one before it when it would hold one clip only.

    (The AVC-binary negatives and the control's sound of a window come from another clip of its batch, so a
    batch never holds one clip alone, however many windows a clip has.)
    """
    starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]  # first window of each clip
    bounds, first = [], 0
    for clip, start in enumerate(starts):
        end = starts[clip + 1] if clip + 1 < len(starts) else len(ids)
        if end - first >= batch_size and start > first:
            bounds.append((first, end))
            first = end
    if first < len(ids):
        if bounds and len(set(ids[first:])) == 1:
            bounds[-1] = (bounds[-1][0], len(ids))
        else:
            bounds.append((first, len(ids)))
    return bounds


def _batches(dataset: SampleDataset, batch_size: int = 16):
    """Batches of consecutive windows (:func:`_batch_bounds`)."""
    for first, end in _batch_bounds([w.clip_id for w in dataset.windows.windows], batch_size):
        batch = collate([dataset[i] for i in range(first, end)])
        if hasattr(batch, "clip_ids"):
            yield batch


@torch.no_grad()
def _embed(p: Pretrained, raw, foa: torch.Tensor | None = None):
    """Encoder embeddings (B, K, dim) of a raw batch's crops and (optionally replaced) FOA."""
    raw = raw.to(p.device)
    if foa is not None:
        raw.foa = foa.to(p.device)
    video = crop_video(raw, crop_size=p.crop_size, augment=False)  # (B, K, 3, T, S, S)
    audio = p.audio_input(audio_format(rotated_audio(raw, augment=False), p.fmt))  # (B, K, C, 100, 128)
    b, k = video.shape[:2]
    v, a = p.encode(video.flatten(0, 1), audio.flatten(0, 1))
    return v.unflatten(0, (b, k)), a.unflatten(0, (b, k))


def _yaw_misaligned(foa: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each window's field rotated by a random yaw in [45°, 315°] (clearly misaligned)."""
    yaw = torch.as_tensor(rng.uniform(math.radians(45), math.radians(315), size=foa.shape[0]), dtype=foa.dtype)
    return ambisonics.rotate(foa, sphere.yaw(yaw).to(foa.dtype))


def _other_clip(foa: torch.Tensor, clip_ids: list[str]) -> torch.Tensor:
    """Each window gets the audio of the next window that comes from another clip."""
    n = len(clip_ids)
    order = []
    for i in range(n):
        j = next(((i + s) % n for s in range(1, n) if clip_ids[(i + s) % n] != clip_ids[i]), None)
        if j is None:
            raise ValueError("AVC-binary needs windows from at least two clips in a batch")
        order.append(j)
    return foa[order]


def _pair_features(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    if v.shape[-1] != a.shape[-1]:  # an audio encoder wider than the video one: no element-wise terms
        return torch.cat([v, a], dim=-1)
    return torch.cat([v, a, v * a, (v - a).abs()], dim=-1)


def _collect(p: Pretrained, dataset: SampleDataset, seed: int):
    """Positive and negative pair features for both binary tasks, plus the model's scores and embeddings."""
    rng = np.random.default_rng(seed)
    out = {"avc": [], "avsa": [], "groups": [], "scores": [], "scores_other": [], "kinds": [], "v": [], "a": [],
           "directions": []}
    for raw in _batches(dataset):
        v, a = _embed(p, raw)
        directions = torch.stack([raw.azimuth, raw.elevation], dim=-1).to(p.device)  # (B, K, 2)
        _, a_other = _embed(p, raw, _other_clip(raw.foa, raw.clip_ids))
        _, a_yaw = _embed(p, raw, _yaw_misaligned(raw.foa, rng))
        out["avc"].append((_pair_features(v, a), _pair_features(v, a_other)))
        out["avsa"].append((_pair_features(v, a), _pair_features(v, a_yaw)))
        out["groups"].extend(raw.clip_ids)
        out["kinds"].append(raw.kind)
        out["v"].append(v)
        out["a"].append(a)
        out["directions"].append(directions)
        out["scores"].append(p.spatial_scores(v, a, directions))  # (B, K audio, K video), the model's own heads
        out["scores_other"].append(p.spatial_scores(v, a_other, directions))  # the control: another clip's sound
    return out


def _per_clip_groups(clip_ids: list[str], group: int, seed: int) -> list[list[int]]:
    """Retrieval groups of window indices: one window per clip in a group, ``group`` clips each.

    Group g of a round takes the g-th window of each of its clips, so no window
    competes with another window of its own clip; the clips are shuffled once
    (by ``seed``) and cut into groups of ``group`` (a remainder smaller than
    ``group`` is left out, so the chance level is the same for every group).
    """
    by_clip: dict[str, list[int]] = {}
    for index, clip in enumerate(clip_ids):
        by_clip.setdefault(clip, []).append(index)
    clips = list(by_clip)
    order = [clips[i] for i in np.random.default_rng(seed).permutation(len(clips))]
    groups = []
    for round_ in range(max(len(w) for w in by_clip.values())):
        members = [by_clip[c][round_] for c in order if round_ < len(by_clip[c])]
        groups.extend(members[first:first + group] for first in range(0, len(members) - group + 1, group))
    return groups


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, *, epochs: int = 300, weight_decay: float = 1e-3,
                  seed: int = 0) -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    clf = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(clf.parameters(), lr=0.5, max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(clf(z)[:, 0], y)
        loss = loss + weight_decay * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return clf, mean, std


def _binary(train, test, groups: list[str], seed: int) -> tuple[np.ndarray, list[str]]:
    def stack(pairs):
        pos = torch.cat([p.flatten(0, 1) for p, _ in pairs])
        neg = torch.cat([n.flatten(0, 1) for _, n in pairs])
        return torch.cat([pos, neg]).cpu(), torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])

    x_train, y_train = stack(train)
    x_test, y_test = stack(test)
    clf, mean, std = _fit_logistic(x_train, y_train, seed=seed)
    with torch.no_grad():
        correct = ((clf((x_test - mean) / std)[:, 0] > 0).float() == y_test).numpy()
    k = test[0][0].shape[1]
    crop_groups = [g for g in groups for _ in range(k)]
    return correct, crop_groups + crop_groups


def _result(task: str, correct, groups, *, chance: float, checkpoint: str, seed: int, details=None) -> Result:
    interval = bootstrap_interval(np.asarray(correct, dtype=float), groups=list(groups), seed=seed)
    # per-trial outcomes, so two checkpoints evaluated on the same windows can be compared pairwise
    outcomes = {"hits": np.asarray(correct).astype(int).tolist(), "groups": list(groups)}
    return Result(task=task, value=float(interval.estimate), low=float(interval.low), high=float(interval.high),
                  n=len(correct), n_groups=len(set(groups)), chance=chance, checkpoint=checkpoint,
                  details={**(details or {}), **outcomes})


def run_indomain(pretrained: Pretrained, cache: Cache | str, *, split: str = "test", train_split: str = "train",
                 n_per_clip: int = 4, crops: str | None = None, detector: str | None = None, group: int = 16,
                 seed: int = 0, binary: bool = True, suffix: str = "") -> dict[str, Result]:
    """All in-domain accuracies of a checkpoint on a cache (see the module docstring).

    Parameters
    ----------
    pretrained : Pretrained
    cache : Cache or path
    split, train_split : manifest splits to test on and to fit the binary classifiers on
    n_per_clip : fixed windows per clip
    crops : "objects" | "random" | "audio"; default objects when ``CACHE/detections/<detector>`` exists
    detector : detections folder; default the training config's
    group : clips per AVC-contrastive ranking (chance 1/group; at most the number of test clips)
    binary : also fit and test the two binary tasks (they need windows of ``train_split`` too)
    suffix : appended to every task name (e.g. ``-jittered`` for a second set of crops)
    """
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    detector = detector or pretrained.config.data.detector
    if crops is None:
        crops = "objects" if cache.detections_dir(detector).is_dir() else "random"
    test = _collect(pretrained, _windows(pretrained, cache, split, n_per_clip, crops, detector, seed), seed)
    train = None
    if binary:
        train = _collect(pretrained, _windows(pretrained, cache, train_split, n_per_clip, crops, detector, seed + 1),
                         seed + 1)
    ckpt, results = pretrained.checkpoint, {}

    # AVSA contrastive: audio l picks crop l among the window's 4 (per crop kind too)
    scores = torch.cat(test["scores"]).cpu()  # (W, K, K)
    kinds = torch.cat(test["kinds"]).cpu()  # (W, K)
    w, k, _ = scores.shape
    hit = (scores.argmax(-1) == torch.arange(k)).numpy()  # (W, K)
    crop_groups = [g for g in test["groups"] for _ in range(k)]
    hit, other = hit.ravel(), (torch.cat(test["scores_other"]).cpu().argmax(-1) == torch.arange(k)).numpy().ravel()
    per_kind, sound_per_kind = {}, {}  # crops on a detection vs. the random fill of empty quadrants
    for index, kind in enumerate(KINDS):
        mask = (kinds == index).numpy().ravel()
        if mask.any():
            groups = [g for g, m in zip(crop_groups, mask) if m]
            r = _result(f"avsa-contrastive-{kind}", hit[mask], groups, chance=0.25, checkpoint=ckpt, seed=seed)
            per_kind[kind] = {"value": r.value, "low": r.low, "high": r.high, "n": r.n}
            part = paired_difference(hit[mask].astype(float), other[mask].astype(float), groups=groups,
                                     seed=seed).interval
            sound_per_kind[kind] = {"value": part.estimate, "low": part.low, "high": part.high, "n": part.n,
                                    "avsa": float(hit[mask].mean()), "control": float(other[mask].mean())}
    results["avsa-contrastive"] = _result("avsa-contrastive", hit, crop_groups, chance=0.25,
                                          checkpoint=ckpt, seed=seed, details={
                                              "per_kind": per_kind, "crops": crops,
                                              "kinds": [KINDS[i] for i in kinds.numpy().ravel()]})
    results["avsa-contrastive-other-audio"] = _result(
        "avsa-contrastive-other-audio", other, crop_groups, chance=0.25, checkpoint=ckpt, seed=seed,
        details={"audio": "each window's sound field replaced by another clip's, rotated to the same crops"})
    # what the clip's own sound decides: AVSA minus its control, paired crop by crop (and by crop kind above)
    paired = paired_difference(hit.astype(float), other.astype(float), groups=crop_groups, seed=seed)
    d = paired.interval
    results["avsa-sound-dependent"] = Result(
        task="avsa-sound-dependent", value=d.estimate, low=d.low, high=d.high, n=d.n, n_groups=d.n_groups,
        metric="accuracy difference", chance=0.0, checkpoint=ckpt,
        details={"of": "avsa-contrastive minus avsa-contrastive-other-audio", "p_value": paired.p_value,
                 "per_kind": sound_per_kind,
                 "interval": "paired cluster bootstrap: the same crops with and without the clip's own sound, "
                             "the windows of a clip resampled together"})

    # AVC contrastive: crop k's audio of a window picks the same crop's video of its own clip among
    # `group` windows of distinct clips; each window's crops go through the heads together (its context)
    v_all, a_all, d_all = torch.cat(test["v"]), torch.cat(test["a"]), torch.cat(test["directions"])
    clips_n = len(set(test["groups"]))
    group = max(2, min(group, clips_n))  # few test clips: rank among all of them
    avc_hits, avc_groups, avc_kinds = [], [], []
    for members in _per_clip_groups(test["groups"], group, seed):
        idx = torch.as_tensor(members)
        sims = pretrained.clip_scores(v_all[idx], a_all[idx], d_all[idx]).cpu()  # (G audio, K, G video)
        own = torch.arange(len(members))[:, None]
        avc_hits.extend((sims.argmax(-1) == own).numpy().ravel().tolist())
        avc_groups.extend(test["groups"][i] for i in members for _ in range(k))
        avc_kinds.extend(kinds[idx].numpy().ravel().tolist())
    if avc_hits:
        hits_arr, kinds_arr = np.asarray(avc_hits), np.asarray(avc_kinds)
        avc_per_kind = {}
        for index, kind in enumerate(KINDS):
            mask = kinds_arr == index
            if mask.any():
                r = _result(f"avc-contrastive-{kind}", hits_arr[mask], [g for g, m in zip(avc_groups, mask) if m],
                            chance=1 / group, checkpoint=ckpt, seed=seed)
                avc_per_kind[kind] = {"value": r.value, "low": r.low, "high": r.high, "n": r.n}
        results["avc-contrastive"] = _result("avc-contrastive", avc_hits, avc_groups, chance=1 / group,
                                             checkpoint=ckpt, seed=seed,
                                             details={"group": group, "per_kind": avc_per_kind, "crops": crops,
                                                      "kinds": [KINDS[i] for i in avc_kinds]})

    # binary tasks on frozen encoders
    for task in ("avc", "avsa") if binary else ():
        correct, groups = _binary(train[task], test[task], test["groups"], seed)
        results[f"{task}-binary"] = _result(f"{task}-binary", correct, groups, chance=0.5, checkpoint=ckpt,
                                            seed=seed, details={"classifier": "logistic regression on [v, a, v*a, |v-a|]",
                                                                "negatives": "other clip's audio" if task == "avc"
                                                                else "field rotated by a yaw in [45°, 315°]"})
    for result in results.values():
        result.task += suffix
        result.details["detector"] = detector
    return {name + suffix: result for name, result in results.items()}
