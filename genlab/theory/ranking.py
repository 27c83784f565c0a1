"""The evaluation protocol of Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020 ("Fantastic
generalization measures and where to find them", arXiv 1912.02178, Sec. 6) on a zoo of models.

- Kendall's τ between a measure and the generalization gap over all models (Eq. 3; ties handled as
  τ-b, the convention of ``scipy.stats.kendalltau``).
- Granulated τ (Eqs. 4–5): for hyperparameter axis i, τ over the models that differ only in axis i,
  averaged over every setting of the other axes (ψ_i), and Ψ = mean_i ψ_i.
- Conditional mutual information (Sec. 6.2): over pairs of models, V_μ = sign(μ(θ) − μ(θ′)) and
  V_g = sign(g(θ) − g(θ′)); for every set S of at most ``max_conditioning`` axes, Î(V_μ; V_g | U_S)
  normalised by H(V_g | U_S), U_S the pair's values of the axes in S; K(μ) = min over S. Pairs:
  genlab uses every unordered pair of models with different gaps (a reading of the paper's "pairs
  of models"; the paper does not fix it in a formula).
- Intervals: percentile bootstrap over models (τ, K) or over the granulated τ's groups (ψ_i).

numpy only (no torch): these are statistics of a table of numbers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two sequences by the pairwise definition (O(n²)):
    (C − D)/sqrt((n₀ − n₁)(n₀ − n₂)), n₀ = n(n−1)/2, n₁, n₂ the pairs tied in a, in b.
    nan when either sequence is constant (or fewer than two values)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.shape} and {y.shape}")
    i, j = np.triu_indices(x.size, 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = i.size
    tx, ty = n0 - np.count_nonzero(sx), n0 - np.count_nonzero(sy)
    den = np.sqrt(float(n0 - tx) * float(n0 - ty))
    return float(np.sum(sx * sy) / den) if den > 0 else float("nan")


def granulated_tau(measure: Sequence[float], gap: Sequence[float], axes: dict[str, Sequence]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """ψ_i per axis (Jiang et al. Eq. 4) and the per-group τ's behind it: for axis i, models are
    grouped by their values on every other axis; each group with two or more distinct values of
    axis i (and a non-constant measure and gap) gives one τ; ψ_i is their mean (nan if none)."""
    m, g = np.asarray(measure, float), np.asarray(gap, float)
    names = list(axes)
    vals = {k: list(v) for k, v in axes.items()}
    psi: dict[str, float] = {}
    groups_tau: dict[str, list[float]] = {}
    for ax in names:
        others = [k for k in names if k != ax]
        groups: dict[tuple, list[int]] = {}
        for idx in range(m.size):
            groups.setdefault(tuple(vals[k][idx] for k in others), []).append(idx)
        taus = []
        for members in groups.values():
            if len({vals[ax][i] for i in members}) < 2:
                continue
            t = kendall_tau(m[members], g[members])
            if np.isfinite(t):
                taus.append(t)
        groups_tau[ax] = taus
        psi[ax] = float(np.mean(taus)) if taus else float("nan")
    return psi, groups_tau


def _codes(values: Sequence) -> np.ndarray:
    """Integer codes 0..k−1 of the distinct values (rows, for a 2-D array)."""
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.dtype == object:
        arr = np.array([hash(v) for v in arr])
    return np.unique(arr, axis=0 if arr.ndim > 1 else None, return_inverse=True)[1].reshape(-1)


def _h(counts: np.ndarray, axis: int) -> np.ndarray:
    """Entropy (nats) of each slice of a count table along ``axis`` (0 for an empty slice)."""
    tot = counts.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(counts > 0, counts / np.where(tot > 0, tot, 1), 1.0)
        return -(np.where(counts > 0, p * np.log(p), 0.0)).sum(axis=axis)


def conditional_mi(v_mu: Sequence[int], v_g: Sequence[int], u: Sequence[Sequence] | np.ndarray | None = None) -> tuple[float, float]:
    """(I(V_μ; V_g | U), H(V_g | U)) in nats from the empirical joint distribution of the rows
    (plug-in estimate); U absent means unconditional. I = Σ_u p(u)·[H(V_μ|u) + H(V_g|u) − H(V_μ,V_g|u)]."""
    if len(v_mu) == 0:
        return 0.0, 0.0
    a, b = _codes(v_mu), _codes(v_g)
    n = a.size
    uc = np.zeros(n, dtype=int) if u is None else _codes(np.asarray(u) if not isinstance(u, np.ndarray) else u)
    ka, kb, ku = a.max() + 1, b.max() + 1, uc.max() + 1
    joint = np.bincount((uc * ka + a) * kb + b, minlength=ku * ka * kb).reshape(ku, ka, kb).astype(float)
    pu = joint.sum(axis=(1, 2)) / n
    h_ab = _h(joint.reshape(ku, -1), 1)
    h_a = _h(joint.sum(2), 1)
    h_b = _h(joint.sum(1), 1)
    return float(pu @ (h_a + h_b - h_ab)), float(pu @ h_b)


def cmi_score(measure: Sequence[float], gap: Sequence[float], axes: dict[str, Sequence], max_conditioning: int = 2) -> tuple[float, str]:
    """K(μ) = min over axis sets S (|S| ≤ max_conditioning) of Î(V_μ; V_g | U_S)/H(V_g | U_S)
    (Jiang et al. Sec. 6.2) and the S attaining it ('' for the empty set)."""
    m, g = np.asarray(measure, float), np.asarray(gap, float)
    i, j = np.triu_indices(m.size, 1)
    keep = g[i] != g[j]
    i, j = i[keep], j[keep]
    v_mu = np.sign(m[i] - m[j]).astype(int)
    v_g = np.sign(g[i] - g[j]).astype(int)
    names = list(axes)
    codes = {k: _codes(list(v)) for k, v in axes.items()}
    best, where = float("inf"), ""
    for size in range(0, max_conditioning + 1):
        for s in itertools.combinations(names, size):
            u = np.stack([c for k in s for c in (codes[k][i], codes[k][j])], 1) if s else None
            mi, hg = conditional_mi(v_mu, v_g, u)
            score = mi / hg if hg > 0 else float("nan")
            if np.isfinite(score) and score < best:
                best, where = score, ",".join(s)
    return (best if np.isfinite(best) else float("nan")), where


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.value, self.low, self.high]


def bootstrap(stat: Callable[[np.ndarray], float], n: int, reps: int = 200, level: float = 0.95, seed: int = 0) -> Interval:
    """stat(all indices) with the percentile interval of stat(resampled indices) over ``reps``
    resamples of range(n) with replacement (nan resamples dropped)."""
    rng = np.random.default_rng(seed)
    full = stat(np.arange(n))
    reps_v = np.array([stat(rng.integers(0, n, n)) for _ in range(reps)], dtype=float)
    reps_v = reps_v[np.isfinite(reps_v)]
    if reps_v.size == 0:
        return Interval(full, float("nan"), float("nan"))
    a = (1 - level) / 2
    return Interval(float(full), float(np.quantile(reps_v, a)), float(np.quantile(reps_v, 1 - a)))


def tau_interval(measure: Sequence[float], gap: Sequence[float], reps: int = 200, seed: int = 0) -> Interval:
    """Kendall τ of measure vs gap with a bootstrap interval over models."""
    m, g = np.asarray(measure, float), np.asarray(gap, float)
    return bootstrap(lambda idx: kendall_tau(m[idx], g[idx]), m.size, reps, seed=seed)


def mean_interval(values: Sequence[float], reps: int = 200, seed: int = 0) -> Interval:
    """The mean of ``values`` with a bootstrap interval (e.g. ψ_i over its groups' τ's)."""
    v = np.asarray(values, float)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    return bootstrap(lambda idx: float(v[idx].mean()), v.size, reps, seed=seed)
