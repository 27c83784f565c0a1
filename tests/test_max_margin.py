"""hard_margin_svm against hand-solved QPs and scipy's SLSQP on the primal (an independent solver)."""

import numpy as np
import pytest
from scipy.optimize import minimize

from genlab.theory.max_margin import direction_error, hard_margin_svm, max_margin_direction


def test_hand_cases():
    # 2w1 ≥ 1 and w2 ≥ 1, both active: ŵ = (1/2, 1)
    np.testing.assert_allclose(max_margin_direction(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1, 1])), [0.5, 1.0], atol=1e-12)
    # w1 + w2 ≥ 1, w1 − w2 ≥ 1, and an inactive point (3, 0): ŵ = (1, 0), α = (1/2, 1/2, 0)
    s = hard_margin_svm(np.array([[1.0, 1.0], [1.0, -1.0], [3.0, 0.0]]), np.array([1, 1, 1]))
    np.testing.assert_allclose(s.w, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.alpha, [0.5, 0.5, 0.0], atol=1e-12)
    assert s.margin == pytest.approx(1.0)
    # symmetric pair with labels: x=(1,2), y=+1 and x=(−1,−2), y=−1 → ŵ = x/‖x‖² = (0.2, 0.4)
    np.testing.assert_allclose(max_margin_direction(np.array([[1.0, 2.0], [-1.0, -2.0]]), np.array([1, -1])), [0.2, 0.4], atol=1e-12)


@pytest.mark.parametrize("seed,n,d", [(0, 30, 5), (1, 60, 3), (2, 8, 20)])
def test_matches_slsqp(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(X @ rng.standard_normal(d))
    w = max_margin_direction(X, y)
    res = minimize(
        lambda v: 0.5 * v @ v, np.zeros(d), jac=lambda v: v, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda v: y * (X @ v) - 1.0, "jac": lambda v: X * y[:, None]}],
        options={"ftol": 1e-12, "maxiter": 2000},
    )
    assert res.success
    # SLSQP stops at ftol 1e-12 (≈1e-6 relative in w); the active-set solution is exact to rounding
    np.testing.assert_allclose(w, res.x, rtol=1e-5, atol=1e-6)
    assert np.min(y * (X @ w)) == pytest.approx(1.0, abs=1e-10)


def test_not_separable_raises():
    with pytest.raises(ValueError):
        hard_margin_svm(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([1, -1]))


def test_direction_error():
    assert direction_error(np.array([2.0, 0.0]), np.array([1.0, 0.0])) == pytest.approx(0.0)
    assert direction_error(np.array([0.0, 3.0]), np.array([1.0, 0.0])) == pytest.approx(np.sqrt(2.0))


def test_fallback_path_matches(monkeypatch):
    # force the coordinate-ascent + active-set path (used when the NNLS route fails)
    import genlab.theory.max_margin as mm

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 4))
    y = np.sign(X @ rng.standard_normal(4))
    fast = mm.hard_margin_svm(X, y).w
    monkeypatch.setattr(mm, "_ldp", lambda Z: None)
    slow = mm.hard_margin_svm(X, y)
    np.testing.assert_allclose(slow.w, fast, rtol=1e-9, atol=1e-12)
    assert np.min(y * (X @ slow.w)) == pytest.approx(1.0, abs=1e-10)
