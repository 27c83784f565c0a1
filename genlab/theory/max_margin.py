"""The hard-margin SVM direction: where gradient descent on separable data goes.

Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, "The implicit bias of gradient descent on
separable data" (JMLR 19; arXiv 1710.10345), Theorem 3: for the logistic (any exponential-tailed)
loss on linearly separable data without bias, GD with a small enough fixed step gives
w(t) = ŵ·log t + ρ(t) with ρ(t) bounded, where ŵ = argmin ‖w‖² s.t. y_n wᵀx_n ≥ 1 (their Sec. 2).
Hence ‖w(t)/‖w(t)‖ − ŵ/‖ŵ‖‖ = O(1/log t), ‖w(t)‖ ~ ‖ŵ‖ log t and the loss is O(1/t).

The QP is solved here in its dual (no bias ⇒ no equality constraint):
max_α Σα_n − ½ αᵀQα, α ≥ 0, Q_nm = y_n y_m x_nᵀx_m, ŵ = Σ α_n y_n x_n,
first as a least-distance program through non-negative least squares (Lawson & Hanson 1974,
Ch. 23; scipy's NNLS active-set routine), accepted only if the KKT conditions hold to 1e-9;
otherwise by exact coordinate ascent followed by an active-set polish (solve the KKT system on
the support, drop negative multipliers, add violated constraints). The tests compare both with
scipy's SLSQP on the primal. :func:`least_distance` is the same QP with a general right-hand side
(min ½‖v‖² s.t. Zv ≥ h), which the projections of continual learning need
(:mod:`genlab.theory.sequential_max_margin`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HardMarginSVM:
    """ŵ (margin 1: min_n y_n ŵᵀx_n = 1), the dual multipliers α and the support indices."""

    w: np.ndarray
    alpha: np.ndarray
    support: np.ndarray

    @property
    def margin(self) -> float:
        """The geometric margin 1/‖ŵ‖ of the normalized direction."""
        return 1.0 / float(np.linalg.norm(self.w))

    @property
    def direction(self) -> np.ndarray:
        return self.w / np.linalg.norm(self.w)


def _kkt_violation(Z: np.ndarray, alpha: np.ndarray, h: np.ndarray | None = None) -> float:
    """Largest violation of the KKT conditions of the dual (gradient h − Qα, α ≥ 0; h = 1 by default)."""
    m = Z @ (Z.T @ alpha)  # margins y_n ŵᵀx_n
    g = (1.0 if h is None else h) - m  # dual gradient
    on = alpha > 0
    viol_on = np.abs(g[on]).max() if on.any() else 0.0
    viol_off = np.maximum(g[~on], 0.0).max() if (~on).any() else 0.0
    return float(max(viol_on, viol_off))


def _ldp(Z: np.ndarray, h: np.ndarray | None = None) -> np.ndarray | None:
    """Least-distance programming (Lawson & Hanson 1974, "Solving least squares problems",
    Ch. 23): min ‖w‖ s.t. Zw ≥ h (h = 1 by default) through the NNLS problem
    min_{u≥0} ‖[Zᵀ; hᵀ]u − e_{d+1}‖; with residual r, ŵ = −r_{1:d}/r_{d+1}, i.e. dual
    multipliers α = u/(1 − hᵀu). Returns α, or None when the residual vanishes (constraints incompatible)."""
    from scipy.optimize import nnls

    n, d = Z.shape
    hv = np.ones(n) if h is None else h
    E = np.vstack([Z.T, hv[None, :]])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * (n + d))
    denom = 1.0 - float(hv @ u)
    if denom <= 1e-12:
        return None
    return u / denom


def hard_margin_svm(
    X: np.ndarray, y: np.ndarray, tol: float = 1e-12, max_sweeps: int = 100_000
) -> HardMarginSVM:
    """Solve min ½‖w‖² s.t. y_n wᵀx_n ≥ 1 (no bias) exactly (see module docstring).

    Raises ValueError if the data are not linearly separable through the origin (the dual is
    then unbounded and the multipliers grow without limit)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError("X must be (n, d) and y (n,)")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError("labels must be ±1")
    Z = X * y[:, None]  # rows y_n x_n
    diag = np.einsum("ij,ij->i", Z, Z)
    if np.any(diag <= 0):
        raise ValueError("a zero input can never satisfy y wᵀx ≥ 1: not separable")
    alpha = _least_distance_dual(Z, None, tol, max_sweeps)
    return HardMarginSVM(w=Z.T @ alpha, alpha=alpha, support=np.flatnonzero(alpha > 0))


def least_distance(Z: np.ndarray, h: np.ndarray, tol: float = 1e-12, max_sweeps: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """v = argmin ½‖v‖² s.t. Z v ≥ h, with its dual multipliers α ≥ 0 (v = Zᵀα): the
    hard-margin QP with a general right-hand side, by the same solver (LDP, then coordinate
    ascent and active-set polish). Rows z_n = 0 are allowed when h_n ≤ 0 (always satisfied).

    Raises ValueError if the constraints have no common solution."""
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    h = np.asarray(h, dtype=float).reshape(-1)
    if Z.shape[0] != h.shape[0]:
        raise ValueError("Z must be (n, d) and h (n,)")
    diag = np.einsum("ij,ij->i", Z, Z)
    if np.any((diag <= 0) & (h > 0)):
        raise ValueError("a zero row with h > 0 can never be satisfied: infeasible")
    keep = diag > 0
    alpha = np.zeros(Z.shape[0])
    if keep.any():
        alpha[keep] = _least_distance_dual(Z[keep], h[keep], tol, max_sweeps)
    return Z.T @ alpha, alpha


def _least_distance_dual(Z: np.ndarray, h: np.ndarray | None, tol: float, max_sweeps: int) -> np.ndarray:
    """Dual multipliers of min ½‖v‖² s.t. Zv ≥ h (h None: all ones), rows of Z nonzero."""
    n = Z.shape[0]
    hv = np.ones(n) if h is None else h
    diag = np.einsum("ij,ij->i", Z, Z)
    try:
        fast = _ldp(Z) if h is None else _ldp(Z, h)
    except RuntimeError:  # NNLS iteration limit: use the robust path
        fast = None
    if fast is not None and _kkt_violation(Z, fast, h) <= 1e-9 * max(1.0, float(np.abs(hv).max())):
        return fast
    alpha = np.zeros(n)
    w = np.zeros(Z.shape[1])
    scale = 1.0
    # 1) coordinate ascent: α_n ← max(0, α_n + (h_n − z_nᵀw)/‖z_n‖²), w kept in sync
    for sweep in range(max_sweeps):
        change = 0.0
        for i in range(n):
            a_new = max(0.0, alpha[i] + (hv[i] - Z[i] @ w) / diag[i])
            delta = a_new - alpha[i]
            if delta != 0.0:
                w += delta * Z[i]
                alpha[i] = a_new
                change = max(change, abs(delta))
        scale = max(1.0, float(alpha.max()))
        if not np.isfinite(scale) or scale > 1e12:
            raise ValueError("data are not linearly separable through the origin (dual unbounded)")
        if change <= 1e-9 * scale and _kkt_violation(Z, alpha, h) <= 1e-7:
            break
    else:
        if _kkt_violation(Z, alpha, h) > 1e-3:
            raise ValueError("data are not linearly separable through the origin (no convergence)")
    # 2) active-set polish: on a support S, the constraints are tight (Z_S v = h_S, v ∈ span Z_S)
    support = alpha > 1e-10 * scale
    for _ in range(10 * n):
        S = np.flatnonzero(support)
        if S.size == 0:  # v = 0 may be feasible (h ≤ 0): the candidate is α = 0
            a_S = np.zeros(0)
        else:
            a_S, *_ = np.linalg.lstsq(Z[S] @ Z[S].T, hv[S], rcond=None)
        if np.any(a_S < 0):  # drop the most negative multiplier and retry
            support[S[np.argmin(a_S)]] = False
            continue
        cand = np.zeros(n)
        cand[S] = a_S
        slack = Z @ (Z.T @ cand) - hv
        worst = int(np.argmin(slack))
        if slack[worst] < -tol and not support[worst]:
            support[worst] = True
            continue
        if _kkt_violation(Z, cand, h) <= max(_kkt_violation(Z, alpha, h), 1e-9):
            alpha = cand
        break
    return alpha


def max_margin_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ŵ = argmin ‖w‖² s.t. y_n wᵀx_n ≥ 1 (Soudry et al. 2018): GD's log-t growth vector."""
    return hard_margin_svm(X, y).w


def direction_error(w: np.ndarray, w_hat: np.ndarray) -> np.ndarray:
    """‖w/‖w‖ − ŵ/‖ŵ‖‖ for one vector w (d,) or a trajectory (T, d)."""
    w = np.asarray(w, dtype=float)
    u = w / np.linalg.norm(w, axis=-1, keepdims=True)
    return np.linalg.norm(u - w_hat / np.linalg.norm(w_hat), axis=-1)
