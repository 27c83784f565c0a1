"""The checks of the curvature experiments are computed from measurements: they fail when the data say so."""

from __future__ import annotations

import numpy as np

from genlab.experiments.stability.edge_of_stability import EXPERIMENT as EOS
from genlab.experiments.stability.gfs_sharpness import EXPERIMENT as GFS
from genlab.experiments.stability.hessian_outliers import count_outliers


def _eos_run(eta: float, lam: list[float], loss: list[float]) -> dict:
    return {"eta": eta, "status": "budget", "sharpness_steps": list(range(0, 10 * len(lam), 10)), "sharpness": lam,
            "loss_steps": list(range(len(loss))), "loss": loss}


def test_eos_checks_pass_on_sharpening_then_hovering_and_fail_otherwise():
    cfg = EOS.Config()
    hover = [10, 12, 14, 16, 18, 20.5, 19.5, 20.2, 19.9, 20.1, 19.8, 20.0]
    # loss every step (120 steps): monotone while λ < 2/η (first crossing at step 50), then non-monotone
    loss = list(np.linspace(1.0, 0.5, 51)) + [0.5 - 0.003 * i + (0.02 if i % 7 == 3 else 0.0) for i in range(1, 70)]
    good = {"runs": [_eos_run(0.1, hover, loss)]}
    assert [v.passed for v in EOS.checks(cfg, good)] == [True, True, True]
    stuck = [10, 10.5, 11, 11.2, 11.3, 11.4, 11.5, 11.5, 11.6, 11.6, 11.6, 11.7]  # never reaches 2/η = 20
    monotone = list(np.linspace(1.0, 0.3, 120))
    bad = {"runs": [_eos_run(0.1, stuck, monotone)]}
    assert [v.passed for v in EOS.checks(cfg, bad)] == [False, False, False]
    # large-step GD whose loss rises already while λ < 2/η (not edge-of-stability behaviour) fails (iii)
    early = [1.0 - 0.004 * i + (0.03 if i % 9 == 4 else 0.0) for i in range(120)]
    assert [v.passed for v in EOS.checks(cfg, {"runs": [_eos_run(0.1, hover, early)]})] == [True, True, False]


def test_gfs_increase_counter():
    rises, total, worst, at = GFS.increases([5.0, 4.9, 4.9000001, 4.95, 4.8], tol=1e-6)
    assert (rises, total, at) == (1, 4, 3)
    assert np.isclose(worst, 0.05 / 4.9000001)


def test_outlier_count_at_largest_gap():
    assert count_outliers(np.array([9.0, 8.0, 7.5, 1.0, 0.9, 0.8])) == (3, 7.5)
    assert count_outliers(np.array([5.0, 0.5, 0.4, -0.1]))[0] == 1
