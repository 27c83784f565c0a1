"""Knots, ∫|f''| and ∫|f''|g of a univariate ReLU network, against hand cases and a fine-grid
finite-difference computation of the network's own slopes (independent of the knot formula)."""

import numpy as np
import pytest
import torch

from genlab.models import TwoLayerReLU1D
from genlab.probes.function_space import effective_knots, relu1d_knots, slope_total_variation, weighted_total_variation
from genlab.theory.splines import linear_spline_interpolant
from genlab.theory.stability import stability_weight


def net(w, b, v, c=0.0) -> TwoLayerReLU1D:
    m = TwoLayerReLU1D(len(w))
    with torch.no_grad():
        m.w.copy_(torch.tensor(w, dtype=torch.float64))
        m.b.copy_(torch.tensor(b, dtype=torch.float64))
        m.v.copy_(torch.tensor(v, dtype=torch.float64))
        m.c.fill_(c)
    return m


def test_abs_has_total_variation_two():
    m = net([1.0, -1.0], [0.0, 0.0], [1.0, 1.0])  # relu(x) + relu(-x) = |x|
    k = relu1d_knots(m)
    assert slope_total_variation(k, -1, 1) == pytest.approx(2.0)
    assert effective_knots(k, -1, 1, merge_tol=1e-6) == 1
    # knot outside the range contributes nothing
    assert slope_total_variation(k, 0.5, 1) == 0.0


def test_knot_positions_and_jumps():
    m = net([2.0, -0.5, 0.0], [1.0, 1.0, 3.0], [1.5, -2.0, 7.0])
    k = relu1d_knots(m)
    np.testing.assert_allclose(k.positions, [-0.5, 2.0])  # -b/w; the w=0 unit has no knot
    np.testing.assert_allclose(k.jumps, [1.5 * 2.0, -2.0 * 0.5])  # v·|w|


def _fd_slope_jumps(m, grid):
    with torch.no_grad():
        f = m(torch.tensor(grid)).numpy()
    slopes = np.diff(f) / np.diff(grid)
    return np.diff(slopes), grid[1:-1]


def test_tv_and_weighted_tv_match_finite_differences():
    gen = torch.Generator().manual_seed(3)
    m = TwoLayerReLU1D(25, gen)
    xs = np.sort(np.random.default_rng(0).uniform(-1.5, 1.5, 20))
    lo, hi = xs.min(), xs.max()
    grid = np.linspace(lo, hi, 400_001)
    dj, mid = _fd_slope_jumps(m, grid)
    # a slope jump at a knot shows up in the second differences within one grid cell; away from
    # knots they are rounding noise (~eps·|f|/dx ≈ 3e-11), dropped below 1e-8 so that the 4e5
    # noise terms do not add up (every jump v·|w| of this network is far above 1e-8)
    dj = np.where(np.abs(dj) > 1e-8, dj, 0.0)
    fd_tv = np.abs(dj).sum()
    k = relu1d_knots(m)
    assert slope_total_variation(k, lo, hi) == pytest.approx(fd_tv, rel=1e-6)
    fd_wtv = np.sum(np.abs(dj) * stability_weight(xs, mid))
    # g is Lipschitz between data points and piecewise smooth: a grid cell of 7.5e-6 moves it
    # by a relative ~1e-4 at most (more where a knot sits next to a data point)
    assert weighted_total_variation(k, xs) == pytest.approx(fd_wtv, rel=1e-3)


def test_linear_spline_of_network_samples_matches_its_knots():
    """A network sampled finely is its own linear spline: same ∫|f''| inside the range."""
    m = net([1.0, 1.0, -1.0], [0.5, -0.2, 0.3], [1.0, -3.0, 2.0])
    grid = np.linspace(-1, 1, 200_001)
    with torch.no_grad():
        f = m(torch.tensor(grid)).numpy()
    spline = linear_spline_interpolant(grid, f)
    k = relu1d_knots(m)
    assert spline.total_variation_of_slope(-0.999, 0.999) == pytest.approx(slope_total_variation(k, -1, 1), rel=1e-4)


def test_effective_knots_threshold_and_merge():
    # two nearly coincident knots (merged) and one tiny one (below 1% of the total)
    m = net([1.0, 1.0, 1.0], [0.0, -1e-4, -0.5], [1.0, 1.0, 0.001])
    k = relu1d_knots(m)
    assert effective_knots(k, -1, 1, merge_tol=1e-3, rel_threshold=0.01) == 1
    assert effective_knots(k, -1, 1, merge_tol=1e-6, rel_threshold=0.0) == 3
