"""Mean-field signal propagation through deep networks with N-level quantized activations.

Blumenfeld, Gilboa & Soudry 2019, "A mean field theory of quantized deep networks: the
quantization-depth trade-off" (NeurIPS; arXiv 1906.00771). A wide fully connected network
h^l = W^l φ(h^{l−1}) + b^l with W_ij ~ N(0, σ_w²/width), b_i ~ N(0, σ_b²) propagates, layer by
layer, the variance q and the correlation c of the pre-activations of two inputs by the maps of
Poole et al. 2016 (arXiv 1606.05340, eqs. 3, 5) and Schoenholz et al. 2017 (arXiv 1611.01232,
eqs. 2–4, 6):

    q^l = σ_w² E[φ(√q^{l−1} z)²] + σ_b²,
    c^l = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / q*,   (u₁, u₂) ~ N(0, q*[[1, c^{l−1}], [c^{l−1}, 1]]),

the correlation approaching its stable fixed point c* as χ^l with χ = ∂c^l/∂c^{l−1} at c*, over
the depth scale ξ = −1/ln χ (Schoenholz et al. 2017, eq. 9).

What is encoded here, and what is not. The paper's abstract and Fig. 1 state that signal
propagation is maximized at an optimal σ_w ("σ_w^opt") and that the maximal trainable depth
scales as L_max ∝ N^1.82. The authors' code (github.com/yanivbl6/quantized_meanfield,
generalQ.py) uses an activation with N − 1 equally spaced thresholds and equal steps, σ_b ≈ 0,
evaluates χ at c* = 0, optimizes the spacing relative to the pre-activation scale, and records
the fit 1 − χ_opt = e^{0.71}·(N+1)^{−1.8172} (function ``DepthScale``; ξ = −1/ln χ_opt), the
origin of the exponent 1.82. We could not read the paper's implicit equation for L_max itself.
Here the activation is the N-level uniform quantization of the hard tanh on [−1, 1] (N = 2 is
the sign function; the same family up to scale), σ_b = 0, and σ_w^opt is the σ_w that maximizes
χ. With σ_b = 0 and an odd φ, c* = 0 and, by Price's theorem and Stein's lemma (derived here),

    χ = σ_w² E[φ'(√q* z)]² = E[z φ(a z)]² / E[φ(a z)²],   a = √q*,

the squared correlation between a standard normal and its quantized image (≤ 1 by Cauchy–Schwarz,
= 1 only for a linear φ); σ_w^opt = a*/√E[φ(a* z)²] with a* maximizing it. Tested against the
authors' fitted law (tests/test_signal_propagation.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def quantized_levels(n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Output levels −1 + 2i/(N−1) and input thresholds (midpoints) of the N-level quantized
    hard tanh: φ(x) = the level nearest to clip(x, −1, 1) (N = 2: sign)."""
    if int(n_levels) != n_levels or n_levels < 2:
        raise ValueError(f"n_levels must be an integer >= 2, got {n_levels}")
    levels = np.linspace(-1.0, 1.0, int(n_levels))
    return levels, 0.5 * (levels[:-1] + levels[1:])


def quantized_activation(x: np.ndarray, n_levels: int) -> np.ndarray:
    """φ_N(x): the N-level quantized hard tanh (a step of 2/(N−1) at each threshold)."""
    levels, thresholds = quantized_levels(n_levels)
    return levels[np.searchsorted(thresholds, np.asarray(x, dtype=float), side="right")]


def _second_moment(a: float, n_levels: int) -> float:
    """E[φ(a z)²] exactly from the normal CDF (bins between thresholds)."""
    levels, t = quantized_levels(n_levels)
    if a == 0:
        return float(quantized_activation(0.0, n_levels) ** 2)
    cdf = np.concatenate([[0.0], ndtr(t / a), [1.0]])
    return float(np.sum(levels**2 * np.diff(cdf)))


def _stein_moment(a: float, n_levels: int) -> float:
    """E[z φ(a z)] = Σ_thresholds step · pdf(t/a) (Stein's lemma for a step function)."""
    levels, t = quantized_levels(n_levels)
    if a == 0:
        return 0.0
    return float(np.sum(np.diff(levels) * np.exp(-0.5 * (t / a) ** 2)) / math.sqrt(2.0 * math.pi))


def variance_fixed_point(n_levels: int, sigma_w: float, sigma_b: float = 0.0, q0: float = 1.0, iters: int = 2000) -> float:
    """q* of q ↦ σ_w² E[φ(√q z)²] + σ_b², iterated from ``q0`` (Poole et al. 2016, eq. 3)."""
    if sigma_w <= 0:
        raise ValueError(f"sigma_w must be > 0, got {sigma_w}")
    q = float(q0)
    for _ in range(iters):
        q_new = sigma_w**2 * _second_moment(math.sqrt(q), n_levels) + sigma_b**2
        if abs(q_new - q) <= 1e-14 * max(q, 1e-300):
            return q_new
        q = q_new
    return q


def correlation_map(c: np.ndarray | float, n_levels: int, sigma_w: float, sigma_b: float = 0.0, q: float | None = None) -> np.ndarray:
    """One layer of the correlation map at the variance fixed point q* (or the given ``q``):
    c ↦ (σ_w² E[φ(u₁)φ(u₂)] + σ_b²)/q (Schoenholz et al. 2017, eq. 4).

    Gaussian quadrature: E[φ(u₁)φ(u₂)] = E[φ(u₁)·E[φ(u₂) | u₁]] with u₂ | u₁ normal, so the inner
    expectation is a sum of normal CDFs (smooth in u₁ for |c| < 1); the outer integral is split
    at the thresholds of φ (where φ(u₁) jumps) into intervals on which the integrand is smooth,
    each integrated by 48-node Gauss–Legendre (the tails cut at ±12√q)."""
    qq = variance_fixed_point(n_levels, sigma_w, sigma_b) if q is None else float(q)
    levels, t = quantized_levels(n_levels)
    steps = np.diff(levels)
    a = math.sqrt(qq)
    cs = np.atleast_1d(np.asarray(c, dtype=float))
    if np.any(np.abs(cs) > 1):
        raise ValueError("correlations must lie in [−1, 1]")
    edges = np.concatenate([[-12 * a], t[(t > -12 * a) & (t < 12 * a)], [12 * a]])
    lo, hi = edges[:-1, None], edges[1:, None]
    u1 = (0.5 * (hi - lo) * _GL_NODES + 0.5 * (hi + lo)).ravel()
    w1 = (0.5 * (hi - lo) * _GL_WEIGHTS).ravel() * np.exp(-0.5 * (u1 / a) ** 2) / (a * math.sqrt(2 * math.pi))
    phi1 = quantized_activation(u1, n_levels)
    out = np.empty_like(cs)
    for i, ci in enumerate(cs):
        s = a * math.sqrt(max(1.0 - ci * ci, 0.0))
        if s == 0:
            cond = quantized_activation(ci * u1, n_levels)
        else:  # E[φ(u₂)|u₁] = level₀ + Σ_j step_j P(u₂ > t_j | u₁), u₂ | u₁ ~ N(c u₁, q(1 − c²))
            cond = levels[0] + ndtr((ci * u1[:, None] - t[None, :]) / s) @ steps
        out[i] = (sigma_w**2 * float(np.sum(w1 * phi1 * cond)) + sigma_b**2) / qq
    return out if np.ndim(c) else out[0]


def correlation_slope(c: float, n_levels: int, sigma_w: float, sigma_b: float = 0.0) -> float:
    """∂c^l/∂c^{l−1} at c by Price's theorem: σ_w² E[φ'(u₁)φ'(u₂)] (at q = q*), with
    φ' = Σ_j step_j δ(· − t_j): σ_w² Σ_ij step_i step_j p(t_i, t_j; q*, c) (p the density of
    (u₁, u₂); ∂q₁₂/∂c = q* cancels the 1/q* of c = q₁₂/q*); infinite at c = 1 for a
    discontinuous φ."""
    qq = variance_fixed_point(n_levels, sigma_w, sigma_b)
    levels, t = quantized_levels(n_levels)
    steps = np.diff(levels)
    if abs(c) >= 1:
        return math.inf
    ti, tj = np.meshgrid(t, t, indexing="ij")
    det = qq * qq * (1 - c * c)
    quad = (qq * ti**2 - 2 * c * qq * ti * tj + qq * tj**2) / det
    dens = np.exp(-0.5 * quad) / (2 * math.pi * math.sqrt(det))
    return float(sigma_w**2 * np.sum(np.outer(steps, steps) * dens))


def correlation_fixed_point(n_levels: int, sigma_w: float, sigma_b: float = 0.0, c0: float = 0.5, iters: int = 5000) -> float:
    """The stable fixed point c* reached by iterating the correlation map from ``c0``."""
    q = variance_fixed_point(n_levels, sigma_w, sigma_b)
    c = float(c0)
    for _ in range(iters):
        c_new = float(correlation_map(c, n_levels, sigma_w, sigma_b, q=q))
        if abs(c_new - c) < 1e-12:
            return c_new
        c = c_new
    return c


def depth_scale(chi: float) -> float:
    """ξ = −1/ln χ (Schoenholz et al. 2017, eq. 9): |c^l − c*| ∝ e^{−l/ξ}."""
    if not 0 < chi < 1:
        return math.inf if chi >= 1 else 0.0
    return -1.0 / math.log(chi)


def chi_at_scale(a: float, n_levels: int) -> float:
    """χ at c* = 0 (σ_b = 0) when the pre-activations have std a: E[zφ(az)]²/E[φ(az)²]."""
    m2 = _second_moment(a, n_levels)
    return _stein_moment(a, n_levels) ** 2 / m2 if m2 > 0 else 0.0


def optimal_initialization(n_levels: int) -> dict[str, float]:
    """σ_w maximizing χ (so the depth scale ξ) for σ_b = 0: a* = argmax_a χ(a), q* = a*²,
    σ_w^opt = a*/√E[φ(a* z)²]; returns ``sigma_w``, ``q``, ``chi``, ``xi``."""
    # a log-spaced grid over a ∈ [0.01, 100], then a bounded refinement around its best point
    grid = np.linspace(math.log(1e-2), math.log(1e2), 801)
    levels, t = quantized_levels(n_levels)
    a_grid = np.exp(grid)[:, None]
    cdf = np.hstack([np.zeros_like(a_grid), ndtr(t / a_grid), np.ones_like(a_grid)])
    m2 = np.diff(cdf, axis=1) @ levels**2
    stein = np.exp(-0.5 * (t / a_grid) ** 2) @ np.diff(levels) / math.sqrt(2.0 * math.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.where(m2 > 0, stein**2 / np.where(m2 > 0, m2, 1.0), 0.0)  # χ(a) on the grid, vectorized
    i = int(np.argmax(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda la: -chi_at_scale(math.exp(la), n_levels), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})
    a = math.exp(res.x) if -res.fun >= vals[i] else math.exp(grid[i])
    if vals.max() - vals.min() < 1e-12:  # N = 2 (sign): χ = 2/π at every scale; take a = 1
        a = 1.0
    chi = chi_at_scale(a, n_levels)
    return {"sigma_w": a / math.sqrt(_second_moment(a, n_levels)), "q": a * a, "chi": chi, "xi": depth_scale(chi)}


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])
