"""The synthetic regression of Cohen, Kaur, Li, Kolter & Talwalkar 2021 (arXiv 2103.00065):
n evenly spaced points on [−1, 1] labelled by a Chebyshev polynomial T_k."""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev


def chebyshev_regression(n: int = 20, degree: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 1) evenly spaced on [−1, 1]; targets (n, 1) = T_degree(x)."""
    if n < 2 or degree < 0:
        raise ValueError(f"need n >= 2 and degree >= 0, got n={n}, degree={degree}")
    x = np.linspace(-1.0, 1.0, n)
    y = chebyshev.chebval(x, [0.0] * degree + [1.0])
    return x[:, None], y[:, None]
