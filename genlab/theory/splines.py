"""Piecewise-linear functions and the linear-spline interpolant.

The linear spline through the data is the minimum-representation-cost interpolant of a
two-layer ReLU network with unregularized biases when the data make it so (Savarese, Evron,
Soudry & Srebro 2019, "How do infinite width bounded norm networks look in function space?",
Theorem 3.3: R(f) = max(∫|f''|, |f'(−∞) + f'(+∞)|)); it is the comparison curve of the
minima-stability experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PiecewiseLinear:
    """Continuous piecewise-linear function through the breakpoints ``(xs, ys)``, extended
    linearly beyond them with the end slopes (``left_slope``, ``right_slope``)."""

    xs: np.ndarray
    ys: np.ndarray
    left_slope: float
    right_slope: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        y = np.interp(x, self.xs, self.ys)
        y = np.where(x < self.xs[0], self.ys[0] + self.left_slope * (x - self.xs[0]), y)
        return np.where(x > self.xs[-1], self.ys[-1] + self.right_slope * (x - self.xs[-1]), y)

    @property
    def slopes(self) -> np.ndarray:
        """Slopes of the segments between consecutive breakpoints."""
        return np.diff(self.ys) / np.diff(self.xs)

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """Interior breakpoints and the signed slope jump at each (f'' as point masses)."""
        s = np.concatenate([[self.left_slope], self.slopes, [self.right_slope]])
        return self.xs.copy(), np.diff(s)

    def total_variation_of_slope(self, lo: float = -np.inf, hi: float = np.inf) -> float:
        """∫_[lo, hi] |f''| = Σ |slope jump| over the knots in [lo, hi]."""
        pos, jumps = self.knots()
        keep = (pos >= lo) & (pos <= hi)
        return float(np.abs(jumps[keep]).sum())


def linear_spline_interpolant(x: np.ndarray, y: np.ndarray) -> PiecewiseLinear:
    """The linear spline through the points, extended with the end segments' slopes (so it
    has no knot at the first or last data point)."""
    order = np.argsort(x)
    xs = np.asarray(x, dtype=float)[order]
    ys = np.asarray(y, dtype=float)[order]
    if xs.size < 2:
        raise ValueError("need at least two points")
    if np.any(np.diff(xs) <= 0):
        raise ValueError("inputs must be distinct")
    slopes = np.diff(ys) / np.diff(xs)
    return PiecewiseLinear(xs, ys, float(slopes[0]), float(slopes[-1]))
