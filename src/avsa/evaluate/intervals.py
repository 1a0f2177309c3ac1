"""Confidence intervals for accuracies and for differences between systems.

- :func:`wilson_interval` — a proportion over ``n`` independent items.
- :func:`bootstrap_interval` — the mean of per-item values; with ``groups``,
  a cluster bootstrap that resamples whole groups (crops of one clip, clips of
  one video, segments of one recording site), because items in a group are
  not independent.
- :func:`paired_difference` — mean(a) − mean(b) of two systems scored on the
  same items, with a paired (cluster) bootstrap interval and a two-sided
  bootstrap p-value; experiments use it to say whether a claim holds.
- :func:`accuracy_interval` — Wilson when items are independent, else the
  cluster bootstrap.
- :func:`seed_level_difference` — A − B for models trained with several
  seeds (A and B of one seed scored on the same items): an interval over the
  seeds' mean differences, so training's own spread is in it (a t-interval,
  or a two-level bootstrap of seeds, then groups within each seed).

Bootstrap intervals are percentile intervals. Resampling is done with
multinomial group weights, so the cost is ``O(n_boot · n_groups)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from avsa.errors import InputError


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval.

    Attributes
    ----------
    estimate, low, high : float
    n : int
        Number of items.
    n_groups : int
        Number of independent units resampled (= ``n`` without groups).
    confidence : float
    method : str
        ``"wilson"``, ``"bootstrap"`` / ``"cluster-bootstrap"``, or for
        :func:`seed_level_difference` ``"t over seeds"`` /
        ``"two-level bootstrap"``.
    """

    estimate: float
    low: float
    high: float
    n: int
    n_groups: int
    confidence: float
    method: str

    def __str__(self) -> str:
        return f"{100 * self.estimate:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) − mean(b) with a paired bootstrap interval.

    Attributes
    ----------
    interval : Interval
        Of the difference.
    p_value : float
        Two-sided bootstrap p-value for "no difference" (twice the smaller tail
        mass of the bootstrap distribution at 0, at most 1).
    """

    interval: Interval
    p_value: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    return float(_scipy_stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of correct items, 0 ≤ successes ≤ n.
    n : int
        Number of independent items, > 0.
    confidence : float
        Two-sided level in (0, 1).

    Returns
    -------
    Interval
        ``estimate = successes / n``; the bounds solve
        ``|p̂ − p| = z·sqrt(p(1 − p)/n)``.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise InputError(f"need 0 ≤ successes ≤ n and n > 0, got successes={successes}, n={n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, n, confidence, "wilson")


def _group_sums(values: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Per-group sums of ``values`` (…, n) → (…, G) and counts (G,)."""
    if groups is None:
        return values, np.ones(values.shape[-1])
    groups = np.asarray(groups)
    if groups.shape != (values.shape[-1],):
        raise InputError(f"groups must have one entry per item ({values.shape[-1]}), got shape {groups.shape}")
    _, index = np.unique(groups, return_inverse=True)
    sums = np.stack([np.bincount(index, weights=v, minlength=index.max() + 1) for v in values.reshape(-1, values.shape[-1])])
    return sums.reshape(values.shape[:-1] + (-1,)), np.bincount(index).astype(float)


def _boot_means(sums: np.ndarray, counts: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of ratio-of-sums means: (…, G) → (…, n_boot)."""
    if n_boot < 1:
        raise InputError(f"n_boot must be ≥ 1, got {n_boot}")
    n_groups = counts.shape[0]
    weights = np.random.default_rng(seed).multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    return (sums @ weights.T) / (weights @ counts)


def _check_values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name} contains NaN or inf")
    return values


def bootstrap_interval(values, *, groups=None, n_boot: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of per-item ``values``.

    Parameters
    ----------
    values : array_like, shape (n,)
        Per-item scores (1/0 for correct/wrong, or any real value).
    groups : array_like, shape (n,), optional
        Group label of each item; whole groups are resampled (cluster
        bootstrap) and the mean is the ratio of resampled sums to counts.
    n_boot : int
        Bootstrap replicates.
    confidence : float
    seed : int
        Same seed → same interval.

    Returns
    -------
    Interval
    """
    values = _check_values(values, "values")
    _z(confidence)
    sums, counts = _group_sums(values[None], groups)
    boots = _boot_means(sums, counts, n_boot=n_boot, seed=seed)[0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    method = "bootstrap" if groups is None else "cluster-bootstrap"
    return Interval(float(values.mean()), float(low), float(high), values.size, counts.size, confidence, method)


def paired_difference(a, b, *, groups=None, n_boot: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> PairedDifference:
    """mean(a) − mean(b) for two systems scored on the same items.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Per-item scores of system A and system B, aligned item by item.
    groups : array_like, shape (n,), optional
        Resample whole groups (the same resample for both systems).
    n_boot, confidence, seed
        As in :func:`bootstrap_interval`.

    Returns
    -------
    PairedDifference
        The interval excludes 0 when the difference is significant at
        ``1 − confidence``.
    """
    a, b = _check_values(a, "a"), _check_values(b, "b")
    if a.shape != b.shape:
        raise InputError(f"a and b must score the same items, got {a.size} and {b.size}")
    _z(confidence)
    diff = a - b
    sums, counts = _group_sums(diff[None], groups)
    boots = _boot_means(sums, counts, n_boot=n_boot, seed=seed)[0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    tail = min(np.mean(boots <= 0), np.mean(boots >= 0))
    method = "bootstrap" if groups is None else "cluster-bootstrap"
    interval = Interval(float(diff.mean()), float(low), float(high), diff.size, counts.size, confidence, method)
    return PairedDifference(interval=interval, p_value=float(min(1.0, 2 * tail)))


def accuracy_interval(correct, *, groups=None, n_boot: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """Accuracy of per-item 0/1 outcomes with a 95 % interval.

    Wilson when every item is its own group (``groups`` None or all distinct),
    otherwise the cluster bootstrap over groups.

    Parameters
    ----------
    correct : array_like of bool, shape (n,)
    groups : array_like, shape (n,), optional
    n_boot, confidence, seed
        For the bootstrap.

    Returns
    -------
    Interval
    """
    correct = _check_values(correct, "correct")
    if groups is None or np.unique(np.asarray(groups)).size == correct.size:
        return wilson_interval(int(correct.sum()), correct.size, confidence=confidence)
    return bootstrap_interval(correct, groups=groups, n_boot=n_boot, confidence=confidence, seed=seed)


@dataclass(frozen=True)
class SeedLevelDifference:
    """A − B over training seeds.

    Attributes
    ----------
    interval : Interval
        Of the mean over seeds of the per-seed differences; ``n`` is the
        number of items summed over seeds, ``n_groups`` the number of seeds.
    per_seed : tuple of float
        d_s = mean over seed s's items of (a − b), one per seed, in input order.
    """

    interval: Interval
    per_seed: tuple[float, ...]


def seed_level_difference(per_seed_a, per_seed_b, groups_per_seed=None, *, method: str = "t",
                          confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> SeedLevelDifference:
    """Mean over seeds of the paired difference A − B, with an interval that carries training's spread.

    For each seed s, models A and B trained with seed s are scored on the same
    items, and d_s = mean(a_s − b_s). Every seed weighs the same; the estimate
    is d̄ = mean over seeds of d_s.

    Parameters
    ----------
    per_seed_a, per_seed_b : sequence of array_like, S entries of shape (n_s,)
        Per-item scores of A and of B, one array per seed, aligned item by
        item within a seed. S ≥ 2.
    groups_per_seed : sequence of array_like, S entries of shape (n_s,), optional
        Group label of each item (clip, scene); used by the two-level
        bootstrap only, which resamples whole groups within a seed.
    method : {"t", "bootstrap"}
        ``"t"``: d̄ ± t_{(1+confidence)/2, S−1} · sd(d_s) / sqrt(S), sd with
        S − 1 in the denominator (``Interval.method`` "t over seeds").
        ``"bootstrap"``: percentile interval of a two-level bootstrap — draw
        S seeds with replacement, then for each draw resample that seed's
        groups (items without ``groups_per_seed``) with replacement and take
        its mean difference; a replicate is the mean of the S draws
        (``Interval.method`` "two-level bootstrap").
    confidence : float
        Two-sided level in (0, 1).
    n_boot, seed
        Replicates and random seed of the bootstrap (same seed → same interval).

    Returns
    -------
    SeedLevelDifference

    Raises
    ------
    InputError
        Fewer than 2 seeds, mismatched shapes, non-finite scores, an unknown
        ``method``.

    Notes
    -----
    The clip-level interval of :func:`paired_difference` treats the trained
    models as fixed; with a few seeds whose d_s differ by more than the
    clip-to-clip noise, only an interval over seeds says whether another set
    of seeds would agree.
    """
    if method not in ("t", "bootstrap"):
        raise InputError(f"method must be 't' or 'bootstrap', got {method!r}")
    _z(confidence)
    if len(per_seed_a) != len(per_seed_b):
        raise InputError(f"a and b must have the same seeds, got {len(per_seed_a)} and {len(per_seed_b)}")
    n_seeds = len(per_seed_a)
    if n_seeds < 2:
        raise InputError(f"an interval over seeds needs at least 2 seeds, got {n_seeds}")
    if groups_per_seed is not None and len(groups_per_seed) != n_seeds:
        raise InputError(f"groups_per_seed must have one entry per seed ({n_seeds}), got {len(groups_per_seed)}")
    diffs = []
    for s, (a, b) in enumerate(zip(per_seed_a, per_seed_b)):
        a, b = _check_values(a, f"a of seed {s}"), _check_values(b, f"b of seed {s}")
        if a.shape != b.shape:
            raise InputError(f"seed {s}: a and b must score the same items, got {a.size} and {b.size}")
        diffs.append(a - b)
    per_seed = np.array([d.mean() for d in diffs])
    estimate = float(per_seed.mean())
    n_items = sum(d.size for d in diffs)
    if method == "t":
        half = (_scipy_stats.t.ppf(0.5 + confidence / 2, df=n_seeds - 1)
                * per_seed.std(ddof=1) / np.sqrt(n_seeds))
        interval = Interval(estimate, estimate - float(half), estimate + float(half), n_items, n_seeds,
                            confidence, "t over seeds")
        return SeedLevelDifference(interval, tuple(float(d) for d in per_seed))
    if n_boot < 1:
        raise InputError(f"n_boot must be ≥ 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    # outer level: which seed each of the S draws of a replicate is (n_boot, S)
    drawn = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    boots = np.zeros(n_boot)
    for s, d in enumerate(diffs):
        sums, counts = _group_sums(d[None], None if groups_per_seed is None else groups_per_seed[s])
        # inner level: an independent resample of seed s's groups for every draw of it
        inner = _boot_means(sums, counts, n_boot=n_boot * n_seeds, seed=int(rng.integers(2**31)))[0]
        boots += np.where(drawn == s, inner.reshape(n_boot, n_seeds), 0.0).sum(axis=1)
    boots /= n_seeds
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    interval = Interval(estimate, float(low), float(high), n_items, n_seeds, confidence, "two-level bootstrap")
    return SeedLevelDifference(interval, tuple(float(d) for d in per_seed))
