"""sweep-report draws the experiment's theory curve against the swept key (Experiment.theory_curve;
deep-linear's learning time against the step size)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from genlab.experiments import get_experiment
from genlab.store import Store
from genlab.sweep.driver import plan_sweep, run_sweep
from genlab.sweep.executors import InlineExecutor
from genlab.sweep.report import metric_figure, summarize

SETS = {"singular_values": [2.0, 1.0], "d_in": 2, "d_hidden": 2, "d_out": 2, "n": 4, "horizon": 1.0}


def test_deep_linear_theory_curve_is_the_closed_form():
    exp = get_experiment("deep-linear")
    cfg = {"singular_values": [2.0, 1.0], "u0": 1e-3, "lr": 0.01}
    lrs = [0.01, 0.02, 0.05]
    got = exp.theory_curve("decoupled/steps_to_half_1", "lr", lrs, cfg)
    # u₀ → s/2 with τ = 1/η: t = (1/(2sη))·ln((s − u₀)/u₀), written out by hand for s = 1
    want = [1 / (2 * 1.0 * lr) * math.log((1.0 - 1e-3) / 1e-3) for lr in lrs]
    assert got == pytest.approx(want, rel=1e-12)
    assert exp.theory_curve("decoupled/final_loss", "lr", lrs, cfg) is None  # no theory for that metric
    assert exp.theory_curve("decoupled/steps_to_half_1", "d_in", [3, 4], cfg) is None
    assert get_experiment("stable-minima").theory_curve("x", "noise", [0.0], {}) is None  # the default


def test_sweep_report_draws_the_theory_against_the_swept_step_size(tmp_path: Path):
    store = Store(tmp_path)
    plan = plan_sweep("deep-linear", None, ["lr=0.02,0.04"], SETS)
    run_sweep(plan, store, InlineExecutor())
    summary = summarize(store, plan.sweep)
    fig = metric_figure(summary, "decoupled/steps_to_half_0", "lr")
    theory = [ln for ln in fig.axes[0].lines if ln.get_gid() == "theory"]
    assert len(theory) == 1
    x, y = theory[0].get_data()
    assert (x.min(), x.max()) == pytest.approx((0.02, 0.04))
    exp = get_experiment("deep-linear")
    np.testing.assert_allclose(y, exp.theory_curve("decoupled/steps_to_half_0", "lr", list(x), summary["cells"][0]["config"]))
    # the measured points follow it (GD is forward Euler of the flow: within the experiment's 5% tolerance)
    for cell in summary["cells"]:
        lr = cell["values"]["lr"]
        pred = exp.theory_curve("decoupled/steps_to_half_0", "lr", [lr], cell["config"])[0]
        assert cell["metrics"]["decoupled/steps_to_half_0"][0] == pytest.approx(pred, rel=0.05)
    plt.close(fig)
    # a metric without theory gets no dashed curve
    other = next(m for m in summary["metrics"] if "steps_to_half" not in m)
    fig = metric_figure(summary, other, "lr")
    assert not [ln for ln in fig.axes[0].lines if ln.get_gid() == "theory"]
    plt.close(fig)
