"""Confidence intervals: analytic Wilson bounds, coverage on simulated data, paired differences."""

import numpy as np
import pytest
from scipy import optimize, stats

from avsa.errors import InputError
from avsa.evaluate.intervals import (accuracy_interval, bootstrap_interval, paired_difference,
                                     seed_level_difference, wilson_interval)


def _wilson_by_root_finding(k, n, confidence=0.95):
    """Independent route: the bounds are the p where |k/n − p| = z·sqrt(p(1−p)/n)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    p_hat = k / n

    def f(p):
        return abs(p_hat - p) - z * np.sqrt(p * (1 - p) / n)

    low = 0.0 if k == 0 else optimize.brentq(f, 1e-12, p_hat - 1e-12)
    high = 1.0 if k == n else optimize.brentq(f, p_hat + 1e-12, 1 - 1e-12)
    return low, high


@pytest.mark.parametrize("k, n", [(50, 100), (0, 20), (20, 20), (7, 30), (999, 1000)])
def test_wilson_matches_root_finding(k, n):
    interval = wilson_interval(k, n)
    low, high = _wilson_by_root_finding(k, n)
    assert interval.estimate == pytest.approx(k / n)
    assert interval.low == pytest.approx(low, abs=1e-9)
    assert interval.high == pytest.approx(high, abs=1e-9)


def test_wilson_50_of_100_by_hand():
    # z = 1.959964: centre 0.5, half-width z·sqrt(0.0025 + z²/40000)/(1 + z²/100) = 0.096170
    interval = wilson_interval(50, 100)
    assert interval.low == pytest.approx(0.5 - 0.096170, abs=1e-5)
    assert interval.high == pytest.approx(0.5 + 0.096170, abs=1e-5)
    assert interval.method == "wilson" and interval.n == 100


def test_wilson_coverage():
    rng = np.random.default_rng(1)
    p, n = 0.3, 60
    hits = [(lambda i: i.low <= p <= i.high)(wilson_interval(int(k), n)) for k in rng.binomial(n, p, size=2000)]
    assert 0.93 <= np.mean(hits) <= 0.97


def test_bootstrap_iid_agrees_with_normal_interval():
    values = np.random.default_rng(2).normal(1.0, 2.0, size=400)
    interval = bootstrap_interval(values, n_boot=4000, seed=0)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert interval.estimate == pytest.approx(values.mean())
    assert interval.high - interval.low == pytest.approx(2 * half, rel=0.1)
    assert interval.low < values.mean() < interval.high


def test_cluster_bootstrap_widens_for_correlated_groups_and_covers():
    rng = np.random.default_rng(3)
    covered, widths_cluster, widths_naive = [], [], []
    for _ in range(150):
        # 30 groups of 8 items sharing a group effect: items are far from independent.
        effect = rng.normal(0, 1, size=30)
        groups = np.repeat(np.arange(30), 8)
        values = effect[groups] + rng.normal(0, 0.3, size=groups.size)
        cluster = bootstrap_interval(values, groups=groups, n_boot=500, seed=int(rng.integers(1 << 30)))
        naive = bootstrap_interval(values, n_boot=500, seed=0)
        covered.append(cluster.low <= 0.0 <= cluster.high)
        widths_cluster.append(cluster.high - cluster.low)
        widths_naive.append(naive.high - naive.low)
    assert np.mean(covered) >= 0.87  # percentile bootstrap with 30 clusters runs slightly under 95 %
    assert np.mean(widths_cluster) > 2 * np.mean(widths_naive)


def test_bootstrap_is_deterministic_for_a_seed():
    values = np.random.default_rng(4).random(50)
    assert bootstrap_interval(values, seed=5) == bootstrap_interval(values, seed=5)


def test_paired_difference():
    rng = np.random.default_rng(5)
    a = (rng.random(300) < 0.8).astype(float)
    same = paired_difference(a, a)
    assert same.interval.estimate == 0 and same.interval.low == 0 and same.interval.high == 0
    assert same.p_value == 1.0
    b = a.copy()
    b[rng.choice(300, 60, replace=False)] = 0  # B is A with some answers spoilt
    better = paired_difference(a, b, groups=np.arange(300) // 3)
    assert better.interval.low > 0 and better.p_value < 0.01
    assert better.interval.estimate == pytest.approx(a.mean() - b.mean())
    worse = paired_difference(b, a)
    assert worse.interval.high < 0


def test_paired_interval_is_narrower_than_unpaired_when_systems_agree():
    rng = np.random.default_rng(6)
    hard = rng.random(400) < 0.5
    a = (~hard | (rng.random(400) < 0.3)).astype(float)
    b = (~hard | (rng.random(400) < 0.2)).astype(float)
    paired = paired_difference(a, b).interval
    unpaired = np.sqrt(a.var() / 400 + b.var() / 400) * 2 * 1.96
    assert paired.high - paired.low < 0.9 * unpaired


def test_accuracy_interval_picks_method():
    correct = np.array([1, 0, 1, 1] * 10)
    assert accuracy_interval(correct).method == "wilson"
    assert accuracy_interval(correct, groups=np.arange(40)).method == "wilson"
    assert accuracy_interval(correct, groups=np.arange(40) // 4).method == "cluster-bootstrap"


@pytest.mark.parametrize("call", [
    lambda: wilson_interval(5, 0),
    lambda: wilson_interval(6, 5),
    lambda: wilson_interval(1, 5, confidence=1.5),
    lambda: bootstrap_interval([]),
    lambda: bootstrap_interval([1.0, np.nan]),
    lambda: bootstrap_interval([1.0, 2.0], groups=[0]),
    lambda: paired_difference([1, 0], [1, 0, 1]),
    lambda: seed_level_difference([[1.0, 0.0]], [[0.0, 0.0]]),
    lambda: seed_level_difference([[1.0], [1.0]], [[0.0]]),
    lambda: seed_level_difference([[1.0, 0.0], [1.0]], [[0.0, 0.0], [0.0, 1.0]]),
    lambda: seed_level_difference([[1.0], [1.0]], [[0.0], [0.0]], method="z"),
])
def test_bad_arguments_raise(call):
    with pytest.raises(InputError):
        call()


def _three_seeds():
    """Seeds whose A − B are 0.1, 0.2, 0.3 (each a mean over two items)."""
    a = [[0.6, 0.5], [0.7, 0.9], [0.8, 0.6]]
    b = [[0.5, 0.4], [0.5, 0.7], [0.5, 0.3]]
    return a, b


def test_seed_level_t_interval_by_hand():
    # d = 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t_{0.975, 2} = 4.302653 → half-width 4.302653 · 0.1 / √3 = 0.248414
    a, b = _three_seeds()
    result = seed_level_difference(a, b)
    assert result.per_seed == pytest.approx((0.1, 0.2, 0.3))
    i = result.interval
    assert i.estimate == pytest.approx(0.2)
    assert i.low == pytest.approx(0.2 - 0.248414, abs=1e-6) and i.high == pytest.approx(0.2 + 0.248414, abs=1e-6)
    assert (i.method, i.n, i.n_groups, i.confidence) == ("t over seeds", 6, 3, 0.95)
    low, high = stats.t.interval(0.95, 2, loc=0.2, scale=stats.sem([0.1, 0.2, 0.3]))
    assert (i.low, i.high) == pytest.approx((low, high))


def test_seed_level_t_interval_ignores_clip_noise_the_bootstrap_carries_it():
    rng = np.random.default_rng(7)
    # every seed has the same mean difference, but items scatter around it
    b = [rng.random(40) for _ in range(4)]
    noise = rng.normal(0, 0.3, size=40)
    a = [x + 0.1 + noise - noise.mean() for x in b]
    groups = [np.arange(40) // 4] * 4
    t = seed_level_difference(a, b).interval
    assert t.low == pytest.approx(0.1) and t.high == pytest.approx(0.1)
    boot = seed_level_difference(a, b, groups, method="bootstrap", n_boot=1000).interval
    assert boot.method == "two-level bootstrap" and boot.n_groups == 4
    assert boot.low < 0.1 < boot.high
    assert boot == seed_level_difference(a, b, groups, method="bootstrap", n_boot=1000).interval


def test_two_level_bootstrap_spans_the_seeds_when_items_agree():
    a, b = _three_seeds()  # within a seed both items have the same difference
    boot = seed_level_difference(a, b, method="bootstrap", n_boot=4000).interval
    assert 0.1 - 1e-9 <= boot.low < 0.2 < boot.high <= 0.3 + 1e-9
