"""Linear stability of gradient-descent minima and what it implies in function space.

References:
- Mulayoff, Michaeli & Soudry 2021, "The implicit bias of minima stability: a view from
  function space" (NeurIPS), eqs. (21)–(23): the weight function g and the bound for
  interpolating minima.
- Liang, Qiao, Wang & Parhi 2025, "Stable minima of ReLU neural networks suffer from the
  curse of dimensionality" (arXiv 2506.20779), Theorem 3.2, which contains the univariate
  non-interpolating bound of Qiao, Zhang, Singh, Soudry & Wang 2024 (arXiv 2406.06838).
"""

from __future__ import annotations

import numpy as np


def linear_stability_threshold(eta: float) -> float:
    """GD with step η can converge to a minimum only if λ_max(∇²L) ≤ 2/η (linear stability)."""
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return 2.0 / eta


def stability_weight(x_train: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """The weight g(x) of Mulayoff et al. 2021, eqs. (22)–(23).

    g(x) = min(g⁻(x), g⁺(x)) on [min x_j, max x_j] and 0 outside, with X uniform over the
    training inputs {x_j}:
        g⁻(x) = P(X < x)² · E[x − X | X < x] · sqrt(1 + E[X | X < x]²),
        g⁺(x) = P(X > x)² · E[X − x | X > x] · sqrt(1 + E[X | X > x]²).
    Where the conditioning event is empty the factor is 0.
    """
    xs = np.sort(np.asarray(x_train, dtype=float).ravel())
    q = np.atleast_1d(np.asarray(x, dtype=float))
    n = xs.size
    csum = np.concatenate([[0.0], np.cumsum(xs)])
    below = np.searchsorted(xs, q, side="left")  # count of x_j < x
    above = n - np.searchsorted(xs, q, side="right")  # count of x_j > x
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_below = np.where(below > 0, csum[below] / np.maximum(below, 1), 0.0)
        mean_above = np.where(above > 0, (csum[n] - csum[n - above]) / np.maximum(above, 1), 0.0)
    g_minus = (below / n) ** 2 * (q - mean_below) * np.sqrt(1.0 + mean_below**2)
    g_plus = (above / n) ** 2 * (mean_above - q) * np.sqrt(1.0 + mean_above**2)
    g_minus = np.where(below > 0, g_minus, 0.0)
    g_plus = np.where(above > 0, g_plus, 0.0)
    g = np.minimum(g_minus, g_plus)
    inside = (q >= xs[0]) & (q <= xs[-1])
    return np.where(inside, np.maximum(g, 0.0), 0.0)


def interpolating_tv_bound(eta: float) -> float:
    """Bound on ∫|f''|g for an interpolating, linearly stable minimum of GD with step η:
    1/η − 1/2 (Mulayoff et al. 2021, Theorem 1, eq. 21; the 1/2 comes from the output bias)."""
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return 1.0 / eta - 0.5


def stable_tv_bound(lambda_max: float, loss: float, radius: float) -> float:
    """Bound on the weighted variation at any point where L is twice differentiable:

        ∫|f''| g ≤ λ_max(∇²L(θ))/2 − 1/2 + (R + 1)·sqrt(2 L(θ)),

    with L(θ) = (1/2n) Σ (f(x_j) − y_j)² and the data in [−R, R] (Liang, Qiao, Wang & Parhi
    2025, arXiv 2506.20779, Theorem 3.2; univariate case of Qiao et al. 2024). With
    λ_max ≤ 2/η this gives 1/η − 1/2 + (R + 1)·sqrt(2L).
    """
    return 0.5 * float(lambda_max) - 0.5 + (float(radius) + 1.0) * float(np.sqrt(2.0 * max(float(loss), 0.0)))
