"""Rank correlations with percentile bootstrap intervals over runs (shared by the theme's experiments)."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, rankdata, spearmanr


def spearman_interval(a: np.ndarray, b: np.ndarray, level: float, seed: int, reps: int = 2000) -> tuple[float, float, float]:
    """Spearman ρ(a, b) and a percentile bootstrap interval (resampling pairs) at ``level``;
    the resamples are ranked all at once (average ranks for ties) and correlated row by row."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = float(spearmanr(a, b).statistic)
    idx = np.random.default_rng(seed).integers(0, len(a), (reps, len(a)))
    ra, rb = rankdata(a[idx], axis=1), rankdata(b[idx], axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    ok = den > 0  # a resample with all-equal values has no rank correlation
    if not ok.any():
        return rho, float("nan"), float("nan")
    boots = (ra * rb).sum(1)[ok] / den[ok]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return rho, float(lo), float(hi)


def kendall_interval(a: np.ndarray, b: np.ndarray, level: float, seed: int, reps: int = 1000) -> tuple[float, float, float]:
    """Kendall τ(a, b) and its percentile bootstrap interval at ``level`` (resampling pairs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    tau = float(kendalltau(a, b).statistic)
    rng = np.random.default_rng(seed)
    boots = [kendalltau(a[i], b[i]).statistic for i in rng.integers(0, len(a), (reps, len(a)))]
    boots = np.asarray([v for v in boots if np.isfinite(v)])
    if boots.size == 0:
        return tau, float("nan"), float("nan")
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return tau, float(lo), float(hi)
