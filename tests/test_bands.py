"""Figures draw a claim's prediction with its tolerance band (genlab.report.bands), and the
experiments' figures with a banded claim contain the band at the verdict's limits."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from genlab.config import build_config
from genlab.experiments import get_experiment
from genlab.report.bands import BAND_GID, band_limits, draw_prediction, draw_threshold, relative_band


def test_relative_band_is_symmetric_around_the_prediction():
    lo, hi = relative_band(np.array([2.0, -4.0]), 0.1)
    np.testing.assert_allclose(lo, [1.8, -4.4])
    np.testing.assert_allclose(hi, [2.2, -3.6])


def test_band_limits_read_back_what_was_drawn():
    fig, ax = plt.subplots()
    ax.plot([0, 10], [0, 5])
    draw_prediction(ax, 2.0, 1.8, 2.2)  # spans the axis
    draw_prediction(ax, [1.0, 2.0, 3.0], [0.5, 1.5, 2.5], [1.5, 2.5, 3.5], x=[1, 2, 3])  # a curve
    draw_prediction(ax, 1.0, 0.9, 1.2, x=(6, 8))  # a scalar over a range
    draw_threshold(ax, 4.0, "threshold")
    limits = sorted(band_limits(ax), key=lambda b: b[2])
    assert len(limits) == 3
    # (x0, x1, y0, y1); 1e-9: display-coordinate round trip
    np.testing.assert_allclose(limits[0][2:], (0.5, 3.5), atol=1e-9)
    np.testing.assert_allclose(limits[0][:2], (1, 3), atol=1e-9)
    np.testing.assert_allclose(limits[1], (6, 8, 0.9, 1.2), atol=1e-9)
    np.testing.assert_allclose(limits[2][2:], (1.8, 2.2), atol=1e-9)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    assert svg.count(f'id="{BAND_GID}') == 3 and 'id="threshold' in svg and 'id="prediction' in svg
    plt.close(fig)


def _eos_result(etas: list[float]) -> dict:
    steps = list(range(0, 1001, 10))
    runs = [{"eta": eta, "status": "finished", "loss_steps": steps, "loss": [1.0 / (1 + s) for s in steps],
             "sharpness_steps": steps, "sharpness": [2.0 / eta] * len(steps)} for eta in etas]
    return {"runs": runs}


def test_edge_of_stability_figure_draws_the_hover_band_of_its_claim():
    exp = get_experiment("edge-of-stability")
    cfg = build_config(exp.Config, "quick", {"hover_tol": 0.2})
    figs = exp.figures(cfg, _eos_result([0.05, 0.1]))
    fig = figs["eos.png"]
    bands = [b for ax in fig.axes for b in band_limits(ax)]
    assert len(bands) == 2
    for (x0, x1, y0, y1), eta in zip(sorted(bands, key=lambda b: -b[2]), (0.05, 0.1)):
        # claim (ii): median of the last half (steps ≥ 500) within ±hover_tol of 2/η
        np.testing.assert_allclose((y0, y1), (2 / eta * 0.8, 2 / eta * 1.2), rtol=1e-9)
        np.testing.assert_allclose((x0, x1), (500, 1000), rtol=1e-9)
    plt.close(fig)


def test_multivariate_stable_minima_figure_draws_the_threshold_slack():
    exp = get_experiment("multivariate-stable-minima")
    cfg = build_config(exp.Config, "quick", {"stability_tol": 0.05})
    runs = [{"eta": e, "norm": 1.0, "converged": True, "lambda_max": 1.5 / e} for e in cfg.step_sizes]
    fig = exp.figures(cfg, {"sets": [{"set": "a", "runs": runs}]})["stability.png"]
    bands = [b for ax in fig.axes for b in band_limits(ax)]
    assert len(bands) == 1
    x0, x1, y0, y1 = bands[0]
    lo, hi = min(cfg.step_sizes), max(cfg.step_sizes)
    np.testing.assert_allclose((x0, x1), (lo, hi), rtol=1e-9)
    # the band runs from 2/η at the largest η up to (2/η)(1 + tol) at the smallest
    np.testing.assert_allclose((y0, y1), (2 / hi, 2 / lo * 1.05), rtol=1e-9)
    plt.close(fig)


@pytest.mark.parametrize("slopes", [(-0.8, -0.2), (-1.0, 0.0)])
def test_ntk_limit_figure_draws_the_slope_range(slopes):
    exp = get_experiment("ntk-limit")
    cfg = build_config(exp.Config, "quick", {"slope_range": list(slopes)})
    widths = [64, 256, 1024]
    runs = [{"width": w, "gap": 0.5 * (w / 64) ** -0.5, "prediction": [0.0, 1.0]} for w in widths]
    fig = exp.figures(cfg, {"runs": runs, "prediction_at_T": [0.0, 1.0]})["ntk_limit.png"]
    (x0, x1, y0, y1), = band_limits(fig.axes[0])
    # the band is the fan of slopes lo…hi through the geometric centre of the measured points
    cw = np.exp(np.mean(np.log(widths)))
    cg = np.exp(np.mean(np.log([r["gap"] for r in runs])))
    ends = [cg * (np.array([64, 1024]) / cw) ** s for s in slopes]
    np.testing.assert_allclose((y0, y1), (min(e.min() for e in ends), max(e.max() for e in ends)), rtol=1e-9)
    plt.close(fig)


def test_lazy_rich_figure_draws_the_weight_change_slope_band():
    exp = get_experiment("lazy-rich")
    cfg = build_config(exp.Config, "quick", {})
    lo, hi = cfg.weight_slope_range
    keys = ("weight_change", "kernel_distance", "gap_linearized", "gap_kernel_regression", "test_mse", "train_loss")
    runs = [{"alpha": a, "status": "finished", **{k: 1.0 / a for k in keys}} for a in (1.0, 4.0, 16.0)]
    fig = exp.figures(cfg, {"runs": runs})["lazy_rich.png"]
    (x0, x1, y0, y1), = band_limits(fig.axes[0])
    # measured ∝ 1/α: centre (4, 1/4); the fan's extremes are at α = 1 and α = 16
    ends = [0.25 * (np.array([1.0, 16.0]) / 4.0) ** s for s in (lo, hi)]
    np.testing.assert_allclose((x0, x1, y0, y1), (1, 16, min(e.min() for e in ends), max(e.max() for e in ends)), rtol=1e-9)
    assert not band_limits(fig.axes[1])  # no slope claim on the kernel distance
    plt.close(fig)


def test_stable_minima_rate_figure_draws_the_one_sided_slack():
    exp = get_experiment("stable-minima-rate")
    cfg = build_config(exp.Config, "quick", {})
    ns = [16, 64, 256]
    mse = {str(n): [n ** -0.9] for n in ns}
    points = [{"n": n, "seed": 0, "status": "converged", "test_mse_interior": n ** -0.9} for n in ns]
    fig = exp.figures(cfg, {"points": points, "ns": ns, "mse_by_n": mse, "slope": -0.9})["rate.png"]
    (x0, x1, y0, y1), = band_limits(fig.axes[0])
    cx, cy = 64.0, 64.0 ** -0.9  # geometric centre of the means
    ends = [cy * (np.array([16.0, 256.0]) / cx) ** s for s in (-0.8, -0.8 + cfg.slope_tol)]
    np.testing.assert_allclose((y0, y1), (min(e.min() for e in ends), max(e.max() for e in ends)), rtol=1e-9)
    plt.close(fig)
