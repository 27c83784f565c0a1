"""The Jiang et al. protocol (genlab.theory.ranking) against scipy and hand computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from genlab.theory.ranking import cmi_score, conditional_mi, granulated_tau, kendall_tau, mean_interval, tau_interval


def test_kendall_tau_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, 25).astype(float)  # many ties
        b = a + rng.integers(-2, 3, 25)
        assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_granulated_tau_by_a_loop_over_groups():
    rng = np.random.default_rng(1)
    grid = list(itertools.product([1, 2, 3], [0.1, 0.2], ["a", "b"]))
    axes = {"w": [g[0] for g in grid], "lr": [g[1] for g in grid], "k": [g[2] for g in grid]}
    m = rng.standard_normal(len(grid))
    gap = m + rng.standard_normal(len(grid))
    psi, groups = granulated_tau(m, gap, axes)
    # by hand: for axis w, fix (lr, k) and take τ over the 3 widths
    taus = []
    for lr in (0.1, 0.2):
        for k in ("a", "b"):
            idx = [i for i, g in enumerate(grid) if g[1] == lr and g[2] == k]
            taus.append(kendalltau(m[idx], gap[idx]).statistic)
    assert psi["w"] == pytest.approx(np.mean(taus))
    assert len(groups["lr"]) == 6 and len(groups["k"]) == 6
    # with two models per group τ is ±1: the sign agreement of the pair
    idx = [[i for i, g in enumerate(grid) if g[0] == w and g[2] == k] for w in (1, 2, 3) for k in ("a", "b")]
    assert psi["lr"] == pytest.approx(np.mean([np.sign((m[a] - m[b]) * (gap[a] - gap[b])) for a, b in idx]))


def test_conditional_mi_on_toy_tables():
    h = lambda *p: -sum(q * math.log(q) for q in p if q > 0)
    # unconditional: joint (1,1) 1/2, (1,−1) 1/4, (−1,−1) 1/4
    vm, vg = [1, 1, 1, -1], [1, 1, -1, -1]
    mi, hg = conditional_mi(vm, vg)
    assert mi == pytest.approx(h(0.75, 0.25) + h(0.5, 0.5) - h(0.5, 0.25, 0.25), abs=1e-12)
    assert hg == pytest.approx(math.log(2))
    # independent overall, fully dependent given u: I = 0 but I(·;·|U) = log 2 = H(V_g|U)
    vm, vg, u = [1, -1, 1, -1], [1, -1, -1, 1], [[0], [0], [1], [1]]
    assert conditional_mi(vm, vg)[0] == pytest.approx(0.0, abs=1e-12)
    mi, hg = conditional_mi(vm, vg, u)
    assert mi == pytest.approx(math.log(2)) and hg == pytest.approx(math.log(2))


def test_cmi_score_of_the_gap_itself_and_of_a_confounded_measure():
    grid = list(itertools.product([1, 2, 3, 4], [0, 1]))
    axes = {"a": [g[0] for g in grid], "b": [g[1] for g in grid]}
    gap = np.array([g[0] + 10 * g[1] for g in grid], float)
    k, _ = cmi_score(gap, gap, axes)
    assert k == pytest.approx(1.0)
    # unconditional K from the sign table of all pairs built by a loop; more conditioning never raises K
    rng = np.random.default_rng(2)
    m = gap + 5 * rng.standard_normal(8)
    vm, vg = [], []
    for i in range(8):
        for j in range(i + 1, 8):
            vm.append(int(np.sign(m[i] - m[j])))
            vg.append(int(np.sign(gap[i] - gap[j])))
    mi, hg = conditional_mi(vm, vg)
    k0 = cmi_score(m, gap, axes, max_conditioning=0)[0]
    assert k0 == pytest.approx(mi / hg)
    assert k0 >= cmi_score(m, gap, axes, 1)[0] >= cmi_score(m, gap, axes, 2)[0]


def test_bootstrap_intervals():
    x = np.arange(20.0)
    iv = tau_interval(x, 2 * x, reps=50)
    assert iv.value == 1.0 and iv.low == 1.0 and iv.high == 1.0
    iv = mean_interval([0.2, 0.4, 0.6, 0.8], reps=200)
    assert iv.low <= iv.value <= iv.high and iv.value == pytest.approx(0.5)
