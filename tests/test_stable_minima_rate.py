"""stable-minima-rate: the slope fit, and each ensemble member against a separate Trainer run."""

from __future__ import annotations

import math

import numpy as np
import torch

from genlab.config import build_config
from genlab.data.synthetic import univariate_regression
from genlab.experiments import get_experiment
from genlab.experiments.stability.stable_minima_rate import fit_slope
from genlab.models.relu1d import TwoLayerReLU1D
from genlab.recorder import MemoryRecorder
from genlab.train import Trainer


def test_fit_slope_recovers_a_power_law() -> None:
    ns = [10, 20, 40, 80]
    slope, se = fit_slope(ns, [[3.0 * n**-0.8, 3.0 * n**-0.8] for n in ns])
    assert math.isclose(slope, -0.8, abs_tol=1e-12) and se < 1e-10


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.mean((out - y) ** 2)


def test_members_equal_separate_trainer_runs_and_verdicts_follow_the_measurements() -> None:
    """A tiny run (3 values of n padded into one ensemble): every member's interior test MSE equals
    that of a separate Trainer run on the same data from the same initialization (measured at the
    midpoint of the last two iterates when the budget ends the run) to 1e-9 relative."""
    exp = get_experiment("stable-minima-rate")
    cfg = build_config(exp.Config, None, {"ns": [8, 12, 20], "seeds": 2, "width": 16, "max_steps": 300, "seed": 1})
    result = exp.run(cfg, MemoryRecorder())
    assert len(result["points"]) == 6
    for p in result["points"]:
        d = univariate_regression(p["n"], cfg.ground_truth, cfg.noise, seed=p["seed"])
        x, y = torch.tensor(d.x), torch.tensor(d.y)
        model = TwoLayerReLU1D(cfg.width, torch.Generator().manual_seed(p["seed"]), cfg.init_scale, cfg.init_scale)
        ref = Trainer(model, _mse, (x, y), lr=cfg.eta, max_steps=cfg.max_steps, grad_tol=cfg.grad_tol).fit()
        assert (ref.status, ref.steps) == (p["status"], p["steps"])
        if ref.status == "budget":
            before = [q.detach().clone() for q in model.parameters()]
            Trainer(model, _mse, (x, y), lr=cfg.eta, max_steps=1).fit()
            with torch.no_grad():
                for q, b in zip(model.parameters(), before):
                    q.add_(b).mul_(0.5)
        lo, hi = d.x.min(), d.x.max()
        grid = np.linspace(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo), 400)
        with torch.no_grad():
            mse = float(np.mean((model(torch.tensor(grid)).numpy() - d.truth(grid)) ** 2))
        assert math.isclose(p["test_mse_interior"], mse, rel_tol=1e-9)
    verdicts = exp.checks(cfg, result)
    slope, _ = fit_slope(result["ns"], [result["mse_by_n"][str(n)] for n in result["ns"]])
    assert verdicts[1].passed == (slope <= -0.8 + cfg.slope_tol)  # one-sided: an upper bound
