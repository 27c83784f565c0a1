"""The univariate min-norm denoiser against a brute-force linear program; the eMMSE against a loop."""

import numpy as np
import pytest
from scipy.optimize import linprog

from genlab.theory.denoiser import clusters_separated, empirical_mmse, min_norm_denoiser_1d
from genlab.theory.representation_cost import relu_representation_cost


def _lp_least_slope_variation(xs, ys, grid):
    """min Σ|slope jumps| over continuous piecewise-linear g with knots on ``grid`` (which contains
    the data), free end slopes, g(xs) = ys: an LP in the node values, end slopes and |jump| bounds."""
    m = grid.size
    h = np.diff(grid)
    nv = m + 2 + m  # node values, left/right end slopes, jump bounds s_i ≥ |jump_i|
    rows, rhs = [], []
    for i in range(m):  # jump at node i = slope right − slope left
        coef = np.zeros(nv)
        if i == 0:
            coef[m] -= 1
        else:
            coef[i] -= 1 / h[i - 1]
            coef[i - 1] += 1 / h[i - 1]
        if i == m - 1:
            coef[m + 1] += 1
        else:
            coef[i + 1] += 1 / h[i]
            coef[i] -= 1 / h[i]
        for sgn in (1, -1):
            r = sgn * coef.copy()
            r[m + 2 + i] = -1
            rows.append(r)
            rhs.append(0.0)
    eq = np.zeros((xs.size, nv))
    for j, x in enumerate(xs):
        eq[j, int(np.argmin(np.abs(grid - x)))] = 1
    cost = np.zeros(nv)
    cost[m + 2:] = 1
    res = linprog(cost, A_ub=np.array(rows), b_ub=rhs, A_eq=eq, b_eq=ys, bounds=[(None, None)] * (m + 2) + [(0, None)] * m)
    assert res.status == 0
    return res.fun, res.x[:m]


def test_closed_form_is_least_variation_interpolant():
    rng = np.random.default_rng(0)
    clean = np.array([-1.0, -0.2, 0.5, 1.2])
    noisy = clean[:, None] + 0.08 * rng.standard_normal((4, 5))
    assert clusters_separated(clean, noisy)
    f = min_norm_denoiser_1d(clean, noisy)
    y, x = noisy.ravel(), np.repeat(clean, 5)
    assert np.allclose(f(y), x)
    grid = np.unique(np.concatenate([y, np.linspace(-2, 2, 300)]))
    opt, values = _lp_least_slope_variation(y, x, grid)
    # the LP's optimum equals the closed form's ∫|f''| (LP tolerance ~1e-9) ...
    assert relu_representation_cost(f) == pytest.approx(opt, rel=1e-6)
    # ... and its minimizer is the closed form (unique minimizer) on the data range
    inside = (grid >= y.min()) & (grid <= y.max())
    assert np.allclose(values[inside], f(grid[inside]), atol=1e-6)
    # flat on each cluster, constant beyond the ends
    assert f.left_slope == 0 and f.right_slope == 0
    assert f(-5.0) == pytest.approx(-1.0) and f(5.0) == pytest.approx(1.2)


def test_overlapping_clusters_refused():
    clean = np.array([0.0, 0.1])
    with pytest.raises(ValueError, match="low-noise"):
        min_norm_denoiser_1d(clean, np.array([[0.0, 0.2], [0.05, 0.15]]))


def test_empirical_mmse_against_loop():
    clean = np.array([-1.0, 0.3, 2.0])
    sigma = 0.7
    for y in (-2.0, 0.0, 0.31, 5.0):
        w = [np.exp(-((y - c) ** 2) / (2 * sigma**2)) for c in clean]
        assert empirical_mmse(np.array(y), clean, sigma) == pytest.approx(sum(wi * c for wi, c in zip(w, clean)) / sum(w), rel=1e-12)
    # far from all points the logsumexp form stays finite
    assert np.isfinite(empirical_mmse(np.array([1e3]), clean, 0.01)).all()
