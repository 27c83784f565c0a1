"""relu_representation_cost: the hand cases of Savarese et al. 2019 and the inequality C(θ) ≥ R(f_θ)
(with equality for a balanced network whose units do not cancel), checked on random networks."""

import numpy as np
import pytest

from genlab.theory.representation_cost import (
    piecewise_linear_from_relu_units,
    relu_representation_cost,
    weight_norm_cost,
)
from genlab.theory.splines import PiecewiseLinear, linear_spline_interpolant


def pl(left, right, xs=(0.0,), ys=(0.0,)):
    return PiecewiseLinear(np.asarray(xs, float), np.asarray(ys, float), left, right)


def test_hand_cases():
    assert relu_representation_cost(pl(-1.0, 1.0)) == pytest.approx(2.0)  # |x|
    assert relu_representation_cost(pl(0.0, 1.0)) == pytest.approx(1.0)  # relu(x)
    for a in (-2.5, 0.3):
        assert relu_representation_cost(pl(a, a, ys=(7.0,))) == pytest.approx(2 * abs(a))  # ax + c
    # hat function: slopes 0, 1, -1, 0 → ∫|f''| = 4, end slopes sum 0
    assert relu_representation_cost(pl(0.0, 0.0, xs=(-1, 0, 1), ys=(0, 1, 0))) == pytest.approx(4.0)


def test_from_units_matches_direct_evaluation():
    rng = np.random.default_rng(0)
    w, b, v = rng.standard_normal((3, 12))
    w[3] = 0.0  # a constant unit
    f = piecewise_linear_from_relu_units(w, b, v, c=0.7)
    x = np.linspace(-8, 8, 2001)
    direct = np.maximum(np.outer(x, w) + b, 0.0) @ v + 0.7
    np.testing.assert_allclose(f(x), direct, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_cost_bounds_representation_cost(seed):
    rng = np.random.default_rng(seed)
    w, b, v = rng.standard_normal((3, 20))
    f = piecewise_linear_from_relu_units(w, b, v)
    assert weight_norm_cost(w, v) >= relu_representation_cost(f) - 1e-12


def test_balanced_noncancelling_network_attains_cost():
    # units all facing right (w > 0) at distinct knots, |w| = |v|: C = Σ|w v| = ∫|f''| ≥ |f'(+∞)|
    rng = np.random.default_rng(3)
    jumps = rng.standard_normal(6)
    knots = np.sort(rng.uniform(-2, 2, 6))
    w = np.sqrt(np.abs(jumps))
    v = np.sign(jumps) * w
    f = piecewise_linear_from_relu_units(w, -knots * w, v)
    assert relu_representation_cost(f) == pytest.approx(weight_norm_cost(w, v), rel=1e-12)


def test_spline_cost():
    # zig-zag data: interior slope changes 2 + 2 + 2 = 6, end slopes +1 and -1 sum to 0
    f = linear_spline_interpolant(np.array([0.0, 1, 2, 3, 4]), np.array([0.0, 1, 0, 1, 0]))
    assert relu_representation_cost(f) == pytest.approx(6.0)


def test_underflowed_unit_is_a_constant():
    # w = 1e-310 (denormal) against b = 2: −b/w overflows; the unit is the constant v·relu(b) = 6
    f = piecewise_linear_from_relu_units(np.array([1e-310, 1.0]), np.array([2.0, 0.0]), np.array([3.0, 1.0]))
    np.testing.assert_allclose(f(np.array([-1.0, 0.0, 2.0])), [6.0, 6.0, 8.0])
    assert relu_representation_cost(f) == pytest.approx(1.0)
