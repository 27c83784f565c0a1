"""sequential-max-margin: the regularized solver against scipy, and a tiny run whose verdicts come out."""

import numpy as np
from scipy.optimize import minimize

from genlab.experiments import get_experiment as get
from genlab.experiments.continual.sequential_max_margin import make_tasks, regularized_step
from genlab.recorder import MemoryRecorder


def test_regularized_step_matches_scipy_at_moderate_lambda():
    # L = ln(1/λ) = 3: minimize Σ log(1 + e^{−zᵀw}) + (λ/2)‖w − w_prev‖² directly with BFGS
    rng = np.random.default_rng(0)
    X, y = make_tasks(rng, 1, 4, 3, 0.3)[0]
    Z = X * y[:, None]
    L = 3.0
    lam = np.exp(-L)
    w_prev = rng.standard_normal(3)
    obj = lambda w: np.sum(np.logaddexp(0, -Z @ w)) + lam / 2 * np.sum((w - w_prev) ** 2)  # noqa: E731
    ref = minimize(obj, w_prev, method="BFGS", options={"gtol": 1e-10}).x
    v, step = regularized_step(w_prev / L, Z, L, w_prev / L)
    np.testing.assert_allclose(v * L, ref, rtol=1e-5, atol=1e-6)  # BFGS reaches ~1e-6 here
    assert step < 1e-10


def test_tiny_run_gives_verdicts():
    exp = get("sequential-max-margin")
    cfg = exp.Config(n_L=3, L_max=50, draws=2, forgetting_cycles=5, random_orders=2, regression_factor=20)
    res = exp.run(cfg, MemoryRecorder())
    verdicts = exp.checks(cfg, res)
    assert {v.kind for v in verdicts} == {"precondition", "claim", "finding"}
    pre = [v for v in verdicts if v.kind == "precondition"][0]
    assert pre.passed
    figs = exp.figures(cfg, res)
    assert "sequential_max_margin.png" in figs
