"""The lexicographic ℓ1 max-margin solution, by a sequence of linear programs.

Nacson, Gunasekar, Lee, Srebro & Soudry 2019, "Lexicographic and depth-sensitive margins in
homogeneous and non-homogeneous deep models" (ICML; arXiv 1905.07325): the limit direction of the
margin path is a *lexicographic* max-margin solution — among the max-margin solutions, the one whose
next-smallest margins are largest, and so on (their Sec. 3, lexicographic margin). For a depth-2
diagonal network β = u∘u − v∘v the smallest parameter norm ‖u‖² + ‖v‖² realizing β is ‖β‖₁, so
the margin problem in β is the ℓ1 max-margin problem
    max_β  min_n z_nᵀβ   s.t.  ‖β‖₁ ≤ 1,   z_n = y_n x_n,
and its lexicographic refinement is computed here by the classical sequential-LP ("leximin")
scheme: solve the LP for the largest common level t over the free points; fix at t every free
point that cannot exceed t in any optimal solution (one LP per point: maximize its margin with the
others held at ≥ t); repeat with the remaining points until none is free. Solved with
``scipy.optimize.linprog`` (HiGHS) on β = β⁺ − β⁻, β± ≥ 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass(frozen=True)
class LexicographicMargin:
    """β (‖β‖₁ = 1), its margins z_nᵀβ, the level each point was fixed at, and whether β is
    the only point of ℓ1-norm ≤ 1 attaining those levels (``unique``)."""

    beta: np.ndarray
    margins: np.ndarray
    levels: np.ndarray
    unique: bool

    @property
    def margin(self) -> float:
        """The ℓ1 max-margin γ = min_n z_nᵀβ."""
        return float(self.margins.min())


def _lp(c: np.ndarray, Z: np.ndarray, free: np.ndarray, fixed_levels: np.ndarray, t_fixed: float | None):
    """maximize cᵀ[β⁺, β⁻, t] with free points ≥ t (or ≥ t_fixed), fixed points ≥ their level, ‖β‖₁ ≤ 1."""
    n, d = Z.shape
    A, b = [], []
    for i in range(n):
        row = np.concatenate([-Z[i], Z[i], [0.0]])
        if free[i]:
            if t_fixed is None:
                row[-1] = 1.0
                A.append(row)
                b.append(0.0)
            else:
                A.append(row)
                b.append(-t_fixed)
        else:
            A.append(row)
            b.append(-fixed_levels[i])
    A.append(np.concatenate([np.ones(2 * d), [0.0]]))
    b.append(1.0)
    bounds = [(0, None)] * (2 * d) + [(None, None) if t_fixed is None else (0, 0)]
    res = linprog(-c, A_ub=np.asarray(A), b_ub=np.asarray(b), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    x = res.x
    return -float(res.fun), x[:d] - x[d : 2 * d]


def lexicographic_max_margin(Z: np.ndarray, tol: float = 1e-7) -> LexicographicMargin:
    """The lexicographic ℓ1 max-margin β for rows z_n = y_n x_n (see module docstring).

    ``tol`` decides when a point "cannot exceed" the current level (LP accuracy is ~1e-9).
    Raises ValueError if the points are not separable by any β (ℓ1 max margin ≤ 0)."""
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    n, d = Z.shape
    free = np.ones(n, dtype=bool)
    levels = np.full(n, np.nan)
    c_t = np.zeros(2 * d + 1)
    c_t[-1] = 1.0
    beta = np.zeros(d)
    first = True
    while free.any():
        t, beta = _lp(c_t, Z, free, levels, None)
        if first and t <= tol:
            raise ValueError("not separable: the ℓ1 max margin is not positive")
        first = False
        blocked = []
        for i in np.flatnonzero(free):
            c = np.concatenate([Z[i], -Z[i], [0.0]])
            best, _ = _lp(c, Z, free, levels, t)
            if best <= t + tol * max(1.0, abs(t)):
                blocked.append(i)
        if not blocked:  # numerical safety: fix the point tightest at this solution
            blocked = [int(np.flatnonzero(free)[np.argmin(Z[free] @ beta)])]
        levels[blocked] = t
        free[blocked] = False
    # final point: any β meeting every level; unique iff each coordinate is pinned down
    unique = True
    for j in range(d):
        e = np.zeros(2 * d + 1)
        e[j], e[d + j] = 1.0, -1.0
        hi, beta_hi = _lp(e, Z, free, levels, 0.0)
        lo, _ = _lp(-e, Z, free, levels, 0.0)
        if hi + lo > 1e3 * tol:  # hi = max β_j, −lo = min β_j
            unique = False
    beta = beta_hi if d else beta
    return LexicographicMargin(beta=beta, margins=Z @ beta, levels=levels, unique=unique)
