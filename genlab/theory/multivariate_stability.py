"""Linear stability of GD minima of multivariate two-layer ReLU networks, in function space.

Nacson, Mulayoff, Ongie, Michaeli & Soudry 2023, "The implicit bias of minima stability in
multivariate shallow ReLU networks" (ICLR; arXiv 2306.17499): for
f(x) = Σ_k a_k[w_kᵀx + b_k]_+ + c trained by GD with step η on L = (1/2n)Σ(f(x_j) − y_j)², a
linearly stable interpolating minimum (λ_max(∇²L) ≤ 2/η) has a bounded weighted norm of the
Radon transform of its Laplacian, ∫ g(u, t)|ℛ{Δf}(u, t)| ≤ 1/η − 1/2 (the ½ from the output
bias c), the multivariate form of Mulayoff, Michaeli & Soudry 2021 (NeurIPS, eqs. 21–23).

What is encoded. For a finite network Δf is a sum of measures on the units' hyperplanes
{x: uᵀx = t} with masses the gradient jumps a_k‖w_k‖ (see :mod:`genlab.theory.r_norm`), so the
weighted norm is Σ_hyperplanes |jump|·g(u, t). We could not read the paper's exact statement of
g; the weight here is the direct generalization of the univariate g of Mulayoff et al. 2021 to
the projection uᵀX of X uniform over the training inputs:
    g⁺(u, t) = P(uᵀX > t)² · E[uᵀX − t | uᵀX > t] · sqrt(1 + ‖E[X | uᵀX > t]‖²),
    g⁻(u, t) = g⁺(−u, −t),   g = min(g⁺, g⁻),
which reduces to :func:`genlab.theory.stability.stability_weight` for d = 1. The bound it gives,
λ_max ≥ 1 + 2·Σ|jump|·g at any interpolating minimum, is tested against dense Hessians of random
interpolating networks (tests/test_multivariate_stability.py), not taken on trust.
"""

from __future__ import annotations

import numpy as np

from genlab.theory.r_norm import relu_hyperplanes


def _one_side(x: np.ndarray, u: np.ndarray, t: np.ndarray) -> np.ndarray:
    """g⁺(u, t) for each row of u (m, d) and t (m,), X uniform over the rows of x (n, d)."""
    proj = u @ x.T  # (m, n)
    above = proj > t[:, None]
    cnt = above.sum(1)
    n = x.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.where(cnt > 0, ((proj - t[:, None]) * above).sum(1) / np.maximum(cnt, 1), 0.0)
        mean_x = (above.astype(float) @ x) / np.maximum(cnt, 1)[:, None]
    return (cnt / n) ** 2 * excess * np.sqrt(1.0 + np.sum(mean_x**2, axis=1))


def multivariate_stability_weight(x_train: np.ndarray, u: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """g(u, t) = min(g⁺(u, t), g⁺(−u, −t)) for hyperplanes uᵀx = t, ‖u‖ = 1 (rows of ``u``);
    X uniform over ``x_train`` (n, d). Zero for a hyperplane with all the data on one side."""
    x = np.asarray(x_train, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    u = np.atleast_2d(np.asarray(u, dtype=float))
    t = np.broadcast_to(np.asarray(t, dtype=float), (u.shape[0],))
    if u.shape[1] != x.shape[1]:
        raise ValueError(f"u has dimension {u.shape[1]}, the data {x.shape[1]}")
    return np.minimum(_one_side(x, u, t), _one_side(x, -u, -t))


def weighted_laplacian_norm(w: np.ndarray, b: np.ndarray, a: np.ndarray, x_train: np.ndarray, tol: float = 1e-9) -> float:
    """Σ_hyperplanes |Σ_k a_k‖w_k‖|·g(u, t): the g-weighted norm of ℛ{Δf} of a finite network
    f(x) = Σ_k a_k[w_kᵀx + b_k]_+ + c (units on one hyperplane merged within ``tol``)."""
    planes = relu_hyperplanes(w, b, a, tol)
    if planes.t.size == 0:
        return 0.0
    return float(np.sum(np.abs(planes.jump) * multivariate_stability_weight(x_train, planes.u, planes.t)))


def interpolating_bound(eta: float) -> float:
    """1/η − 1/2: the bound on the weighted norm at a linearly stable interpolating minimum."""
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return 1.0 / eta - 0.5
