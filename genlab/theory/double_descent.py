"""Test risk of least squares with isotropic Gaussian features: the double-descent curve.

Model: x ~ N(0, I_p), y = xᵀβ + ε, ε ~ N(0, σ²), ‖β‖² = r², n training samples, γ = p/n.
Risk R = E_x[(xᵀβ̂ − xᵀβ)²] = ‖β̂ − β‖² (the noise of the test label excluded).

- Minimum-norm least squares β̂ = X⁺y, asymptotically (n, p → ∞, p/n → γ): Hastie, Montanari,
  Rosset & Tibshirani 2019, "Surprises in high-dimensional ridgeless least squares
  interpolation" (arXiv 1903.08560), Theorem 1 (isotropic features):
      R = σ²γ/(1 − γ) for γ < 1;   R = r²(1 − 1/γ) + σ²/(γ − 1) for γ > 1.
  (Advani & Saxe 2017, arXiv 1710.03667, derive the same peak at γ = 1.)
- Exact finite-n expectation over the Gaussian design (a standard Wishart computation, from
  E tr((XᵀX)⁻¹) = p/(n − p − 1) and, for p > n, E[projection onto row space] = (n/p)I and
  E tr((XXᵀ)⁻¹) = n/(p − n − 1)):
      p < n − 1: σ² p/(n − p − 1);   p > n + 1: r²(1 − n/p) + σ² n/(p − n − 1).
- Ridge β̂_λ = (XᵀX/n + λI)⁻¹Xᵀy/n, asymptotically (Dobriban & Wager 2018, "High-dimensional
  asymptotics of prediction: ridge regression and classification", Ann. Statist.; Hastie et al.
  2019, their ridge section):
      R(λ) = r²λ²m'(−λ) + σ²γ(m(−λ) − λm'(−λ)),
  m the Stieltjes transform of the Marchenko–Pastur law of ratio γ:
      γλm² + (1 − γ + λ)m − 1 = 0 at z = −λ. The optimal λ is σ²γ/r².
"""

from __future__ import annotations

import numpy as np


def _as_gamma(gamma: np.ndarray | float) -> np.ndarray:
    g = np.asarray(gamma, dtype=float)
    if np.any(g <= 0):
        raise ValueError("gamma = p/n must be > 0")
    return g


def min_norm_risk(gamma: np.ndarray | float, r2: float, sigma2: float) -> np.ndarray:
    """Asymptotic risk of min-norm least squares, isotropic features (Hastie et al. 2019, Thm 1).

    Infinite at γ = 1 (the interpolation threshold)."""
    g = _as_gamma(gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = sigma2 * g / (1.0 - g)
        over = r2 * (1.0 - 1.0 / g) + sigma2 / (g - 1.0)
    return np.where(g < 1, under, np.where(g > 1, over, np.inf))


def min_norm_risk_finite(n: int, p: np.ndarray | int, r2: float, sigma2: float) -> np.ndarray:
    """Exact E‖X⁺y − β‖² over X with i.i.d. N(0, 1) entries (n × p), ε ~ N(0, σ²), β uniform on
    the sphere of radius r (or any β for p < n). Infinite for |p − n| ≤ 1."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = sigma2 * p / (n - p - 1.0)
        over = r2 * (1.0 - n / p) + sigma2 * n / (p - n - 1.0)
    return np.where(p < n - 1, under, np.where(p > n + 1, over, np.inf))


def mp_stieltjes(lam: np.ndarray | float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """m(−λ) = ∫ dμ(s)/(s + λ) and m'(−λ) = ∫ dμ(s)/(s + λ)² for the Marchenko–Pastur law μ of
    XᵀX/n with p/n = γ (unit variance), λ > 0."""
    lam = np.asarray(lam, dtype=float)
    if np.any(lam <= 0):
        raise ValueError("lam must be > 0")
    b = 1.0 - gamma + lam
    m = (-b + np.sqrt(b * b + 4.0 * gamma * lam)) / (2.0 * gamma * lam)
    dm = (m + gamma * m * m) / (b + 2.0 * gamma * lam * m)
    return m, dm


def ridge_risk(gamma: np.ndarray | float, lam: float, r2: float, sigma2: float) -> np.ndarray:
    """Asymptotic risk r²λ²m'(−λ) + σ²γ(m(−λ) − λm'(−λ)) of ridge with penalty λ (Dobriban &
    Wager 2018; Hastie et al. 2019), isotropic features and β."""
    g = _as_gamma(gamma)
    out = np.empty_like(g)
    for i, gi in np.ndenumerate(g):
        m, dm = mp_stieltjes(lam, float(gi))
        out[i] = r2 * lam**2 * dm + sigma2 * gi * (m - lam * dm)
    return out if out.ndim else out[()]


def optimal_ridge(gamma: float, r2: float, sigma2: float) -> float:
    """λ* = σ²γ/r², the risk-minimizing ridge for isotropic β (Dobriban & Wager 2018)."""
    return sigma2 * gamma / r2
