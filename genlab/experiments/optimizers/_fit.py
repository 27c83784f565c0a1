"""Shared fits of the optimizers theme (not an experiment)."""

from __future__ import annotations

import numpy as np


def bracket_power_law(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict[str, float]:
    """Exponent b of y ∝ x^b when each y is only known to lie in a bracket [lo, hi] (a bisection's):
    the point estimate fits the geometric midpoints in log–log; the interval is the range of slopes
    the brackets allow at their extremes (low ends at small x with high ends at large x, and the
    reverse) — a deterministic interval, not a confidence interval."""
    lx = np.log(np.asarray(x, dtype=float))
    lo, hi = np.log(np.asarray(lo, dtype=float)), np.log(np.asarray(hi, dtype=float))
    mid = float(np.polyfit(lx, 0.5 * (lo + hi), 1)[0])
    upper = lx >= np.median(lx)
    a = float(np.polyfit(lx, np.where(upper, hi, lo), 1)[0])
    b = float(np.polyfit(lx, np.where(upper, lo, hi), 1)[0])
    return {"slope": mid, "low": min(a, b), "high": max(a, b)}
