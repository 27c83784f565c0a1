"""Synchronous step time with straggling workers, and DropCompute's compute threshold.

Giladi, Gottlieb, Shkolnik, Karnieli, Banner, Hoffer, Levy & Soudry 2023 ("DropCompute: simple and
more robust distributed synchronous training via compute variance reduction", NeurIPS, arXiv
2306.10598, §3–4): each of N workers computes M micro-batches whose latencies are i.i.d. with mean μ
and standard deviation σ; a synchronous (All-Reduce) step waits for the slowest worker, so its
compute time is the maximum of N worker times T_n = Σ_m t_{n,m}. With T_n ≈ Normal(Mμ, Mσ²) (central
limit theorem), E[max_n T_n] ≈ Mμ + σ√M · E[Z_(N)], where E[Z_(N)] is the expected maximum of N
standard normals (≈ √(2 ln N) for large N): the step time grows with N although no worker gets slower.

DropCompute: every worker stops computing at a time threshold τ and communicates what it has (the
micro-batch in progress is dropped), so the step time becomes min(max_n T_n, τ) and the batch shrinks
to the micro-batches completed by τ. Its effective speed-up is (completed fraction) × E[max T]/E[min(max T, τ)].
The formulas below are this module's rendering of that analysis (the CLT step and the threshold's
integrals), not equations copied from the paper; equation numbers are not cited for that reason.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import integrate, stats


def expected_max(n: int, quantile: Callable[[float], float]) -> float:
    """E[max of n i.i.d. draws] of the distribution with quantile function ``quantile``:
    ∫₀¹ Q(u) · n u^(n−1) du (the density of the maximum's rank), by adaptive quadrature."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    val, _ = integrate.quad(lambda v: quantile(v ** (1.0 / n)), 0.0, 1.0, limit=200, points=[0.5, 0.9, 0.99])
    return float(val)


@lru_cache(maxsize=4096)
def expected_max_normal(n: int) -> float:
    """E[max of n standard normals] (0 for n = 1), by quadrature of ∫ x · n φ(x) Φ(x)^(n−1) dx."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    val, _ = integrate.quad(f, -12.0, 12.0, limit=200)
    return float(val)


def sync_step_time(n_workers: int, micro_batches: int, mean: float, std: float) -> float:
    """Expected compute time of a synchronous step, Mμ + σ√M · E[Z_(N)] (Giladi et al. 2023, §3;
    CLT approximation of each worker's sum of M micro-batch latencies)."""
    return micro_batches * mean + std * math.sqrt(micro_batches) * expected_max_normal(n_workers)


def _worker_cdf(t: np.ndarray | float, micro_batches: int, mean: float, std: float) -> np.ndarray:
    return stats.norm.cdf((np.asarray(t, dtype=float) - micro_batches * mean) / (std * math.sqrt(micro_batches)))


def dropcompute_step_time(n_workers: int, micro_batches: int, mean: float, std: float, threshold: float) -> float:
    """E[min(max_n T_n, τ)] = ∫₀^τ (1 − F(t)^N) dt with F the CLT worker-time CDF (times ≥ 0)."""
    f = lambda t: 1.0 - float(_worker_cdf(t, micro_batches, mean, std)) ** n_workers  # noqa: E731
    val, _ = integrate.quad(f, 0.0, threshold, limit=200, points=[micro_batches * mean])
    return float(val)


def dropcompute_completed_fraction(micro_batches: int, mean: float, std: float, threshold: float) -> float:
    """Expected fraction of the M micro-batches a worker completes by τ: (1/M) Σ_m P(S_m ≤ τ), with
    the partial sum S_m ≈ Normal(mμ, mσ²)."""
    m = np.arange(1, micro_batches + 1)
    return float(np.mean(stats.norm.cdf((threshold - m * mean) / (std * np.sqrt(m)))))


def dropcompute_speedup(n_workers: int, micro_batches: int, mean: float, std: float, threshold: float) -> float:
    """Effective speed-up of DropCompute over waiting for all: samples per second with the threshold
    over samples per second without, (completed fraction) × E[max T] / E[min(max T, τ)]."""
    full = sync_step_time(n_workers, micro_batches, mean, std)
    drop = dropcompute_step_time(n_workers, micro_batches, mean, std, threshold)
    return dropcompute_completed_fraction(micro_batches, mean, std, threshold) * full / drop


def best_threshold(n_workers: int, micro_batches: int, mean: float, std: float) -> float:
    """The τ of largest effective speed-up in [Mμ − 3σ√M, Mμ + 6σ√M] (bounded scalar search on the
    formulas above; the paper selects the threshold automatically from measured latency statistics)."""
    from scipy.optimize import minimize_scalar

    s = std * math.sqrt(micro_batches)
    lo, hi = max(micro_batches * mean - 3 * s, 1e-9 * mean), micro_batches * mean + 6 * s
    res = minimize_scalar(lambda t: -dropcompute_speedup(n_workers, micro_batches, mean, std, t), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-4 * s})
    return float(res.x)


__all__ = [
    "best_threshold",
    "dropcompute_completed_fraction",
    "dropcompute_speedup",
    "dropcompute_step_time",
    "expected_max",
    "expected_max_normal",
    "sync_step_time",
]
