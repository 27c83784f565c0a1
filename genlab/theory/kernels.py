"""Infinite-width kernels of fully connected ReLU networks, and kernel regression.

Conventions (NTK parameterization; Jacot, Gabriel & Hongler 2018, arXiv 1806.07572, §2 and
Thm 1; Arora, Du, Hu, Li, Salakhutdinov & Wang 2019, arXiv 1904.11955, §3 and App. E): all weights
and biases N(0, 1); layer l maps h^{l+1} = sqrt(σ_w²/n_l)·W^{l+1} relu(h^l) + σ_b·b^{l+1}, the first
layer sqrt(σ_w²/d₀)·W¹x + σ_b·b¹ (so inputs enter through x·x'/d₀), ``depth`` hidden ReLU layers and
a linear read-out scaled the same way (see :class:`genlab.models.ntk_mlp.NTKMLP`).

Recursion, with Σ¹(x, x') = σ_w²·x·x'/d₀ + σ_b² and, for l = 1 … depth,

    Σ^{l+1}(x, x') = σ_w²·E[relu(u)relu(v)] + σ_b²,     Σ̇^{l+1}(x, x') = σ_w²·E[relu'(u)relu'(v)],
    (u, v) ~ N(0, [[Σ^l(x,x), Σ^l(x,x')], [Σ^l(x,x'), Σ^l(x',x')]]),
    Θ¹ = Σ¹,   Θ^{l+1} = Θ^l·Σ̇^{l+1} + Σ^{l+1}.

The ReLU expectations are the arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009, "Kernel
methods for deep learning", NIPS, §2.1, arc-cosine kernels of degree 0 and 1): with cos θ = Σ(x,x')/sqrt(Σ(x,x)Σ(x',x')),

    E[relu(u)relu(v)] = sqrt(Σ(x,x)Σ(x',x'))·(sin θ + (π − θ)cos θ)/(2π),   E[relu'(u)relu'(v)] = (π − θ)/(2π).

The network output is h^{depth+1}: NNGP = Σ^{depth+1}, NTK = Θ^{depth+1}.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg

__all__ = ["nngp_relu", "ntk_relu", "relu_kernels", "kernel_regression", "kernel_regression_predict"]


def _arccos_terms(k12: np.ndarray, k11: np.ndarray, k22: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E[relu(u)relu(v)], E[relu'(u)relu'(v)]) for the Gaussian pair with the given covariances
    (Cho & Saul 2009, §2.1, degrees 1 and 0, normalized to a Gaussian expectation)."""
    norm = np.sqrt(np.outer(k11, k22))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, k12 / np.where(norm > 0, norm, 1.0), 0.0)
    cos = np.clip(cos, -1.0, 1.0)
    theta = np.arccos(cos)
    e_relu = norm * (np.sqrt(1.0 - cos**2) + (np.pi - theta) * cos) / (2 * np.pi)
    e_step = (np.pi - theta) / (2 * np.pi)
    return e_relu, e_step


def relu_kernels(
    x1: np.ndarray,
    x2: np.ndarray | None = None,
    depth: int = 1,
    *,
    sigma_w2: float = 2.0,
    sigma_b2: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of an FC ReLU network with ``depth`` hidden layers, shape (n1, n2) each.

    The recursion and conventions are those of the module docstring (Jacot et al. 2018, Thm 1;
    Arora et al. 2019, §3; Cho & Saul 2009, §2.1)."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if sigma_w2 <= 0 or sigma_b2 < 0:
        raise ValueError(f"need sigma_w2 > 0 and sigma_b2 >= 0, got {sigma_w2}, {sigma_b2}")
    a = np.atleast_2d(np.asarray(x1, dtype=np.float64))
    b = a if x2 is None else np.atleast_2d(np.asarray(x2, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x1 and x2 need the same number of features, got {a.shape[1]} and {b.shape[1]}")
    d0 = a.shape[1]
    s12 = sigma_w2 * (a @ b.T) / d0 + sigma_b2
    s11 = sigma_w2 * np.sum(a * a, 1) / d0 + sigma_b2
    s22 = sigma_w2 * np.sum(b * b, 1) / d0 + sigma_b2
    ntk = s12.copy()
    for _ in range(depth):
        e12, d12 = _arccos_terms(s12, s11, s22)
        # diagonal terms: θ = 0, so E[relu(u)²] = Σ(x,x)/2
        s12 = sigma_w2 * e12 + sigma_b2
        s11 = sigma_w2 * s11 / 2 + sigma_b2
        s22 = sigma_w2 * s22 / 2 + sigma_b2
        ntk = ntk * (sigma_w2 * d12) + s12
    return s12, ntk


def nngp_relu(x1, x2=None, depth: int = 1, *, sigma_w2: float = 2.0, sigma_b2: float = 0.0) -> np.ndarray:
    """NNGP kernel Σ^{depth+1}(x1, x2) of the FC ReLU network (Cho & Saul 2009; Lee et al. 2018,
    arXiv 1711.00165, §2.5); see the module docstring for conventions."""
    return relu_kernels(x1, x2, depth, sigma_w2=sigma_w2, sigma_b2=sigma_b2)[0]


def ntk_relu(x1, x2=None, depth: int = 1, *, sigma_w2: float = 2.0, sigma_b2: float = 0.0) -> np.ndarray:
    """Infinite-width NTK Θ^{depth+1}(x1, x2) of the FC ReLU network (Jacot et al. 2018, Thm 1;
    Arora et al. 2019, arXiv 1904.11955, §3); see the module docstring for conventions."""
    return relu_kernels(x1, x2, depth, sigma_w2=sigma_w2, sigma_b2=sigma_b2)[1]


def kernel_regression_predict(
    k_train: np.ndarray, y_train: np.ndarray, k_test_train: np.ndarray, ridge: float = 0.0
) -> np.ndarray:
    """f(x) = K(x, X)(K(X, X) + ridge·I)⁻¹ y (kernel ridge regression; ridge = 0 is the
    minimum-RKHS-norm interpolant, computed with a least-squares solve so a singular K is allowed).

    The limit of gradient-flow training of a network in the kernel regime from a zero-output
    start (Jacot et al. 2018, §5; Lee et al. 2019, arXiv 1902.06720, §2.2, at t → ∞)."""
    k = np.asarray(k_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    kt = np.asarray(k_test_train, dtype=np.float64)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    n = k.shape[0]
    if k.shape != (n, n) or y.shape[0] != n or kt.shape[-1] != n:
        raise ValueError(f"shapes do not match: K {k.shape}, y {y.shape}, K(test, train) {kt.shape}")
    a = k + ridge * np.eye(n)
    if ridge > 0:
        coef = scipy.linalg.solve(a, y, assume_a="pos")
    else:
        coef = scipy.linalg.lstsq(a, y, cond=None)[0]
    return kt @ coef


def kernel_regression(
    kernel: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    ridge: float = 0.0,
) -> np.ndarray:
    """Kernel (ridge) regression with any kernel function ``kernel(a, b) -> (len(a), len(b))``;
    see :func:`kernel_regression_predict`."""
    return kernel_regression_predict(kernel(x_train, x_train), y_train, kernel(x_test, x_train), ridge)
