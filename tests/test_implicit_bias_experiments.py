"""The implicit-bias experiments end to end on tiny configs: they run, their checks are computed
from the measurements (claims that are exact inequalities or exact at this scale must pass), their
results are JSON-able and their figures render."""

import json

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from genlab.experiments import get_experiment
from genlab.recorder import MemoryRecorder


from conftest import run_experiment as run  # noqa: E402


def test_deep_linear_follows_saxe():
    result, verdicts = run("deep-linear", singular_values=[2.0, 1.0], d_in=4, d_hidden=4, d_out=3, n=16, lr=0.005)
    # forward-Euler error O(η·s) = 0.01 ≪ tolerance 0.05: the closed form must hold
    assert verdicts[0].passed and verdicts[1].passed
    u = np.asarray(result["decoupled"]["u"])
    assert u[-1, 0] == pytest.approx(2.0, rel=0.02)


def test_max_margin_direction_converges():
    result, verdicts = run("max-margin", steps=20_000, records=60)
    gd = result["runs"]["GD"]
    assert gd["error"][-1] < 0.5 * gd["error"][len(gd["error"]) // 3]
    assert len([v for v in verdicts if v.kind == "claim"]) == 6  # plus a finding per optimizer (the w̃ limit)


def test_double_descent_peak():
    _, verdicts = run("double-descent", n=30, p_values=[5, 15, 30, 45, 90], trials=30, rf_features=[5, 15, 30, 60, 200], rf_trials=5, rf_test=200)
    peak = [v for v in verdicts if "peaks at the interpolation threshold" in v.claim][0]
    assert peak.passed


def test_forgetting_bound_holds():
    _, verdicts = run("forgetting", task_counts=[2, 3], iterations=60, random_draws=3, search_restarts=1, search_k=[1],
                      p=30, m_fractions=[0.0, 0.3, 1.0], similarity_trials=5)
    assert verdicts[0].passed  # an inequality proved by Evron et al.: must hold on any tasks


def test_aciq_clipping_term_exact():
    _, verdicts = run("aciq", samples=20_000, bits_range=[2, 4], train_steps=50, calibration=50)
    assert verdicts[0].passed


def test_min_norm_spline_cost_inequality():
    result, verdicts = run("min-norm-spline", width=40, steps=300, weight_decays=[1e-3])
    for r in result["runs"]:
        assert r["cost"] >= r["r_net"] - 1e-9  # C(θ) ≥ R(f_θ) for every network (Savarese et al.)
    assert verdicts[0].passed


def test_spectral_bias_runs():
    result, verdicts = run("spectral-bias", steps=60, measure_every=20, width=16, depth=2)
    assert np.asarray(result["amp"]).shape == (4, 4)
    assert len(verdicts) == 1
