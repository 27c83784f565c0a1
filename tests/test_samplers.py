"""Samplers (genlab.train.samplers) against exact enumeration and the Gaussian closed form."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genlab.errors import InputError
from genlab.train.samplers import effective_sample_size, guess_and_check, sgld, split_rhat


def _net_fits(x: torch.Tensor, y: torch.Tensor):
    """A width-2 threshold network sign(v·sign(Wx + b)) with ties as +1; fits = all labels right."""
    def fits(w):
        h = torch.where(torch.einsum("bhd,nd->bnh", w["W"], x) + w["b"][:, None, :] >= 0, 1.0, -1.0)
        out = torch.where(torch.einsum("bnh,bh->bn", h, w["v"]) >= 0, 1.0, -1.0)
        return (out == y).all(1)
    return fits


def test_rejection_acceptance_rate_matches_exact_enumeration():
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    y = torch.tensor([1.0, -1.0, -1.0, -1.0])  # AND
    levels = torch.tensor([-1.0, 0.0, 1.0])
    shapes = {"W": (2, 2), "b": (2,), "v": (2,)}
    fits = _net_fits(x, y)
    # exact: every one of the 3^8 weight settings, in one batch
    grid = torch.tensor(list(itertools.product([-1.0, 0.0, 1.0], repeat=8)))
    p = float(fits({"W": grid[:, :4].reshape(-1, 2, 2), "b": grid[:, 4:6], "v": grid[:, 6:]}).double().mean())
    assert 0 < p < 1
    r = guess_and_check(shapes, levels, fits, want=10**9, max_draws=40_000, batch=8192, seed=3)
    assert r.draws == 40_000
    # binomial sd of the rate = sqrt(p(1−p)/N); 4 sd leaves a 6e-5 chance of a false failure
    assert abs(r.rate - p) <= 4 * math.sqrt(p * (1 - p) / r.draws)
    # accepted draws really interpolate, and `want` caps what is kept
    r2 = guess_and_check(shapes, levels, fits, want=5, max_draws=10_000, seed=1)
    assert r2.accepted["W"].shape == (5, 2, 2) and bool(fits(r2.accepted).all())
    with pytest.raises(InputError, match="want"):
        guess_and_check(shapes, levels, fits, want=0, max_draws=10)


def test_sgld_on_a_gaussian_posterior_matches_its_closed_form():
    # U(θ) = ½ Σ a_j (θ_j − μ_j)²: posterior N(μ, T/a); ULA's stationary variance is T/(a(1 − ηa/2))
    a = torch.tensor([1.0, 4.0], dtype=torch.float64)
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
    eta, T = 0.05, 0.7
    r = sgld(lambda th: a * (th - mu), torch.zeros(8, 2, dtype=torch.float64), eta, T, steps=6000, burn_in=500, seed=0)
    var_exact = T / (a * (1 - eta * a / 2))
    n_eff = torch.tensor(r.ess)
    # mean: sd = sqrt(var/ESS); variance: relative sd ≈ sqrt(2/ESS); both at 4 sd
    assert torch.all((r.mean() - mu).abs() <= 4 * torch.sqrt(var_exact / n_eff))
    assert torch.all((r.var() / var_exact - 1).abs() <= 4 * torch.sqrt(2 / n_eff))
    # the discretization bias is visible against T/a for the stiff coordinate (ηa = 0.2: +11 %)
    assert float(r.var()[1] / (T / a[1])) > 1.05
    assert np.all(r.rhat < 1.05) and np.all(r.chain_mean_sd < 0.2)


def test_ess_and_rhat_on_known_chains():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((4, 2000, 1))
    assert effective_sample_size(iid)[0] == pytest.approx(8000, rel=0.15)
    # AR(1) with φ = 0.9: integrated autocorrelation time (1 + φ)/(1 − φ) = 19
    phi, n = 0.9, 20000
    z = np.zeros((4, n, 1))
    for t in range(1, n):
        z[:, t] = phi * z[:, t - 1] + rng.standard_normal((4, 1))
    assert effective_sample_size(z)[0] == pytest.approx(4 * n / 19, rel=0.2)
    shifted = iid + np.arange(4)[:, None, None]  # chains stuck in different places
    assert split_rhat(iid)[0] < 1.01 and split_rhat(shifted)[0] > 1.5
