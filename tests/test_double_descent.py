"""Double-descent risk formulas against Monte Carlo of the estimators they describe and against
each other in their limits. Monte-Carlo tolerances: 5 standard errors of the sample mean."""

import numpy as np
import pytest

from genlab.theory.double_descent import (
    min_norm_risk,
    min_norm_risk_finite,
    mp_stieltjes,
    optimal_ridge,
    ridge_risk,
)


def test_hand_values():
    assert min_norm_risk(0.5, 1.0, 1.0) == pytest.approx(1.0)  # σ²γ/(1−γ)
    assert min_norm_risk(2.0, 1.0, 1.0) == pytest.approx(0.5 + 1.0)  # r²(1−1/γ) + σ²/(γ−1)
    assert np.isinf(min_norm_risk(1.0, 1.0, 1.0))
    # finite-n expectation tends to the asymptotic one at fixed γ
    assert min_norm_risk_finite(10_000, 5_000, 1.0, 1.0) == pytest.approx(min_norm_risk(0.5, 1.0, 1.0), rel=1e-3)
    assert min_norm_risk_finite(10_000, 20_000, 1.0, 1.0) == pytest.approx(min_norm_risk(2.0, 1.0, 1.0), rel=1e-3)


@pytest.mark.parametrize("p", [10, 70])
def test_finite_formula_monte_carlo(p):
    n, r2, s2, trials = 40, 1.0, 0.25, 3000
    rng = np.random.default_rng(p)
    risks = np.empty(trials)
    for i in range(trials):
        X = rng.standard_normal((n, p))
        beta = rng.standard_normal(p)
        beta *= np.sqrt(r2) / np.linalg.norm(beta)
        y = X @ beta + np.sqrt(s2) * rng.standard_normal(n)
        risks[i] = np.sum((np.linalg.pinv(X) @ y - beta) ** 2)
    se = risks.std(ddof=1) / np.sqrt(trials)
    assert abs(risks.mean() - min_norm_risk_finite(n, p, r2, s2)) < 5 * se


def test_stieltjes_against_wishart_spectrum():
    rng = np.random.default_rng(0)
    n, p, lam = 3000, 1500, 0.3
    eig = np.linalg.eigvalsh((lambda X: X.T @ X / n)(rng.standard_normal((n, p))))
    m, dm = mp_stieltjes(lam, p / n)
    # finite-size fluctuations of linear spectral statistics are O(1/p); 1% is far above that
    assert np.mean(1 / (eig + lam)) == pytest.approx(float(m), rel=1e-2)
    assert np.mean(1 / (eig + lam) ** 2) == pytest.approx(float(dm), rel=1e-2)


def test_ridge_limits_and_optimum():
    # λ → 0 under-parameterized: ridge risk → min-norm (OLS) risk
    assert ridge_risk(0.5, 1e-7, 1.0, 0.5) == pytest.approx(min_norm_risk(0.5, 1.0, 0.5), rel=1e-4)
    assert ridge_risk(2.0, 1e-7, 1.0, 0.5) == pytest.approx(min_norm_risk(2.0, 1.0, 0.5), rel=1e-4)
    # λ* = σ²γ/r² minimizes the risk (grid search, an independent check)
    lams = np.geomspace(1e-3, 10, 4001)
    for g in (0.5, 1.0, 3.0):
        risks = [float(ridge_risk(g, lam, 1.0, 0.5)) for lam in lams]
        assert lams[int(np.argmin(risks))] == pytest.approx(optimal_ridge(g, 1.0, 0.5), rel=1e-2)


def test_ridge_monte_carlo():
    n, p, lam, r2, s2, trials = 400, 200, 0.4, 1.0, 0.5, 200
    rng = np.random.default_rng(1)
    risks = np.empty(trials)
    for i in range(trials):
        X = rng.standard_normal((n, p))
        beta = rng.standard_normal(p)
        beta *= np.sqrt(r2) / np.linalg.norm(beta)
        y = X @ beta + np.sqrt(s2) * rng.standard_normal(n)
        bh = np.linalg.solve(X.T @ X / n + lam * np.eye(p), X.T @ y / n)
        risks[i] = np.sum((bh - beta) ** 2)
    se = risks.std(ddof=1) / np.sqrt(trials)
    # asymptotic formula at n = 400: finite-size bias O(1/n) relative (≈ 0.25%), plus 5 SE
    assert abs(risks.mean() - ridge_risk(p / n, lam, r2, s2)) < 5 * se + 5e-3 * ridge_risk(p / n, lam, r2, s2)
