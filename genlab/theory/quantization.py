"""Analytical clipping for integer quantization (ACIQ).

Banner, Nahshan & Soudry 2019, "Post-training 4-bit quantization of convolutional networks for
rapid deployment" (NeurIPS; arXiv 1810.05723), Section 3: a tensor with density f is clipped to
[−α, α] and quantized uniformly to 2^M levels (step Δ = 2α/2^M). The expected squared error is
the clipping error plus the rounding error inside the range, approximated by Δ²/12 = α²/(3·4^M):
    Laplace(0, b):  E(α) ≈ 2b²e^{−α/b} + α²/(3·4^M)                                   
    Gaussian(0, σ): E(α) ≈ (α² + σ²)[1 − erf(α/(√2σ))] − √(2/π)·ασ·e^{−α²/(2σ²)} + α²/(3·4^M)
The clipping terms are exact (2∫_α^∞ (x − α)² f(x) dx); the rounding term is the approximation.
α* minimizes E; for the Laplace law it solves α = 3·4^M·b·e^{−α/b} (∂E/∂α = 0).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import erfc

Dist = Literal["laplace", "gaussian"]


def clipping_error(alpha: np.ndarray | float, dist: Dist, scale: float = 1.0) -> np.ndarray:
    """E[(x − clip(x, −α, α))²] exactly, for Laplace(0, b=scale) or Gaussian(0, σ=scale)."""
    a = np.asarray(alpha, dtype=float)
    if dist == "laplace":
        return 2.0 * scale**2 * np.exp(-a / scale)
    if dist == "gaussian":
        s = scale
        return (a * a + s * s) * erfc(a / (math.sqrt(2.0) * s)) - math.sqrt(2.0 / math.pi) * a * s * np.exp(
            -(a * a) / (2.0 * s * s)
        )
    raise ValueError(f"dist must be 'laplace' or 'gaussian', got {dist!r}")


def rounding_error(alpha: np.ndarray | float, bits: int) -> np.ndarray:
    """Δ²/12 = α²/(3·4^M) with Δ = 2α/2^M (Banner et al. 2019, Sec. 3)."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    a = np.asarray(alpha, dtype=float)
    return a * a / (3.0 * 4.0**bits)


def clipping_mse(alpha: np.ndarray | float, bits: int, dist: Dist, scale: float = 1.0) -> np.ndarray:
    """ACIQ's expected squared error of clipping to [−α, α] and quantizing to M = ``bits`` bits
    (Banner et al. 2019, Sec. 3; see the module docstring for both laws)."""
    return clipping_error(alpha, dist, scale) + rounding_error(alpha, bits)


def aciq_optimal_clip(bits: int, dist: Dist) -> float:
    """α*/b (Laplace) or α*/σ (Gaussian): the minimizer of :func:`clipping_mse` at unit scale."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16], got {bits}")
    res = minimize_scalar(
        lambda a: float(clipping_mse(a, bits, dist)), bounds=(1e-6, 40.0), method="bounded",
        options={"xatol": 1e-10},
    )
    return float(res.x)


def uniform_quantize(x: np.ndarray, alpha: float, bits: int, center: float = 0.0) -> np.ndarray:
    """Clip x to [c − α, c + α] and round to the midpoints of 2^M equal bins (step 2α/2^M).

    The quantizer whose error ACIQ models: inside the range the rounding error is uniform on
    ±Δ/2; a clipped value lands on the centre of the outermost bin."""
    levels = 2**bits
    delta = 2.0 * alpha / levels
    z = np.clip(np.asarray(x, dtype=float) - center, -alpha, alpha)
    idx = np.clip(np.floor((z + alpha) / delta), 0, levels - 1)
    return center - alpha + (idx + 0.5) * delta
