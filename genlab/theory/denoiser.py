"""Minimum-norm shallow ReLU denoisers (univariate) and the empirical MMSE denoiser.

Zeno, Ongie, Blumenfeld, Weinberger & Soudry 2023, "How do minimum-norm shallow denoisers look
in function space?" (NeurIPS; arXiv 2311.06748): a two-layer ReLU network f trained to map noisy
copies y_{n,m} = x_n + noise of clean points x_n back to x_n, interpolating (zero training loss)
with the least representation cost ½Σ(w² + v²) (biases free). The abstract states that in the
univariate case the min-norm denoiser has a closed form, is contractive toward the clean points
and generalizes better than the empirical MMSE estimator at low noise.

The closed form encoded here follows from the univariate characterization of Savarese, Evron,
Soudry & Srebro 2019 (arXiv 1902.05040, Sec. 3; see :mod:`genlab.theory.representation_cost`):
in the low-noise regime — the noisy clusters of distinct clean points do not overlap and keep
the clean points' order — the data (y_{n,m}, x_n) are constant on each cluster and increase
between clusters, so the linear spline through them changes convexity at every knot and has
zero end slopes; it is then the unique least-cost interpolant. That spline is
    f(y) = x_n on [min_m y_{n,m}, max_m y_{n,m}],
    linear from (max_m y_{n,m}, x_n) to (min_m y_{n+1,m}, x_{n+1}) between clusters,
    constant x_1 below the first cluster and x_N above the last;
it is tested against a brute-force linear program over piecewise-linear interpolants. The
multivariate closed forms of the paper (data on a subspace, rays, simplexes) are not encoded:
we could not confirm their exact statements.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from genlab.theory.splines import PiecewiseLinear, linear_spline_interpolant


def denoising_pairs(clean: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten noisy copies ``noisy`` (N, M) of ``clean`` (N,) into (inputs, targets)."""
    clean = np.asarray(clean, float).reshape(-1)
    noisy = np.asarray(noisy, float)
    if noisy.ndim != 2 or noisy.shape[0] != clean.size:
        raise ValueError(f"noisy must have shape (N, M) with N = len(clean) = {clean.size}, got {noisy.shape}")
    return noisy.ravel(), np.repeat(clean, noisy.shape[1])


def clusters_separated(clean: np.ndarray, noisy: np.ndarray) -> bool:
    """The low-noise regime: sorted by clean value, every cluster of noisy copies lies strictly
    below the next one."""
    order = np.argsort(np.asarray(clean, float))
    nz = np.asarray(noisy, float)[order]
    c = np.asarray(clean, float)[order]
    return bool(np.all(np.diff(c) > 0) and np.all(nz.max(1)[:-1] < nz.min(1)[1:]))


def min_norm_denoiser_1d(clean: np.ndarray, noisy: np.ndarray) -> PiecewiseLinear:
    """The least-cost interpolating univariate denoiser in the low-noise regime (module docstring):
    the linear spline through (y_{n,m}, x_n), flat on each cluster and constant beyond the ends."""
    if not clusters_separated(clean, noisy):
        raise ValueError("noisy clusters overlap or clean points repeat: the closed form needs the low-noise regime")
    y, x = denoising_pairs(clean, noisy)
    return linear_spline_interpolant(y, x)


def empirical_mmse(y: np.ndarray, clean: np.ndarray, sigma: float) -> np.ndarray:
    """E[X | Y = y] for X uniform over the clean points and Y = X + σZ, Z ~ N(0, 1):
    Σ_n x_n e^{−(y−x_n)²/2σ²} / Σ_n e^{−(y−x_n)²/2σ²} (the eMMSE estimator of Zeno et al.)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    y = np.asarray(y, float)
    c = np.asarray(clean, float).reshape(-1)
    logits = -0.5 * ((y[..., None] - c) / sigma) ** 2
    return np.exp(logits - logsumexp(logits, axis=-1, keepdims=True)) @ c
