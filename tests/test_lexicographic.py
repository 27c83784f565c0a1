"""The lexicographic ℓ1 max-margin LP sequence against hand-solved cases and a brute-force grid."""

import numpy as np
import pytest

from genlab.theory.lexicographic import lexicographic_max_margin


def test_symmetric_case_by_hand():
    # max min(β1, β2) s.t. |β1| + |β2| ≤ 1: β = (½, ½), both margins ½
    s = lexicographic_max_margin(np.eye(2))
    np.testing.assert_allclose(s.beta, [0.5, 0.5], atol=1e-8)
    assert s.margin == pytest.approx(0.5, abs=1e-8) and s.unique


def test_second_level_decides_by_hand():
    # z1 = (1, 1), z2 = (1, 2): every β ≥ 0 with β1 + β2 = 1 gives z1ᵀβ = 1 (the max), so the first
    # level is attained on a whole segment; the second level maximizes z2ᵀβ = 1 + β2 → β = (0, 1)
    s = lexicographic_max_margin(np.array([[1.0, 1.0], [1.0, 2.0]]))
    np.testing.assert_allclose(s.beta, [0.0, 1.0], atol=1e-8)
    np.testing.assert_allclose(s.levels, [1.0, 2.0], atol=1e-8)
    assert s.unique


def test_non_unique_beta_is_reported():
    # z = (1, 1): any β ≥ 0 on the simplex has margin 1; nothing pins β down
    s = lexicographic_max_margin(np.array([[1.0, 1.0]]))
    assert s.margin == pytest.approx(1.0, abs=1e-8) and not s.unique


def test_not_separable_raises():
    with pytest.raises(ValueError):
        lexicographic_max_margin(np.array([[1.0, 0.0], [-1.0, 0.0]]))


def _leximax_bruteforce(Z, n_grid=200_001):
    """Sorted margin vectors over a fine grid of the ℓ1 unit sphere in 2D; lexicographic maximum."""
    s = np.linspace(0, 4, n_grid, endpoint=False)
    # walk the diamond |b1| + |b2| = 1
    b1 = np.where(s < 1, 1 - s, np.where(s < 2, -(s - 1), np.where(s < 3, -1 + (s - 2), s - 3)))
    b2 = np.where(s < 1, s, np.where(s < 2, 1 - (s - 1), np.where(s < 3, -(s - 2), -1 + (s - 3))))
    B = np.stack([b1, b2], axis=1)
    M = np.sort(B @ Z.T, axis=1)
    idx = np.lexsort(M.T[::-1])[-1]  # lexicographic max of the sorted rows
    return M[idx]


@pytest.mark.parametrize("seed", range(5))
def test_matches_bruteforce_grid_in_2d(seed):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(2)
    X = rng.standard_normal((6, 2))
    Z = X * np.sign(X @ u)[:, None]
    s = lexicographic_max_margin(Z)
    ref = _leximax_bruteforce(Z)
    # the grid step is 2e-5 along the diamond: margins move by at most 2·max|z|·2e-5 < 1e-4·max|z|;
    # lexicographic comparison on a grid can differ from the exact optimum in later levels only by
    # that much too when the first level is attained at a single point
    np.testing.assert_allclose(np.sort(s.margins), ref, atol=1e-4 * np.abs(Z).max())
    assert abs(np.abs(s.beta).sum() - 1) < 1e-8
