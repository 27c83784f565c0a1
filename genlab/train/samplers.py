"""Posterior samplers with their diagnostics: guess-and-check (rejection) sampling of interpolating
networks from a flat prior over quantized weights, and stochastic-gradient Langevin dynamics.

- Guess and check: draw every weight uniformly from a finite set of levels, keep the network if it
  fits every training example. The accepted networks are exact samples of the posterior of a flat
  prior under a 0/1 "interpolates" likelihood (Buzaglo, Harel, Nacson, Brutzkus, Srebro & Soudry
  2024, "How uniform random weights induce non-uniform bias: typical interpolating neural networks
  generalize with narrow teachers", arXiv 2402.06323, Sec. 2). Diagnostics: draws, acceptances,
  acceptance rate with its binomial standard error.
- SGLD (Welling & Teh 2011, ICML, Eq. 4; tempered as in Wenzel et al. 2020, arXiv 2002.02405):
  θ ← θ − η ∇U(θ) + sqrt(2ηT)·ξ, ξ ~ N(0, I), U = −log posterior, step η and temperature T stated
  by the caller. For U = ½ a θ² the chain's stationary variance is T/(a(1 − ηa/2)) exactly (the
  discretization bias of the unadjusted Langevin algorithm), which the tests use. Diagnostics:
  effective sample size per coordinate (Geyer's initial positive sequence, 1992, Stat. Sci. 7,
  Sec. 3.3) and the across-chain spread: split-R̂ (Gelman et al., Bayesian Data Analysis, 3rd ed.,
  Sec. 11.4) and the standard deviation of the chain means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from genlab.errors import InputError


@dataclass
class RejectionResult:
    """Accepted weight draws (dict of tensors with a leading sample axis) and the counts."""

    accepted: dict[str, torch.Tensor]
    draws: int
    accepts: int

    @property
    def rate(self) -> float:
        return self.accepts / self.draws if self.draws else float("nan")

    @property
    def rate_stderr(self) -> float:
        p = self.rate
        return math.sqrt(p * (1 - p) / self.draws) if self.draws else float("nan")


def guess_and_check(
    shapes: dict[str, tuple[int, ...]],
    levels: torch.Tensor,
    fits: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    want: int,
    max_draws: int,
    batch: int = 4096,
    seed: int = 0,
) -> RejectionResult:
    """Draw batches of ``batch`` networks, every weight (named tensors of ``shapes``) uniform over
    ``levels``; ``fits(weights)`` gets tensors with a leading batch axis and returns a bool (batch,)
    mask of the draws that interpolate. Stops at ``want`` acceptances or ``max_draws`` draws."""
    if not (isinstance(want, int) and want >= 1 and isinstance(max_draws, int) and max_draws >= 1):
        raise InputError(f"want, max_draws: must be integers >= 1, got {want!r}, {max_draws!r}")
    lv = torch.as_tensor(levels, dtype=torch.float32)
    if lv.ndim != 1 or lv.numel() < 1:
        raise InputError("levels: must be a non-empty 1-D set of weight values")
    g = torch.Generator().manual_seed(seed)
    kept: dict[str, list[torch.Tensor]] = {k: [] for k in shapes}
    draws = accepts = 0
    while accepts < want and draws < max_draws:
        b = min(batch, max_draws - draws)
        w = {k: lv[torch.randint(0, lv.numel(), (b, *s), generator=g)] for k, s in shapes.items()}
        ok = fits(w)
        draws += b
        idx = torch.nonzero(ok).reshape(-1)[: want - accepts]
        accepts += int(ok.sum())  # every fitting draw counts for the rate, even past ``want``
        for k in shapes:
            kept[k].append(w[k][idx])
    return RejectionResult({k: torch.cat(v) if v else torch.zeros(0, *shapes[k]) for k, v in kept.items()}, draws, accepts)


@dataclass
class SGLDResult:
    """Kept samples (chains × kept × dim) and their diagnostics."""

    samples: torch.Tensor
    step: float
    temperature: float
    ess: np.ndarray  # per coordinate, all chains pooled
    rhat: np.ndarray  # split-R̂ per coordinate
    chain_mean_sd: np.ndarray  # sd of the chain means per coordinate (the across-chain spread)

    def mean(self) -> torch.Tensor:
        return self.samples.reshape(-1, self.samples.shape[-1]).mean(0)

    def var(self) -> torch.Tensor:
        return self.samples.reshape(-1, self.samples.shape[-1]).var(0)


def sgld(
    grad_u: Callable[[torch.Tensor], torch.Tensor],
    theta0: torch.Tensor,
    step: float,
    temperature: float = 1.0,
    steps: int = 1000,
    burn_in: int = 0,
    thin: int = 1,
    seed: int = 0,
) -> SGLDResult:
    """Run SGLD from ``theta0`` (chains × dim), θ ← θ − η∇U(θ) + sqrt(2ηT)ξ; ``grad_u(θ)`` returns
    ∇U for every chain at once (it may be a minibatch estimate). Keeps every ``thin``-th state after
    ``burn_in`` steps."""
    if not (step > 0 and math.isfinite(step)):
        raise InputError(f"step: got {step!r}; must be a finite number > 0")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise InputError(f"temperature: got {temperature!r}; must be a finite number >= 0")
    if theta0.ndim != 2:
        raise InputError(f"theta0: must be (chains, dim), got shape {tuple(theta0.shape)}")
    if not (0 <= burn_in < steps and thin >= 1):
        raise InputError(f"burn_in, thin: need 0 <= burn_in < steps and thin >= 1, got {burn_in}, {thin}")
    g = torch.Generator().manual_seed(seed)
    theta = theta0.clone()
    noise = math.sqrt(2 * step * temperature)
    kept = []
    for t in range(steps):
        theta = theta - step * grad_u(theta) + noise * torch.randn(theta.shape, generator=g, dtype=theta.dtype)
        if t >= burn_in and (t - burn_in) % thin == 0:
            kept.append(theta.clone())
    s = torch.stack(kept, 1)  # chains × kept × dim
    arr = s.detach().double().numpy()
    return SGLDResult(s, step, temperature, effective_sample_size(arr), split_rhat(arr), arr.mean(1).std(0, ddof=1) if arr.shape[0] > 1 else np.full(arr.shape[2], np.nan))


def _autocorr(x: np.ndarray) -> np.ndarray:
    """Autocorrelation of a 1-D series at lags 0..n−1 (FFT, biased estimator)."""
    n = x.size
    x = x - x.mean()
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    return ac / ac[0] if ac[0] > 0 else np.ones(n)


def effective_sample_size(samples: np.ndarray) -> np.ndarray:
    """ESS per coordinate of (chains × n × dim) samples: chains · n / (1 + 2 Σ ρ_k), with the
    autocorrelations averaged over chains and summed in pairs while the pair sums stay positive
    (Geyer's initial positive sequence)."""
    c, n, d = samples.shape
    out = np.empty(d)
    for j in range(d):
        rho = np.mean([_autocorr(samples[i, :, j]) for i in range(c)], axis=0)
        tau = -1.0
        for k in range(0, n - 1, 2):
            pair = rho[k] + rho[k + 1]
            if pair <= 0:
                break
            tau += 2 * pair
        out[j] = c * n / max(tau, 1e-12)
    return out


def split_rhat(samples: np.ndarray) -> np.ndarray:
    """Split-R̂ per coordinate: every chain halved, then sqrt(((n−1)/n·W + B/n)/W) with W the mean
    within-chain variance and B/n the variance of the chain means (Gelman et al. BDA3, Sec. 11.4)."""
    c, n, d = samples.shape
    h = n // 2
    halves = np.concatenate([samples[:, :h], samples[:, h : 2 * h]], 0)
    w = halves.var(1, ddof=1).mean(0)
    b_over_n = halves.mean(1).var(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((h - 1) / h * w + b_over_n) / w)
