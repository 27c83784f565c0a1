"""Gradient-noise tail index α̂ with a confidence interval, beside a Gaussian control of the same shape.

α̂ is the estimator of :func:`genlab.probes.gradient_stats.tail_index` (Mohammadi, Mohammadpour &
Ogata 2015, Cor. 2.4; used on SGD noise by Simsekli, Sagun & Gurbuzbalaban 2019, arXiv
1901.06053): 1/α̂ = [mean_l log|Y_l| − mean_i log|X_i|]/log K with Y_l sums of K samples. Its
interval here is the delta method on the two means, treated as independent (their positive
correlation makes the interval conservative): se(1/α̂) = √(var log|Y|/L + var log|X|/N)/log K,
1/α̂ ± z·se mapped through 1/x (upper end ∞ when 1/α̂ − z·se ≤ 0).

The control answers "what would this estimator say on Gaussian noise here?": Gaussian samples with
each coordinate's robust scale (1.4826·MAD) over the minibatch rows, centred the same way, drawn from the
caller's generator (never the global stream). At finite N the estimator is biased, so heavy tails
are claimed only against the control, not against 2 alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from genlab.probes.gradient_stats import _largest_divisor_at_most_sqrt, tail_index


@dataclass(frozen=True)
class TailIndex:
    alpha: float
    low: float
    high: float


def tail_index_interval(samples: torch.Tensor | np.ndarray, z: float = 1.96) -> TailIndex:
    """α̂ (as :func:`tail_index`) and its ~95% interval (``z`` = 1.96) by the delta method."""
    x = samples.detach().cpu().double().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, float)
    x = x.reshape(-1)
    alpha = tail_index(x)
    n = x.size
    k = _largest_divisor_at_most_sqrt(n)
    if k < 2:
        x, n = x[:-1], n - 1
        k = _largest_divisor_at_most_sqrt(n)
    tiny = np.finfo(float).tiny
    ly = np.log(np.abs(x.reshape(n // k, k).sum(1)) + tiny)
    lx = np.log(np.abs(x) + tiny)
    se = math.sqrt(ly.var(ddof=1) / ly.size + lx.var(ddof=1) / lx.size) / math.log(k)
    inv = 1.0 / alpha
    lo_inv, hi_inv = inv - z * se, inv + z * se
    return TailIndex(alpha, 1.0 / hi_inv, (1.0 / lo_inv) if lo_inv > 0 else float("inf"))


MAD_TO_SD = 1.4826  # σ = 1.4826 · MAD for a Gaussian (1/Φ⁻¹(3/4))


def gaussian_control(noise: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian rows with each coordinate's scale σ_j = 1.4826 · MAD_j of ``noise`` (rows centred).

    Why not the standard deviation: the sample std of heavy-tailed coordinates is itself
    heavy-tailed across coordinates, so a control built from it is a heavy scale mixture and its α̂
    falls with the data's (on Cauchy noise both come out near 1, and the finding can never fire).
    The MAD is a consistent, outlier-robust estimate of σ for Gaussian coordinates, so the control
    keeps the real spread of scales and nothing else. Where the MAD is 0 (a coordinate that is
    mostly constant: e.g. a ReLU unit active in few minibatches) the standard deviation stands in.
    Drawn from ``generator`` only (never the global stream)."""
    x = noise.double()
    s = MAD_TO_SD * (x - x.median(0).values).abs().median(0).values
    s = torch.where(s > 0, s, x.std(0, unbiased=False))
    g = torch.randn(x.shape, generator=generator, dtype=torch.float64) * s
    return g - g.mean(0, keepdim=True)


def tail_scalars(noise: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    """α̂ of the noise rows with its 95% interval, and of :func:`gaussian_control` (the series the
    Monitor and :func:`genlab.diagnose` record). A coordinate without any noise is no sample."""
    live = noise.abs().amax(0) > 0
    noise = noise[:, live]
    a = tail_index_interval(noise)
    c = tail_index_interval(gaussian_control(noise, generator))
    return {"tail_index": a.alpha, "tail_index_low": a.low, "tail_index_high": a.high, "tail_index_control": c.alpha,
            "tail_index_control_low": c.low, "tail_index_control_high": c.high, "tail_index_rows": float(noise.shape[0]),
            "tail_index_coordinates": float(noise.shape[1])}