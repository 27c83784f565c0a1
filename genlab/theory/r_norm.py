"""The R-norm of a two-layer ReLU network f: ℝ^d → ℝ (the multivariate representation cost).

Ongie, Willett, Soudry & Srebro 2020, "A function space view of bounded norm infinite width ReLU
nets: the multivariate case" (ICLR; arXiv 1910.01635). For
    f(x) = Σ_k a_k [w_kᵀx + b_k]_+ + vᵀx + c
with the biases b_k and the linear part (v, c) unregularized and the weight cost
C(θ) = ½Σ_k (a_k² + ‖w_k‖²), the least cost over networks of any width representing f is the
R-norm R(f) = ‖ℛ{(−Δ)^{(d+1)/2} f}‖₁ (up to the paper's constant γ_d). For a finite network whose
units lie on distinct hyperplanes this is R(f) = Σ_k |a_k|·‖w_k‖ (the paper's finite-width
case); units on the same hyperplane {x: uᵀx = t} (‖u‖ = 1, either orientation) are merged first:
since a[z]_+ + a'[−z]_+ = (a + a')[z]_+ − a'z, each unit adds a_k‖w_k‖ to the signed jump of the
gradient across its hyperplane, and R(f) = Σ_hyperplanes |Σ_k a_k‖w_k‖|.

C(θ) ≥ Σ|a_k|‖w_k‖ ≥ R(f_θ) (AM–GM; equality in the first when |a_k| = ‖w_k‖, the balanced
point reached by the rescaling a → a/s, w → s·w that leaves f unchanged).

Closed forms used as references: a ridge g(uᵀx) with ‖u‖ = 1 and g piecewise linear has
R = ∫|g''| (its units share one direction; Ongie et al. 2020, Sec. 4 treat ridge functions), and
a finite sum of ridges along distinct directions adds. We could not confirm the paper's constants
for radial bump functions, so none are encoded here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hyperplanes:
    """Merged hyperplanes {x: uᵀx = t} (rows of ``u`` unit, canonical sign) and the signed jump
    of the normal derivative of f across each (from uᵀx < t to uᵀx > t)."""

    u: np.ndarray  # (m, d)
    t: np.ndarray  # (m,)
    jump: np.ndarray  # (m,)


def relu_hyperplanes(w: np.ndarray, b: np.ndarray, a: np.ndarray, tol: float = 1e-9) -> Hyperplanes:
    """The hyperplanes of f(x) = Σ_k a_k[w_kᵀx + b_k]_+ (+ linear), units on the same hyperplane
    (within ``tol`` in (u, t)) merged; units with w_k = 0 are constants and have none.

    Unit k: u = w_k/‖w_k‖, t = −b_k/‖w_k‖; the canonical orientation makes the first nonzero
    entry of u positive (flipping (u, t) → (−u, −t)). Its jump across the plane along u is
    a_k‖w_k‖ in either orientation."""
    w = np.atleast_2d(np.asarray(w, dtype=float))
    b, a = (np.asarray(z, dtype=float).reshape(-1) for z in (b, a))
    if not (w.shape[0] == b.size == a.size):
        raise ValueError(f"w (k, d), b (k,), a (k,) must agree in k, got {w.shape}, {b.shape}, {a.shape}")
    norms = np.linalg.norm(w, axis=1)
    live = norms > 0
    u = w[live] / norms[live, None]
    t = -b[live] / norms[live]
    jump = a[live] * norms[live]
    first = np.argmax(np.abs(u) > 1e-12, axis=1)
    sign = np.where(u[np.arange(u.shape[0]), first] < 0, -1.0, 1.0)
    keys = np.hstack([u, t[:, None]]) * sign[:, None]
    group = np.full(keys.shape[0], -1)
    n_groups = 0
    for i in range(keys.shape[0]):  # greedy: every unassigned unit within tol of unit i (either orientation)
        if group[i] >= 0:
            continue
        dist = np.minimum(np.abs(keys - keys[i]).max(1), np.abs(keys + keys[i]).max(1))
        group[(dist <= tol) & (group < 0)] = n_groups
        n_groups += 1
    if n_groups == 0:
        return Hyperplanes(np.zeros((0, w.shape[1])), np.zeros(0), np.zeros(0))
    reps = np.array([np.flatnonzero(group == g)[0] for g in range(n_groups)])
    return Hyperplanes(keys[reps, :-1], keys[reps, -1], np.bincount(group, weights=jump, minlength=n_groups))


def r_norm(w: np.ndarray, b: np.ndarray, a: np.ndarray, tol: float = 1e-9) -> float:
    """R(f) = Σ over merged hyperplanes of |Σ_k a_k‖w_k‖| (Ongie et al. 2020, finite-width case;
    the linear part of f is free)."""
    return float(np.abs(relu_hyperplanes(w, b, a, tol).jump).sum())


def path_cost(w: np.ndarray, a: np.ndarray) -> float:
    """Σ_k |a_k|·‖w_k‖: the cost at the balanced point, without merging."""
    return float(np.sum(np.abs(np.asarray(a, float).reshape(-1)) * np.linalg.norm(np.atleast_2d(w), axis=1)))


def weight_cost(w: np.ndarray, a: np.ndarray) -> float:
    """C(θ) = ½Σ_k (a_k² + ‖w_k‖²) (biases and the linear part excluded)."""
    return 0.5 * float(np.sum(np.square(a)) + np.sum(np.square(w)))


def balance(w: np.ndarray, b: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rescale each unit (w, b, a) → (s w, s b, a/s), s = sqrt(|a|/‖w‖), to |a_k| = ‖w_k‖ without
    changing f: then C(θ) = Σ|a_k|‖w_k‖."""
    w = np.atleast_2d(np.asarray(w, float))
    a = np.asarray(a, float).reshape(-1)
    nw = np.linalg.norm(w, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where((nw > 0) & (a != 0), np.sqrt(np.abs(a) / np.where(nw > 0, nw, 1.0)), 1.0)
    return w * s[:, None], np.asarray(b, float).reshape(-1) * s, a / s


def ridge_r_norm(slope_jumps: np.ndarray) -> float:
    """R of a ridge g(uᵀx), ‖u‖ = 1, g piecewise linear with the given slope jumps: ∫|g''| = Σ|jump|."""
    return float(np.abs(np.asarray(slope_jumps, float)).sum())
