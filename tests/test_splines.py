"""Linear-spline interpolant against hand-worked cases."""

import numpy as np
import pytest

from genlab.theory.splines import PiecewiseLinear, linear_spline_interpolant


def test_interpolant_passes_through_points_and_extends_linearly():
    x = np.array([0.0, 1.0, 3.0, 2.0])
    y = np.array([0.0, 1.0, 0.0, 2.0])
    s = linear_spline_interpolant(x, y)
    np.testing.assert_allclose(s(x), y)
    assert s(0.5) == pytest.approx(0.5)
    assert s(-1.0) == pytest.approx(-1.0)  # left slope 1
    assert s(4.0) == pytest.approx(-2.0)  # right slope -2
    # slopes 1, 1, -2: jumps at 1 (0), 2 (-3); no jump at the ends
    pos, jumps = s.knots()
    np.testing.assert_allclose(jumps, [0.0, 0.0, -3.0, 0.0])
    assert s.total_variation_of_slope() == pytest.approx(3.0)


def test_abs_as_piecewise_linear():
    f = PiecewiseLinear(np.array([0.0]), np.array([0.0]), -1.0, 1.0)
    assert f.total_variation_of_slope() == pytest.approx(2.0)
    assert f(-2.0) == pytest.approx(2.0)


def test_rejects_duplicates():
    with pytest.raises(ValueError):
        linear_spline_interpolant(np.array([0.0, 0.0]), np.array([1.0, 2.0]))
