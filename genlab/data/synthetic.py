"""Synthetic regression tasks generated from a seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GROUND_TRUTHS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # smooth targets on roughly [-2, 2] (inputs are standardized)
    "sine": lambda x: np.sin(1.5 * x),
    "cubic": lambda x: 0.3 * x**3 - x,
    "bump": lambda x: np.exp(-2.0 * x**2),
    "abs": lambda x: np.abs(x),
}


@dataclass(frozen=True)
class UnivariateData:
    """Training inputs and targets, plus the noiseless ground truth and the scaling used."""

    x: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    ground_truth: str
    noise: float

    def truth(self, x: np.ndarray) -> np.ndarray:
        return GROUND_TRUTHS[self.ground_truth](x)


def univariate_regression(
    n: int,
    ground_truth: str = "sine",
    noise: float = 0.1,
    seed: int = 0,
    design: str = "uniform",
    standardize: bool = True,
) -> UnivariateData:
    """n inputs on [-1, 1] (``design`` ``uniform``: i.i.d. uniform, ``grid``: evenly spaced),
    standardized to mean 0 and standard deviation 1 when ``standardize`` (as in the figures of
    Mulayoff et al. 2021), targets ``f*(x) + noise·ε`` with ε ~ N(0, 1); sorted by x."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if ground_truth not in GROUND_TRUTHS:
        raise ValueError(f"ground_truth must be one of {sorted(GROUND_TRUTHS)}, got {ground_truth!r}")
    rng = np.random.default_rng(seed)
    if design == "grid":
        x = np.linspace(-1.0, 1.0, n)
    elif design == "uniform":
        x = np.sort(rng.uniform(-1.0, 1.0, size=n))
    else:
        raise ValueError(f"design must be 'uniform' or 'grid', got {design!r}")
    if standardize:
        x = (x - x.mean()) / x.std()
    y_clean = GROUND_TRUTHS[ground_truth](x)
    y = y_clean + noise * rng.standard_normal(n)
    return UnivariateData(x=x, y=y, y_clean=y_clean, ground_truth=ground_truth, noise=noise)


def sphere_regression(rng: np.random.Generator, m: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """m inputs uniform on the sphere of radius sqrt(d) in R^d (d ≥ 4) and the smooth target
    sin(x₁ + x₂) + ½·x₃x₄ — the kernel-regime experiments' regression task (inputs on a sphere,
    where the NTK of a ReLU network depends only on angles: Jacot et al. 2018; Arora et al. 2019)."""
    if d < 4:
        raise ValueError(f"d must be >= 4, got {d}")
    z = rng.standard_normal((m, d))
    x = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(d)
    return x, np.sin(x[:, 0] + x[:, 1]) + 0.5 * x[:, 2] * x[:, 3]
