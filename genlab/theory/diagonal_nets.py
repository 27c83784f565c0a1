"""Implicit bias of diagonal linear networks: the Q_α interpolator and its two limits.

Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020, "Kernel and rich
regimes in overparametrized models" (COLT, arXiv 2002.09277), Thm 1: gradient flow on the
squared loss of β = u∘u − v∘v from u(0) = v(0) = α·1, if it reaches zero loss, converges to

    β_α = argmin Q_α(β)  s.t.  Xβ = y,    Q_α(β) = α²·Σ_i q(β_i/α²),
    q(z) = 2 − sqrt(4 + z²) + z·arcsinh(z/2),

and Q_α → (1/(4α²))‖β‖₂² as α → ∞ (kernel regime: min-ℓ2), Q_α/ (log(1/α²)) → ‖β‖₁ as α → 0
(rich regime: min-ℓ1) (their Thm 2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.optimize import linprog

__all__ = ["q_function", "q_alpha", "qalpha_interpolator", "min_l1_interpolator", "min_l2_interpolator"]


def q_function(z: np.ndarray) -> np.ndarray:
    """q(z) = 2 − sqrt(4 + z²) + z·arcsinh(z/2) (Woodworth et al. 2020, Thm 1); q' = arcsinh(z/2)."""
    z = np.asarray(z, dtype=np.float64)
    # 2 − sqrt(4 + z²) = −z²/(2 + sqrt(4 + z²)): no cancellation for small |z|
    return z * np.arcsinh(z / 2.0) - z * z / (2.0 + np.sqrt(4.0 + z * z))


def q_alpha(beta: np.ndarray, alpha: float) -> float:
    """Q_α(β) = α²·Σ_i q(β_i/α²) (Woodworth et al. 2020, Thm 1)."""
    a2 = float(alpha) ** 2
    return float(a2 * np.sum(q_function(np.asarray(beta, dtype=np.float64) / a2)))


def _check(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"need X of shape (n, d) and y of length n, got {X.shape} and {y.shape}")
    return X, y


@dataclass(frozen=True)
class QAlphaSolution:
    """The interpolator, its dual variable ν (β = 2α² sinh(Xᵀν)) and solver diagnostics."""

    beta: np.ndarray
    nu: np.ndarray
    iterations: int
    residual: float  # ‖Xβ − y‖ / ‖y‖


def qalpha_interpolator(
    X: np.ndarray, y: np.ndarray, alpha: float, *, tol: float = 1e-12, max_iter: int = 500, full: bool = False
) -> np.ndarray | QAlphaSolution:
    """argmin Q_α(β) s.t. Xβ = y (Woodworth et al. 2020, Thm 1), by Newton's method on the dual.

    Q_α is strictly convex with ∇Q_α(β)_i = arcsinh(β_i/(2α²)); the KKT conditions
    ∇Q_α(β) = Xᵀν, Xβ = y give β(ν) = 2α²·sinh(Xᵀν), and ν minimizes the smooth convex dual
    φ(ν) = 2α²·Σ_i (cosh((Xᵀν)_i) − 1) − νᵀy (Fenchel conjugate of α²q(·/α²) is 2α²(cosh − 1)),
    with ∇φ = Xβ(ν) − y and ∇²φ = X·diag(2α² cosh(Xᵀν))·Xᵀ. Damped Newton with Armijo backtracking,
    stopped when ‖Xβ − y‖ ≤ tol·‖y‖ or when no further decrease is representable. X must have full
    row rank (n ≤ d) for a solution to exist; a relative residual above 1e-6 raises RuntimeError.

    Returns β, or a :class:`QAlphaSolution` with ``full=True``.
    """
    X, y = _check(X, y)
    if not (alpha > 0 and np.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    a2 = float(alpha) ** 2
    scale_y = max(float(np.linalg.norm(y)), np.finfo(float).tiny)
    nu = np.zeros(X.shape[0])

    def phi(v: np.ndarray) -> float:
        s = X.T @ v
        with np.errstate(over="ignore"):  # cosh − 1 = 2 sinh²(s/2), exact for tiny s
            return float(4 * a2 * np.sum(np.sinh(s / 2) ** 2) - v @ y)

    it = 0
    val = phi(nu)
    resid = best = np.inf
    stalled = 0
    for it in range(1, max_iter + 1):
        s = X.T @ nu
        beta = 2 * a2 * np.sinh(s)
        grad = X @ beta - y
        resid = float(np.linalg.norm(grad)) / scale_y
        if resid <= tol:
            break
        hess = (X * (2 * a2 * np.cosh(s))) @ X.T
        try:
            with warnings.catch_warnings():  # ill-conditioned at tiny α; lstsq fallback on failure
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                step = -scipy.linalg.solve(hess, grad, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
        slope = float(grad @ step)
        if -slope <= 1e-10 * abs(val):
            # Newton decrement below what φ can resolve in floating point: inside the region of
            # quadratic convergence, take full steps and judge them by the residual alone
            nu = nu + step
            val = phi(nu)
            stalled = stalled + 1 if resid >= best else 0
            best = min(best, resid)
            if stalled >= 3:
                break
            continue
        step_norm = float(np.linalg.norm(step))
        t = 1.0
        while t * step_norm > 1e-17 * (1.0 + float(np.linalg.norm(nu))):
            cand = phi(nu + t * step)
            if np.isfinite(cand) and cand <= val + 1e-4 * t * slope:
                break
            t *= 0.5
        else:  # no step changes ν in floating point
            break
        nu = nu + t * step
        val = phi(nu)
    beta = 2 * a2 * np.sinh(X.T @ nu)
    resid = float(np.linalg.norm(X @ beta - y)) / scale_y
    if not resid <= 1e-6:
        raise RuntimeError(
            f"qalpha_interpolator did not converge (relative residual {resid:.3g} after {it} Newton steps); "
            "X must have full row rank, and alpha must not be extremely small (alpha >= 1e-30 is tested)"
        )
    if full:
        return QAlphaSolution(beta=beta, nu=nu, iterations=it, residual=resid)
    return beta


def min_l1_interpolator(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ‖β‖₁ s.t. Xβ = y (basis pursuit; Chen, Donoho & Saunders 1998), as the linear
    program min 1ᵀ(p + m) s.t. X(p − m) = y, p, m ≥ 0 (scipy's HiGHS)."""
    X, y = _check(X, y)
    n, d = X.shape
    res = linprog(
        c=np.ones(2 * d),
        A_eq=np.hstack([X, -X]),
        b_eq=y,
        bounds=[(0, None)] * (2 * d),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:
        raise RuntimeError(f"basis-pursuit LP failed: {res.message}")
    return res.x[:d] - res.x[d:]


def min_l2_interpolator(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ‖β‖₂ s.t. Xβ = y: β = X⁺y (Moore–Penrose pseudo-inverse)."""
    X, y = _check(X, y)
    return np.linalg.pinv(X) @ y
