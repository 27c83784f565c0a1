"""ACIQ formulas: hand values at α = 0 and ∞, the exact clipping term against Monte Carlo (5 SE),
α* against the root of ∂E/∂α found by brentq (independent of the minimizer used), and the
values published in the ACIQ paper's table (rounded to two decimals there)."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import erfc

from genlab.theory.quantization import aciq_optimal_clip, clipping_error, clipping_mse, uniform_quantize


def test_hand_values():
    assert clipping_error(0.0, "laplace", 1.5) == pytest.approx(2 * 1.5**2)  # E x² of Laplace(b) = 2b²
    assert clipping_error(0.0, "gaussian", 1.5) == pytest.approx(1.5**2)  # E x² = σ²
    assert clipping_error(60.0, "gaussian") == pytest.approx(0.0, abs=1e-300)
    assert clipping_mse(3.0, 4, "laplace") == pytest.approx(2 * math.exp(-3.0) + 9.0 / (3 * 256))


@pytest.mark.parametrize("dist", ["laplace", "gaussian"])
def test_clipping_term_monte_carlo(dist):
    rng = np.random.default_rng(0)
    x = rng.laplace(scale=0.7, size=1_000_000) if dist == "laplace" else rng.normal(scale=0.7, size=1_000_000)
    for alpha in (0.5, 1.0, 2.0):
        err = (x - np.clip(x, -alpha, alpha)) ** 2
        se = err.std() / math.sqrt(err.size)
        assert abs(err.mean() - clipping_error(alpha, dist, 0.7)) < 5 * se


@pytest.mark.parametrize("bits", range(2, 9))
def test_optimal_clip_is_derivative_root(bits):
    lap = brentq(lambda a: a - 3 * 4**bits * math.exp(-a), 1e-3, 50)
    assert aciq_optimal_clip(bits, "laplace") == pytest.approx(lap, abs=1e-6)

    def dgauss(a):  # d/dα of the Gaussian clipping term is −4∫_α^∞(x−α)φ = −4(φ(α) − α·erfc(α/√2)/2)
        phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        return -4 * (phi - a * erfc(a / math.sqrt(2)) / 2) + 2 * a / (3 * 4**bits)

    assert aciq_optimal_clip(bits, "gaussian") == pytest.approx(brentq(dgauss, 0.1, 20), abs=1e-6)


def test_paper_table():
    # Banner et al. 2019 (and their code) list α*/b and α*/σ truncated to 2 decimals
    lap = {2: 2.83, 3: 3.89, 4: 5.03, 5: 6.2, 6: 7.41, 7: 8.64, 8: 9.89}
    gau = {2: 1.71, 3: 2.15, 4: 2.55, 5: 2.93, 6: 3.28, 7: 3.61, 8: 3.92}
    for m in range(2, 9):
        assert aciq_optimal_clip(m, "laplace") == pytest.approx(lap[m], abs=0.01)
        assert aciq_optimal_clip(m, "gaussian") == pytest.approx(gau[m], abs=0.01)


def test_uniform_quantize_grid():
    q = uniform_quantize(np.array([-5.0, -1.0, -0.01, 0.01, 0.74, 5.0]), alpha=1.0, bits=2)
    # 4 bins of width 0.5 on [−1, 1]; midpoints −0.75, −0.25, 0.25, 0.75
    np.testing.assert_allclose(q, [-0.75, -0.75, -0.25, 0.25, 0.75, 0.75])
