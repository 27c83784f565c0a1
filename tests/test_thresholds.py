"""Stability thresholds against brute-force simulation of each optimizer on a quadratic.

Reference: iterate the optimizer on L(x) = ½λx² (a python loop, or torch.optim where it exists)
at 3% below and 3% above the threshold; below, |x| must shrink by ≥ 10× over the run, above it must
grow by ≥ 10×. At 3% from the boundary the spectral radius differs from 1 by ~1e-2/(τ+1), so a few
thousand steps separate the two cases by many orders of magnitude.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.theory import thresholds as th

MARGIN = 0.03


def _simulate_delayed(a: float, tau: int, beta: float, steps: int) -> float:
    """|x| after ``steps`` of x_{t+1} = x_t + β(x_t − x_{t−1}) − a·x_{t−τ}, history all 1."""
    hist = [1.0] * (tau + 2)  # x_{t−τ−1} … x_t
    for _ in range(steps):
        x_new = hist[-1] + beta * (hist[-1] - hist[-2]) - a * hist[-1 - tau]
        hist.append(x_new)
        hist.pop(0)
        if abs(x_new) > 1e30:
            return math.inf
    return max(abs(h) for h in hist)


def _stable(fn, thr: float) -> tuple[bool, bool]:
    below, above = fn(thr * (1 - MARGIN)), fn(thr * (1 + MARGIN))
    return below < 0.1, above > 10.0


def test_gd_and_heavy_ball_against_simulation():
    assert th.gd_step_threshold() == 2.0
    for beta in (0.0, 0.5, 0.9):
        thr = th.heavy_ball_step_threshold(beta)
        assert _stable(lambda a: _simulate_delayed(a, 0, beta, 4000), thr) == (True, True)
        assert th.heavy_ball_sharpness_threshold(0.1, beta) == pytest.approx(thr / 0.1)


@pytest.mark.parametrize("tau", range(0, 9))
def test_delayed_gd_closed_form_against_simulation_and_roots(tau):
    thr = th.delayed_gd_step_threshold(tau)
    assert _stable(lambda a: _simulate_delayed(a, tau, 0.0, 3000 * (tau + 1)), thr) == (True, True)
    # the numerical root-condition boundary agrees with the closed form
    assert th.delayed_momentum_step_threshold(tau, 0.0) == pytest.approx(thr, rel=1e-8)


def test_delayed_gd_known_values():
    assert [round(th.delayed_gd_step_threshold(t), 3) for t in (0, 1, 2)] == [2.0, 1.0, 0.618]
    assert th.delayed_gd_step_threshold(200) * (2 * 200 + 1) == pytest.approx(math.pi, rel=1e-4)


@pytest.mark.parametrize("tau,beta", [(1, 0.5), (3, 0.9), (4, 0.3)])
def test_delayed_momentum_threshold_against_simulation(tau, beta):
    thr = th.delayed_momentum_step_threshold(tau, beta)
    assert _stable(lambda a: _simulate_delayed(a, tau, beta, 20000), thr) == (True, True)
    # the stable set is one interval: a scan below the threshold finds no unstable point
    grid = np.linspace(1e-3, thr * 0.999, 200)
    assert all(th.delayed_momentum_spectral_radius(a, tau, beta) < 1 for a in grid)


def test_momentum_lowers_delayed_threshold_at_large_delay():
    assert th.delayed_momentum_step_threshold(8, 0.9) < th.delayed_gd_step_threshold(8)


def _torch_sgd_final(lr: float, lam: float, beta: float, nesterov: bool, steps: int = 1500) -> float:
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=beta, nesterov=nesterov)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * lam * x**2).sum().backward()
        opt.step()
        if not torch.isfinite(x).all() or abs(float(x.detach())) > 1e30:
            return math.inf
    return abs(float(x.detach()))


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_heavy_ball_and_nesterov_against_torch_optim(beta):
    lam = 3.0
    for nesterov, thr_fn in ((False, th.heavy_ball_sharpness_threshold), (True, th.nesterov_sharpness_threshold)):
        if nesterov and beta == 0.0:
            continue
        eta = 0.05
        lam_thr = thr_fn(eta, beta)
        below = _torch_sgd_final(eta, lam_thr * (1 - MARGIN), beta, nesterov)
        above = _torch_sgd_final(eta, lam_thr * (1 + MARGIN), beta, nesterov)
        assert below < 0.1 and above > 10.0, (nesterov, beta, below, above)


@pytest.mark.parametrize("beta1", [0.0, 0.5, 0.9])
def test_adam_frozen_preconditioner_against_simulation(beta1):
    """Adam's update with P fixed on a diagonal quadratic: the top of P⁻¹H decides."""
    eta = 0.01
    h = np.array([5.0, 40.0, 0.3])
    p = np.array([0.2, 3.0, 0.05])  # P⁻¹H = [25, 13.3, 6]: the first coordinate is the sharp one
    thr = th.adam_sharpness_threshold(eta, beta1)

    def run(scale: float) -> float:
        hh = h * scale * thr / np.max(h / p)  # rescale so that λ_max(P⁻¹H) = scale·threshold
        x, m = np.ones(3), np.zeros(3)
        for _ in range(6000):
            m = beta1 * m + (1 - beta1) * hh * x
            x = x - eta * m / p
            if np.max(np.abs(x)) > 1e30:
                return math.inf
        return float(np.max(np.abs(x)))

    assert run(1 - MARGIN) < 0.1 and run(1 + MARGIN) > 10.0
    assert th.adam_sharpness_threshold(1.0, 0.9) == pytest.approx(38.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="beta"):
        th.heavy_ball_step_threshold(1.0)
    with pytest.raises(ValueError, match="tau"):
        th.delayed_gd_step_threshold(-1)
    with pytest.raises(ValueError, match="eta"):
        th.gd_sharpness_threshold(0.0)
