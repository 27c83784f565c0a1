"""Fourier concentration on hand-built neurons with known spectra; filter clustering on planted filters."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.errors import InputError
from genlab.probes.feature_structure import filter_clustering, fourier_concentration


def _dft_power(w: np.ndarray, k: int) -> float:
    """|Σ_a w_a e^{−2πi k a / p}|² by a python loop (independent of numpy.fft)."""
    p = len(w)
    re = sum(w[a] * np.cos(2 * np.pi * k * a / p) for a in range(p))
    im = sum(-w[a] * np.sin(2 * np.pi * k * a / p) for a in range(p))
    return re * re + im * im


def test_pure_and_mixed_frequencies_on_zp():
    p = 23
    a = np.arange(p)
    pure = 0.7 + 2.0 * np.cos(2 * np.pi * 5 * a / p + 0.3)  # DC offset does not count
    mixed = 3.0 * np.cos(2 * np.pi * 2 * a / p) + 1.0 * np.sin(2 * np.pi * 9 * a / p)
    r = fourier_concentration(np.stack([pure, mixed]), p)
    assert r.concentration[0] == pytest.approx(1.0, abs=1e-12) and r.frequency[0] == (5,)
    # amplitudes 3 and 1: power shares 9/10 and 1/10
    assert r.concentration[1] == pytest.approx(0.9, abs=1e-12) and r.frequency[1] == (2,)
    # the folded spectrum against the loop DFT: power(k) + power(−k), normalized
    tot = sum(_dft_power(mixed, k) for k in range(1, p))
    for k in (2, 9, 4):
        want = (_dft_power(mixed, k) + _dft_power(mixed, p - k)) / tot
        assert r.power[1, k] == pytest.approx(want, abs=1e-10)


def test_white_noise_is_spread_and_product_groups():
    rng = np.random.default_rng(0)
    p = 31
    r = fourier_concentration(rng.standard_normal((400, p)), p)
    # 15 real frequencies share the power: mean concentration of the max of 15 χ²₂ shares is ≈ 0.22
    assert 0.1 < r.concentration.mean() < 0.4
    # on Z_3 × Z_4: a character of frequency (1, 2) has all its power there
    shape = (3, 4)
    c = np.array(np.unravel_index(np.arange(12), shape))
    w = np.cos(2 * np.pi * (1 * c[0] / 3 + 2 * c[1] / 4))
    r2 = fourier_concentration(w[None], shape)
    assert r2.concentration[0] == pytest.approx(1.0) and r2.frequency[0] in {(1, 2), (2, 2)}
    with pytest.raises(InputError, match="prod"):
        fourier_concentration(np.ones((2, 5)), (2, 3))


def test_filter_clustering_on_planted_filters():
    patterns = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
    rng = np.random.default_rng(1)
    # 6 filters near pattern 0, 2 near pattern 1, 2 near pattern 2, none near pattern 3
    planted = np.repeat(patterns[[0, 1, 2]], [6, 2, 2], axis=0) * rng.uniform(0.5, 3.0, (10, 1))
    planted += 0.05 * rng.standard_normal(planted.shape)
    filters = np.vstack([planted, np.zeros((1, 2))])
    r = filter_clustering(filters, patterns, threshold=0.95)
    np.testing.assert_allclose(r.fraction, [6 / 11, 2 / 11, 2 / 11, 0.0])
    assert list(r.covered) == [True, True, True, False] and not r.all_covered
    assert not r.aligned[-1].any()  # a zero filter aligns with nothing
    assert r.scalars()["patterns_covered"] == 0.75
