"""Closed form of the gradient-flow solution of scalar networks and its sharpness.

For f(w) = Π_i w_i and L(w) = ½(Π_i w_i − y)², gradient flow conserves w_i² − w_j² for every
pair (du/dt of w_i² equals −2(Πw − y)Πw for every i), so its limit is w'_i with
w'_i² = w_i² + δ, signs kept, and Π_i |w'_i| = |y| (Kreisler, Nacson, Soudry & Carmon 2023,
arXiv 2305.13064, §4, the balancedness invariant). At that minimizer ∇²L = ∇f ∇fᵀ, so the GFS
sharpness is ‖∇f(w')‖² = Σ_i Π_{j≠i} w'_j² (ibid., eq. for φ on scalar networks).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def scalar_gf_limit(w: np.ndarray, y: float) -> np.ndarray:
    """The limit w' of gradient flow on ½(Π w_i − y)² from ``w`` (needs sign(Π w) = sign(y) ≠ 0)."""
    w = np.asarray(w, dtype=np.float64)
    p = float(np.prod(w))
    if y == 0 or p == 0 or np.sign(p) != np.sign(y):
        raise ValueError("the closed form needs Π w_i and y of the same (non-zero) sign")
    # h(δ) = Σ ½ log(w_i² + δ) − log|y| is increasing in δ on (−min w_i², ∞)
    w2 = w**2
    h = lambda d: 0.5 * np.sum(np.log(w2 + d)) - np.log(abs(y))  # noqa: E731
    lo = -w2.min() * (1 - 1e-15)
    hi = 1.0
    while h(hi) < 0:
        hi *= 2.0
    if h(lo) > 0:
        delta = lo
    else:
        delta = brentq(h, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    return np.sign(w) * np.sqrt(w2 + delta)


def scalar_gfs_sharpness(w: np.ndarray, y: float) -> float:
    """φ(w) = Σ_i Π_{j≠i} w'_j² at the gradient-flow limit w' of :func:`scalar_gf_limit`."""
    wp = scalar_gf_limit(w, y)
    w2 = wp**2
    return float(sum(np.prod(np.delete(w2, i)) for i in range(len(w2))))
