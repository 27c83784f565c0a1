"""Straggler theory (genlab.theory.stragglers) against closed forms and Monte Carlo, and the
stragglers experiment end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genlab.theory.stragglers import (
    best_threshold,
    dropcompute_completed_fraction,
    dropcompute_speedup,
    dropcompute_step_time,
    expected_max,
    expected_max_normal,
    sync_step_time,
)
from tests.conftest import run_experiment


def test_expected_max_normal_closed_forms():
    # E[max of 2] = 1/√π, E[max of 3] = 3/(2√π) (order statistics of the normal); quadrature to 1e-9
    assert expected_max_normal(1) == pytest.approx(0.0, abs=1e-9)
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-9)
    assert expected_max_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-9)


@pytest.mark.parametrize("n", [1, 5, 100])
def test_expected_max_of_exponentials_and_uniforms(n):
    # E[max of n Exp(1)] = H_n; E[max of n U(0,1)] = n/(n+1)
    assert expected_max(n, lambda u: -math.log1p(-u)) == pytest.approx(sum(1 / k for k in range(1, n + 1)), rel=1e-7)
    assert expected_max(n, lambda u: u) == pytest.approx(n / (n + 1), rel=1e-9)


def test_step_times_against_monte_carlo_with_normal_latencies():
    """With normal micro-batch latencies the CLT step is exact, so the formulas must match a
    simulation up to its Monte Carlo error (tolerance: 5 standard errors)."""
    rng = np.random.default_rng(0)
    n, m, mu, sd, trials = 16, 6, 1.0, 0.2, 20000
    lat = rng.normal(mu, sd, size=(trials, n, m))
    partial = np.cumsum(lat, -1)
    step = partial[..., -1].max(1)
    assert abs(step.mean() - sync_step_time(n, m, mu, sd)) <= 5 * step.std() / math.sqrt(trials)
    tau = 6.3
    drop = np.minimum(step, tau)
    assert abs(drop.mean() - dropcompute_step_time(n, m, mu, sd, tau)) <= 5 * drop.std() / math.sqrt(trials)
    done = (partial <= tau).mean(axis=(1, 2))
    assert abs(done.mean() - dropcompute_completed_fraction(m, mu, sd, tau)) <= 5 * done.std() / math.sqrt(trials)


def test_threshold_search_finds_the_speedup_maximum_and_speedup_grows():
    tau = best_threshold(64, 8, 1.0, 0.3)
    best = dropcompute_speedup(64, 8, 1.0, 0.3, tau)
    grid = np.linspace(5.0, 14.0, 150)  # brute force over τ (step 0.06)
    assert best >= max(dropcompute_speedup(64, 8, 1.0, 0.3, t) for t in grid) - 1e-6
    assert dropcompute_speedup(1024, 8, 1.0, 0.3, best_threshold(1024, 8, 1.0, 0.3)) > best > 1.0


def test_stragglers_quick_verdicts():
    result, verdicts = run_experiment("stragglers", workers=[1, 4, 64], trials=600, measure_samples=60)
    claims = {v.claim: v for v in verdicts}
    assert len(claims) == 5 and all(v.kind == "claim" for v in verdicts)
    exact = next(v for c, v in claims.items() if c.startswith("the synchronous step time"))
    assert exact.passed  # the exact reference is the simulation's own expectation
    assert result["simulation"][0]["exact_step"] == pytest.approx(8.0, rel=1e-9)  # N = 1: E[T] = Mμ


def test_normal_approximation_claim_can_fail():
    # one very skewed micro-batch per worker: the normal approximation misses the gamma tail at large N
    _, verdicts = run_experiment("stragglers", workers=[1, 256], micro_batches=1, cv=1.5, trials=300, measure_samples=60)
    approx = next(v for v in verdicts if "normal approximation" in v.claim)
    assert not approx.passed
