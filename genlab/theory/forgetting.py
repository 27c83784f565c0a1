"""Forgetting in continual linear regression, fitted task by task to convergence.

Evron, Moroshko, Ward, Srebro & Soudry 2022, "How catastrophic can catastrophic forgetting be in
linear regression?" (COLT; arXiv 2205.09588). Tasks (X_m, y_m) jointly realizable, y_m = X_m w*;
training on task m from w_{t−1} to convergence (GD/SGD on the squared loss) gives the projection
update w_t = w_{t−1} + X_m⁺(y_m − X_m w_{t−1}) (their Sec. 2), so w_t − w* = P_m(w_{t−1} − w*) with
P_m = I − X_m⁺X_m the projection onto the null space of X_m. With w_0 = 0 the forgetting after k
iterations of the ordering τ is (their definition of forgetting)
    F_τ(k) = (1/k)·Σ_{t=1}^{k} ‖X_{τ(t)} w_k − y_{τ(t)}‖² = (1/k)·Σ_t ‖X_{τ(t)} P_{τ(k)}⋯P_{τ(1)} w*‖².
Theorem (cyclic ordering of T tasks, ‖X_m‖₂ ≤ 1, ‖w*‖ ≤ 1, d the dimension):
    F(k) ≤ T²·min(1/√k, d/k)   (abstract and their cyclic-ordering theorem; k counts iterations).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def null_space_projector(X: np.ndarray) -> np.ndarray:
    """P = I − X⁺X, the orthogonal projection onto the null space of X."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.eye(X.shape[1]) - np.linalg.pinv(X) @ X


def forgetting_curve(tasks: Sequence[np.ndarray], w_star: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """F_τ(k) for k = 1..len(order) by the product-of-projections formula (Evron et al. 2022,
    definition of forgetting, with the error recursion e_t = P_{τ(t)} e_{t−1}, e_0 = −w*)."""
    projs = [null_space_projector(X) for X in tasks]
    e = -np.asarray(w_star, dtype=float)
    out = np.empty(len(order))
    for k, m in enumerate(order, start=1):
        e = projs[m] @ e
        seen = order[:k]
        out[k - 1] = sum(float(np.sum((tasks[j] @ e) ** 2)) for j in seen) / k
    return out


def cyclic_forgetting_bound(T: int, k: np.ndarray | int, d: int) -> np.ndarray:
    """T²·min(1/√k, d/k): the worst-case forgetting after k cyclic iterations over T tasks in
    dimension d (Evron et al. 2022, abstract and cyclic-ordering theorem; normalization ‖X_m‖ ≤ 1, ‖w*‖ ≤ 1)."""
    k = np.asarray(k, dtype=float)
    if np.any(k < 1):
        raise ValueError("k must be >= 1")
    return T**2 * np.minimum(1.0 / np.sqrt(k), d / k)


def two_task_forgetting(X1: np.ndarray, X2: np.ndarray, w_star: np.ndarray) -> float:
    """Forgetting of task 1 after fitting task 1 then task 2 from w_0 = 0: ‖X1 P2 P1 w*‖²
    (Goldfarb, Evron, Weinberger, Soudry & Hand 2024, arXiv 2401.12617, Sec. 2; the same
    projection algebra as Evron et al. 2022, summed loss, task 2 fitted exactly)."""
    P1, P2 = null_space_projector(X1), null_space_projector(X2)
    return float(np.sum((X1 @ (P2 @ (P1 @ w_star))) ** 2))
