"""Structured initializations (genlab.models.init): rank, norm and task alignment measured on the
result by an SVD in the test; the Stein/pHd task directions recovered on a target whose subspace
is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.errors import InputError
from genlab.models.init import (
    aligned_low_rank_weight,
    effective_rank,
    low_rank_weight,
    subspace_alignment,
    task_directions,
)


@pytest.mark.parametrize("rank", [1, 3, 8])
def test_low_rank_weight_has_its_rank_and_norm(rank: int) -> None:
    w = low_rank_weight((20, 8), rank, norm=5.0, generator=torch.Generator().manual_seed(rank)).numpy()
    s = np.linalg.svd(w, compute_uv=False)
    assert np.linalg.matrix_rank(w, tol=1e-10 * s[0]) == rank
    assert abs(np.linalg.norm(w) - 5.0) < 1e-12
    assert np.allclose(s[:rank], 5.0 / math.sqrt(rank), rtol=1e-12)  # equal singular values
    # effective rank, hand-checked: r equal singular values give exp(log r) = r
    assert abs(effective_rank(w) - rank) < 1e-9


def test_default_norm_is_that_of_a_standard_gaussian_matrix() -> None:
    w = low_rank_weight((30, 10), 4)
    assert abs(float(torch.linalg.norm(w)) - math.sqrt(300)) < 1e-10
    g = torch.randn(30, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # ‖G‖_F² ~ χ²(300): relative sd of ‖G‖_F is about 1/√(2·300) ≈ 0.04; 4 sd
    assert abs(float(torch.linalg.norm(g)) / math.sqrt(300) - 1) < 0.17


def test_effective_rank_of_a_known_spectrum() -> None:
    # singular values (3, 1): p = (3/4, 1/4), exp(H) by hand
    w = np.diag([3.0, 1.0, 0.0])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert abs(effective_rank(w) - math.exp(h)) < 1e-12


def test_aligned_weight_lies_in_the_task_subspace() -> None:
    rng = np.random.default_rng(0)
    dirs = rng.standard_normal((3, 12))
    w = aligned_low_rank_weight((40, 12), dirs, norm=7.0, generator=torch.Generator().manual_seed(1)).numpy()
    # independent check: residual of W's rows after least-squares fit on the directions
    coef, *_ = np.linalg.lstsq(dirs.T, w.T, rcond=None)
    assert np.linalg.norm(dirs.T @ coef - w.T) < 1e-10 * np.linalg.norm(w)
    assert abs(np.linalg.norm(w) - 7.0) < 1e-12 and abs(effective_rank(w) - 3) < 1e-9
    assert abs(subspace_alignment(w, dirs) - 1) < 1e-12
    # a random rank-3 matrix of the same norm is far less aligned: E‖WP‖²/‖W‖² = k/d = 1/4
    rnd = low_rank_weight((40, 12), 3, norm=7.0, generator=torch.Generator().manual_seed(2))
    assert subspace_alignment(rnd, dirs) < 0.9


def test_task_directions_recover_a_known_subspace() -> None:
    """y = sin(x₁ + x₂) + x₃x₄/2 on Gaussian inputs depends on span{e₁ + e₂, e₃, e₄} only:
    Stein's lemma gives E[y x] ∝ e₁ + e₂ and E[y x xᵀ] has the (3, 4) block."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 10))
    y = np.sin(x[:, 0] + x[:, 1]) + 0.5 * x[:, 2] * x[:, 3]
    d = task_directions(x, y, 3)
    assert np.allclose(d @ d.T, np.eye(3), atol=1e-12)
    truth = np.zeros((3, 10))
    truth[0, :2] = 1 / math.sqrt(2)
    truth[1, 2] = truth[2, 3] = 1.0
    # principal angles: the estimated subspace is within sampling error (n = 20000: ~0.02) of the truth
    cos = np.linalg.svd(d @ truth.T, compute_uv=False)
    assert cos.min() > 0.95


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(InputError, match="rank"):
        low_rank_weight((4, 3), 4)
    with pytest.raises(InputError, match="norm"):
        low_rank_weight((4, 3), 2, norm=-1.0)
    with pytest.raises(InputError, match="directions"):
        aligned_low_rank_weight((4, 3), np.ones((2, 3)))
    with pytest.raises(InputError, match="rank"):
        task_directions(np.ones((5, 3)), np.ones(5), 0)
