"""The Q_α interpolator of diagonal linear networks (Woodworth et al. 2020) against references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from genlab.theory.diagonal_nets import (
    min_l1_interpolator,
    min_l2_interpolator,
    q_alpha,
    q_function,
    qalpha_interpolator,
)


def _problem(n: int = 12, d: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[:3] = [1.0, -2.0, 1.5]
    return X, X @ beta + 0.1 * rng.standard_normal(n)


def test_q_function_derivative_and_limits() -> None:
    z = np.linspace(-30, 30, 61)
    h = 1e-5
    num = (q_function(z + h) - q_function(z - h)) / (2 * h)
    assert np.allclose(num, np.arcsinh(z / 2), atol=1e-8)
    assert q_function(np.array(0.0)) == 0.0
    # α → ∞: Q_α(β) → ‖β‖²/(4α²) (Woodworth et al. 2020, Thm 2)
    b = np.array([0.3, -1.2, 2.0])
    a = 1e3
    assert abs(q_alpha(b, a) * 4 * a**2 / np.sum(b**2) - 1) < 1e-6


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0, 10.0])
def test_qalpha_constraints_and_kkt(alpha: float) -> None:
    """Feasibility and stationarity: ∇Q_α(β) = arcsinh(β/(2α²)) lies in the row space of X.
    Q_α is strictly convex, so these KKT conditions certify the global minimizer."""
    X, y = _problem()
    beta = qalpha_interpolator(X, y, alpha)
    assert np.linalg.norm(X @ beta - y) <= 1e-10 * np.linalg.norm(y)
    g = np.arcsinh(beta / (2 * alpha**2))
    coef = np.linalg.lstsq(X.T, g, rcond=None)[0]
    assert np.linalg.norm(X.T @ coef - g) <= 1e-8 * max(np.linalg.norm(g), 1.0)


def test_qalpha_matches_generic_solver() -> None:
    """An independent reference: SLSQP on the primal (tiny problem), from the min-ℓ2 start.
    Our Q_α must be no larger (up to 1e-7 relative: SLSQP's own tolerance) and β close."""
    X, y = _problem(n=4, d=8, seed=1)
    for alpha in (0.3, 1.0):
        ours = qalpha_interpolator(X, y, alpha)
        res = minimize(
            lambda b: q_alpha(b, alpha),
            min_l2_interpolator(X, y),
            jac=lambda b: np.arcsinh(b / (2 * alpha**2)),
            constraints=[{"type": "eq", "fun": lambda b: X @ b - y, "jac": lambda b: X}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        assert res.success
        assert q_alpha(ours, alpha) <= q_alpha(res.x, alpha) * (1 + 1e-7)
        assert np.linalg.norm(ours - res.x) <= 1e-4 * np.linalg.norm(ours)


def test_qalpha_limits() -> None:
    """α → 0: min-ℓ1 (rich regime); α → ∞: min-ℓ2 (kernel regime) (Woodworth et al. 2020, Thm 2)."""
    X, y = _problem()
    l1, l2 = min_l1_interpolator(X, y), min_l2_interpolator(X, y)
    # the references themselves: feasible, and the ℓ1 one has the smaller ℓ1 norm
    assert np.allclose(X @ l1, y, atol=1e-8) and np.allclose(X @ l2, y, atol=1e-10)
    assert np.abs(l1).sum() < np.abs(l2).sum()
    small = [1e-1, 1e-2, 1e-4, 1e-8, 1e-16]
    sols = [qalpha_interpolator(X, y, a) for a in small]
    err_l1 = [np.linalg.norm(b - l1) / np.linalg.norm(l1) for b in sols]
    gap_l1 = [np.abs(b).sum() / np.abs(l1).sum() - 1 for b in sols]  # ℓ1 suboptimality, ≥ 0
    assert all(b < a for a, b in zip(err_l1, err_l1[1:])), err_l1
    assert all(b < a for a, b in zip(gap_l1, gap_l1[1:])), gap_l1
    # Woodworth et al. Thm 2: the ℓ1 suboptimality is O(1/log(1/α)); 1e-3 at α = 1e-16 (log(1/α²) = 74)
    assert -1e-9 <= gap_l1[-1] < 1e-3, gap_l1
    assert err_l1[-1] < 0.05, err_l1
    large = [1.0, 10.0, 100.0]
    err_l2 = [np.linalg.norm(qalpha_interpolator(X, y, a) - l2) / np.linalg.norm(l2) for a in large]
    assert all(b < a for a, b in zip(err_l2, err_l2[1:])), err_l2
    # Q_α − ‖β‖²/(4α²) is O(β⁴/α⁶) (Taylor expansion of q), so the error to min-ℓ2 falls like α⁻⁴
    assert err_l2[-1] < 1e-6, err_l2


def test_qalpha_recovers_sparse_truth_as_alpha_vanishes() -> None:
    """Noiseless sparse β* with n large enough for exact basis-pursuit recovery: min-ℓ1 = β*, and
    β_α → β* as α → 0 while β_α → min-ℓ2 ≠ β* as α grows (the kernel regime does not recover it)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((15, 40))
    truth = np.zeros(40)
    truth[[3, 17, 29]] = [1.0, -2.0, 1.5]
    y = X @ truth
    assert np.linalg.norm(min_l1_interpolator(X, y) - truth) < 1e-8
    assert np.linalg.norm(qalpha_interpolator(X, y, 1e-8) - truth) < 1e-5 * np.linalg.norm(truth)
    assert np.linalg.norm(qalpha_interpolator(X, y, 1e3) - truth) > 0.5 * np.linalg.norm(truth)


def test_gd_on_diagonal_network_reaches_qalpha() -> None:
    """GD on β = u∘u − v∘v from u = v = α·1 (the kernel-rich experiment's solver) converges to the
    Q_α interpolator (Woodworth et al. 2020, Thm 1) up to a discretization error first order in the
    step: relative error < 0.1·η_rel (measured ≈ 0.06·η_rel at α = 0.3, 0.008·η_rel at α = 1), and
    quartering the step divides it by 4 (ratio allowed in [0.15, 0.4]: first order plus O(η²))."""
    from genlab.experiments.implicit_bias.kernel_rich import diagonal_net_gd

    X, y = _problem(n=10, d=25, seed=3)
    alphas = np.array([0.3, 1.0, 0.3])
    etas = np.array([0.2, 0.2, 0.05])
    out = diagonal_net_gd(X, y, alphas, etas, max_steps=40_000, tol=1e-9)
    errs = [np.linalg.norm(b - qalpha_interpolator(X, y, a)) / np.linalg.norm(qalpha_interpolator(X, y, a)) for b, a in zip(out["beta"], alphas)]
    assert all(r <= 1e-9 for r in out["residual"]), out["residual"]
    assert errs[0] < 0.1 * 0.2 and errs[1] < 0.1 * 0.2, errs
    assert 0.15 <= errs[2] / errs[0] <= 0.4, errs
