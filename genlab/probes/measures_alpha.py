"""WeightWatcher-style layer α: the power-law exponent of a weight matrix's eigenvalue spectrum.

Martin & Mahoney 2021 ("Implicit self-regularization in deep neural networks: evidence from random
matrix theory and implications for learning", JMLR 22, arXiv 1810.01075, Sec. 5; and "Predicting
trends in the quality of state-of-the-art neural networks without access to training or testing
data", Nat. Commun. 12, 4122, arXiv 2002.06716): the empirical spectral density of X = WᵀW/N
(W of shape N × M, N ≥ M) has a power-law tail p(λ) ∝ λ^{−α} for λ ≥ λ_min; well-trained layers
have 2 ≤ α ≤ 6, α < 2 is read as over-fitting ("very heavy tailed"). α is computed here (not by
the weightwatcher package): the continuous power-law maximum-likelihood estimate
α̂ = 1 + n / Σ_{λ_i ≥ λ_min} ln(λ_i/λ_min), with λ_min chosen to minimize the Kolmogorov–Smirnov
distance between the tail and the fitted law (Clauset, Shalizi & Newman 2009, "Power-law
distributions in empirical data", SIAM Review 51, Eqs. 3.1, 3.7 and Sec. 3.3). The normalisation
1/N does not change α̂ (the estimate is scale-invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genlab.errors import InputError


@dataclass(frozen=True)
class PowerLawFit:
    """α̂, the λ_min chosen, the tail size n and the KS distance of the fit."""

    alpha: float
    xmin: float
    n_tail: int
    ks: float


def fit_power_law(values: np.ndarray, min_tail: int = 5) -> PowerLawFit:
    """Continuous power-law fit of the positive ``values`` (Clauset et al. 2009): for each
    candidate λ_min among the values (leaving ≥ ``min_tail`` in the tail) the MLE α̂ and the KS
    distance of the tail's empirical CDF to 1 − (λ/λ_min)^{1−α̂}; the λ_min of least KS is kept."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[x > 0]
    if x.size < min_tail + 1:
        raise InputError(f"values: need more than {min_tail} positive values for a power-law fit, got {x.size}")
    best: PowerLawFit | None = None
    logs = np.log(x)
    n_all = x.size
    for i in range(n_all - min_tail + 1):
        xmin = x[i]
        if i > 0 and xmin == x[i - 1]:
            continue
        tail_logs = logs[i:] - np.log(xmin)
        s = tail_logs.sum()
        if s <= 0:
            continue
        n = n_all - i
        alpha = 1.0 + n / s
        cdf_fit = 1.0 - np.exp((1.0 - alpha) * tail_logs)
        emp_hi = np.arange(1, n + 1) / n
        emp_lo = np.arange(0, n) / n
        ks = float(max(np.max(np.abs(emp_hi - cdf_fit)), np.max(np.abs(emp_lo - cdf_fit))))
        if best is None or ks < best.ks:
            best = PowerLawFit(alpha=float(alpha), xmin=float(xmin), n_tail=int(n), ks=ks)
    if best is None:
        raise InputError("values: all equal; no power law can be fitted")
    return best


def esd(w: torch.Tensor) -> np.ndarray:
    """Eigenvalues of X = WᵀW/N for W (N × M) oriented so that N ≥ M (squared singular values / N)."""
    m = w.detach().double().reshape(w.shape[0], -1)
    n = max(m.shape)
    return (torch.linalg.svdvals(m) ** 2 / n).numpy()


def layer_alphas(model: nn.Module, min_tail: int = 5) -> dict[str, PowerLawFit]:
    """The power-law fit of every Linear/Conv layer with at least ``min_tail`` + 1 eigenvalues."""
    out: dict[str, PowerLawFit] = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            ev = esd(m.weight)
            if (ev > 0).sum() > min_tail:
                out[name] = fit_power_law(ev, min_tail)
    return out


def mean_layer_alpha(model: nn.Module, min_tail: int = 5) -> float:
    """The layer-averaged α̂ (Martin & Mahoney's ᾱ); nan when no layer is large enough."""
    fits = layer_alphas(model, min_tail)
    return float(np.mean([f.alpha for f in fits.values()])) if fits else float("nan")
