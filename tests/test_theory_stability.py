"""The stability weight g and the bounds, against hand-worked values and a brute-force loop."""

import math

import numpy as np
import pytest

from genlab.theory.stability import (
    interpolating_tv_bound,
    linear_stability_threshold,
    stability_weight,
    stable_tv_bound,
)


def brute_g(xs: np.ndarray, x: float) -> float:
    """g(x) straight from its definition (Mulayoff et al. 2021, eqs. 22-23), one point at a time."""
    n = len(xs)
    if x < xs.min() or x > xs.max():
        return 0.0
    lo = [a for a in xs if a < x]
    hi = [a for a in xs if a > x]
    gm = (len(lo) / n) ** 2 * (x - np.mean(lo)) * math.sqrt(1 + np.mean(lo) ** 2) if lo else 0.0
    gp = (len(hi) / n) ** 2 * (np.mean(hi) - x) * math.sqrt(1 + np.mean(hi) ** 2) if hi else 0.0
    return min(gm, gp)


def test_g_hand_worked_three_points():
    xs = np.array([-1.0, 0.0, 1.0])
    # x = -0.5: P(X<x) = 1/3, E[X|X<x] = -1, E[x-X|X<x] = 0.5 -> g- = (1/9)(0.5)sqrt(2)
    #           P(X>x) = 2/3, E[X|X>x] = 0.5, E[X-x|X>x] = 1 -> g+ = (4/9)(1)sqrt(1.25)
    assert stability_weight(xs, -0.5)[0] == pytest.approx(min(0.5 * math.sqrt(2) / 9, 4 * math.sqrt(1.25) / 9), rel=1e-14)
    # at the middle point, symmetric: (1/9)(1)sqrt(2)
    assert stability_weight(xs, 0.0)[0] == pytest.approx(math.sqrt(2) / 9, rel=1e-14)
    # zero at the ends of the data range and outside it
    assert stability_weight(xs, [-1.0, 1.0, -2.0, 3.0]).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_g_matches_brute_force_on_random_data():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=37)
    q = np.linspace(xs.min() - 0.5, xs.max() + 0.5, 301)
    got = stability_weight(xs, q)
    want = np.array([brute_g(xs, t) for t in q])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.all(got >= 0)


def test_bounds():
    assert linear_stability_threshold(0.5) == 4.0
    assert interpolating_tv_bound(0.5) == 1.5
    # at an interpolating point (L = 0) with λ_max = 2/η the general bound is 1/η − 1/2
    assert stable_tv_bound(2 / 0.25, 0.0, 3.0) == pytest.approx(interpolating_tv_bound(0.25))
    # residual term (R + 1)·sqrt(2L)
    assert stable_tv_bound(3.0, 0.02, 1.5) == pytest.approx(1.5 - 0.5 + 2.5 * 0.2)
    with pytest.raises(ValueError):
        linear_stability_threshold(0.0)
