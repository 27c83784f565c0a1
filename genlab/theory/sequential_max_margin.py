"""Continual linear classification as sequential max-margin projections (POCS).

Evron, Moroshko, Buzaglo, Khriesh, Marjieh, Srebro & Soudry 2023, "Continual learning in linear
classification on separable data" (ICML; arXiv 2306.03534), Sec. 3: learning jointly separable
binary tasks S_1, …, S_T one after the other with weakly regularized logistic regression,
w_t(λ) = argmin_w Σ_{(x,y)∈S_{τ(t)}} log(1 + e^{−y wᵀx}) + (λ/2)‖w − w_{t−1}(λ)‖², gives in the
limit λ → 0 the *sequential max-margin* iterates, w_t(λ)/ln(1/λ) → w̃_t with

    w̃_t = argmin_w ‖w − w̃_{t−1}‖²  s.t.  y wᵀx ≥ 1 for all (x, y) ∈ S_{τ(t)},   w̃_0 = 0,

i.e. the projection of w̃_{t−1} onto the closed convex set C_{τ(t)} = {w : y wᵀx ≥ 1 on S_{τ(t)}}:
projections onto convex sets (POCS). Each projection is an exact QP solved by the hard-margin
solver with a shifted right-hand side (:func:`genlab.theory.max_margin.least_distance`).

Forgetting here is measured by the constraint violation of an earlier task,
viol_m(w) = max_{(x,y)∈S_m} (1 − y wᵀx)_+, and
    F(k) = (1/k)·Σ_{t≤k} viol_{τ(t)}(w̃_k)²   (the regression definition of Evron et al. 2022 with
    the squared hinge violation in place of the squared residual), F_max(k) = max_{m seen} viol_m(w̃_k)².

Bounds. The paper's own forgetting theorems (cyclic and random orderings) could not be read
offline while this module was written, so their constants are **not** encoded. The bounds below
are derived here from the POCS property the paper's analysis rests on — firm non-expansiveness:
for any w* ∈ ∩_m C_m, ‖w̃_t − w*‖² ≤ ‖w̃_{t−1} − w*‖² − ‖w̃_t − w̃_{t−1}‖², hence
Σ_t ‖w̃_t − w̃_{t−1}‖² ≤ ‖w*‖² (w̃_0 = 0) — and viol_m(w) ≤ R·dist(w, C_m) with R = max‖x‖:
- cyclic order over T tasks: a seen task was projected on at most T − 1 steps ago, so
  F_max(k) ≤ R²(T−1)·Σ_{last T−1 steps}‖Δ‖², and Σ_{k≥1} F_max(k) ≤ (T−1)²R²‖w*‖²;
- i.i.d. uniform random order: E‖Δ_{k+1}‖² = (1/T)Σ_m dist(w̃_k, C_m)², so
  Σ_{k≥0} E max_m viol_m(w̃_k)² ≤ T·R²‖w*‖² (max over all T tasks, seen or not).
With w* the offline max-margin solution (the smallest ‖w*‖). Random orderings lose one factor T
against cyclic ones — the same contrast as in regression (Evron et al. 2022).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genlab.theory.max_margin import hard_margin_svm, least_distance

Task = tuple[np.ndarray, np.ndarray]  # (X (n, d), y (n,) in ±1)


def _rows(task: Task) -> np.ndarray:
    X, y = task
    X = np.atleast_2d(np.asarray(X, dtype=float))
    y = np.asarray(y, dtype=float).reshape(-1)
    if X.shape[0] != y.shape[0]:
        raise ValueError("each task needs X (n, d) and y (n,)")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError("labels must be ±1")
    return X * y[:, None]


def project_onto_task(w_prev: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ‖w − w_prev‖² s.t. y_n wᵀx_n ≥ 1 on the task: the sequential max-margin step
    (Evron et al. 2023, Sec. 3), solved exactly as min ‖v‖² s.t. Zv ≥ 1 − Z w_prev, w = w_prev + v."""
    Z = _rows((X, y))
    w_prev = np.asarray(w_prev, dtype=float)
    v, _ = least_distance(Z, 1.0 - Z @ w_prev)
    return w_prev + v


def sequential_max_margin(tasks: Sequence[Task], order: Sequence[int], w0: np.ndarray | None = None) -> np.ndarray:
    """The iterates w̃_0, w̃_1, …, w̃_k (shape (k + 1, d)) of projecting onto the tasks in ``order``."""
    d = np.atleast_2d(np.asarray(tasks[0][0])).shape[1]
    w = np.zeros(d) if w0 is None else np.asarray(w0, dtype=float).copy()
    out = [w.copy()]
    for m in order:
        if not 0 <= int(m) < len(tasks):
            raise ValueError(f"order entries must be task indices in [0, {len(tasks)}), got {m}")
        w = project_onto_task(w, *tasks[int(m)])
        out.append(w.copy())
    return np.asarray(out)


def offline_max_margin(tasks: Sequence[Task]) -> np.ndarray:
    """The joint (offline) max-margin solution ŵ = argmin ‖w‖² s.t. y wᵀx ≥ 1 on every task:
    the smallest-norm point of ∩_m C_m, i.e. the projection of 0 onto the intersection."""
    X = np.vstack([np.atleast_2d(np.asarray(t[0], dtype=float)) for t in tasks])
    y = np.concatenate([np.asarray(t[1], dtype=float).reshape(-1) for t in tasks])
    return hard_margin_svm(X, y).w


def task_violation(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """viol(w) = max_n (1 − y_n wᵀx_n)_+: how far w is from satisfying the task's margin constraints."""
    Z = _rows((X, y))
    return float(max(0.0, np.max(1.0 - Z @ np.asarray(w, dtype=float))))


def forgetting(tasks: Sequence[Task], order: Sequence[int], iterates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F(k), F_max(k)) for k = 1..len(order) (see module docstring): the average and the largest
    squared violation, at w̃_k, of the tasks seen up to step k."""
    k_max = len(order)
    F = np.empty(k_max)
    Fmax = np.empty(k_max)
    for k in range(1, k_max + 1):
        w = iterates[k]
        seen = [int(m) for m in order[:k]]
        v = {m: task_violation(w, *tasks[m]) ** 2 for m in set(seen)}
        F[k - 1] = sum(v[m] for m in seen) / k
        Fmax[k - 1] = max(v.values())
    return F, Fmax


def data_radius(tasks: Sequence[Task]) -> float:
    """R = max ‖x‖ over every example of every task."""
    return float(max(np.linalg.norm(np.atleast_2d(np.asarray(t[0], dtype=float)), axis=1).max() for t in tasks))


def cyclic_cumulative_bound(T: int, R: float, w_star_norm: float) -> float:
    """Σ_{k≥1} F_max(k) ≤ (T−1)²·R²·‖w*‖² for a cyclic order over T tasks (derived in the module
    docstring from POCS firm non-expansiveness; Evron et al. 2023 analyse the same iterates)."""
    if T < 1:
        raise ValueError("T must be >= 1")
    return float((T - 1) ** 2 * R**2 * w_star_norm**2)


def random_cumulative_bound(T: int, R: float, w_star_norm: float) -> float:
    """Σ_{k≥0} E max_m viol_m(w̃_k)² ≤ T·R²·‖w*‖² for i.i.d. uniform orders over T tasks (derived
    in the module docstring; the maximum runs over all T tasks)."""
    if T < 1:
        raise ValueError("T must be >= 1")
    return float(T * R**2 * w_star_norm**2)


def affine_projection_iterates(tasks: Sequence[tuple[np.ndarray, np.ndarray]], order: Sequence[int]) -> np.ndarray:
    """The regression counterpart (Evron et al. 2022): w_t = w_{t−1} + X⁺(y − X w_{t−1}), the
    projection onto the affine set {w : Xw = y}; iterates w_0 = 0, …, w_k."""
    d = np.atleast_2d(np.asarray(tasks[0][0])).shape[1]
    pinvs = [np.linalg.pinv(np.atleast_2d(np.asarray(X, dtype=float))) for X, _ in tasks]
    w = np.zeros(d)
    out = [w.copy()]
    for m in order:
        X, y = tasks[int(m)]
        w = w + pinvs[int(m)] @ (np.asarray(y, dtype=float) - np.atleast_2d(X) @ w)
        out.append(w.copy())
    return np.asarray(out)
