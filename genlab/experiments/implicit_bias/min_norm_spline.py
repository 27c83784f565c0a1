"""min-norm-spline: a wide ReLU network with weight decay fits data by the linear spline.

Claim (Savarese, Evron, Soudry & Srebro 2019, "How do infinite width bounded norm networks look in
function space?", COLT, arXiv 1902.05040, Sec. 3): for f(x) = Σ_k v_k[w_k x + b_k]_+ + c with the
biases unregularized, the least weight norm ½Σ(w_k² + v_k²) of any network representing f is
R(f) = max(∫|f''|, |f'(−∞) + f'(+∞)|); so minimizing the norm among interpolants picks an
interpolant of least R. For data whose linear-spline interpolant changes convexity at every
interior point and has ∫|f''| ≥ |f'(−∞) + f'(+∞)|, that spline is the unique least-R interpolant
(any interpolant has ∫|f''| ≥ the spline's by the chord-slope argument, and equality forces the
spline between the data and straight ends), so the weight-decayed network should converge to it.

Setup: a few univariate points (default: a zig-zag, alternating convexity); TwoLayerReLU1D of
width k; objective (1/2n)Σ(f(x_j) − y_j)² + λ·½Σ(w² + v²) (biases b, c unpenalized), minimized
by Adam with a cosine schedule (we test the minimizer, not the optimizer's path) for each λ,
from the largest λ down, each run warm-started at the previous solution (a continuation path:
the norm-balancing directions relax on a time scale 1/λ, too slow for small λ from scratch).
Measured: the network's own R(f_θ) (its function as a PiecewiseLinear), its cost ½Σ(w² + v²),
and the distance to the spline on the data range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from genlab.config import PositiveFloats
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.relu1d import TwoLayerReLU1D
from genlab.theory.representation_cost import (
    piecewise_linear_from_relu_units,
    relu_representation_cost,
    weight_norm_cost,
)
from genlab.theory.splines import linear_spline_interpolant

PAPER = "Savarese, Evron, Soudry & Srebro 2019, arXiv 1902.05040 (COLT), Sec. 3"


class MinNormSplineConfig(ExperimentConfig):
    """Config of :class:`MinNormSpline`."""

    x: list[float] = Field(default_factory=lambda: [-1.5, -0.9, -0.3, 0.3, 0.9, 1.5], min_length=3)
    y: list[float] = Field(default_factory=lambda: [0.0, 0.8, -0.2, 0.6, -0.4, 0.3], min_length=3)
    width: int = Field(200, ge=2)
    weight_decays: PositiveFloats = Field(default_factory=lambda: [1e-3, 1e-4], min_length=1, description="λ values")
    steps: int = Field(5000, ge=1)
    lr: float = Field(0.01, gt=0, description="Adam step size (cosine-annealed to 0)")
    fit_tol: float = Field(0.05, gt=0, description="max |f − spline| on the data range, as a fraction of range(y)")
    cost_tol: float = Field(0.03, gt=0, description="relative tolerance of ½Σ(w²+v²) = R")

    @model_validator(mode="after")
    def _points(self) -> "MinNormSplineConfig":
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y must have the same length, got {len(self.x)} and {len(self.y)}")
        if len(set(self.x)) != len(self.x):
            raise ValueError("the x values must be distinct")
        return self

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"width": 1000, "weight_decays": [1e-2, 1e-3, 1e-4, 1e-5], "steps": 40000}}


class MinNormSpline(Experiment):
    name = "min-norm-spline"
    title = "Weight decay on a wide ReLU net selects the least-norm (linear-spline) interpolant"
    paper = PAPER
    notes = {
        "least-R interpolant here": ("that on these data the linear spline is the least-cost interpolant (the theorem's condition)",
                                     "data whose end slopes sum to more than the spline's total curvature", "change the data seed"),
        "linear-spline interpolant": ("that with small weight decay the network's function is the linear-spline interpolant",
                                      "too few steps, or a λ too large to interpolate", "raise steps or lower the smallest λ"),
        "equals the representation cost": ("that at the weight-decay optimum the weights are balanced so the norm equals R(f_θ)",
                                            "training not at an optimum of the regularized loss", "raise steps (--full)"),
        "norm approaches R(spline)": ("that the least norm of the interpolating network tends to R(spline) as λ → 0",
                                      "the smallest λ still too large, or training not converged", "add a smaller λ or train longer"),
    }
    captions = {"fit.png": "The trained networks' functions for each λ against the linear-spline interpolant: claims 'linear-spline interpolant' and 'norm approaches R(spline)'."}
    Config = MinNormSplineConfig

    def run(self, config: MinNormSplineConfig, recorder: Any) -> Result:
        x, y = np.asarray(config.x, dtype=float), np.asarray(config.y, dtype=float)
        if x.size != y.size:
            raise ValueError("x and y must have the same length")
        spline = linear_spline_interpolant(x, y)
        r_spline = relu_representation_cost(spline)
        lo, hi = float(x.min()), float(x.max())
        grid = np.linspace(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo), 500)
        inside = (grid >= lo) & (grid <= hi)
        xt, yt = torch.tensor(x), torch.tensor(y)
        runs = []
        model = TwoLayerReLU1D(config.width, torch.Generator().manual_seed(config.seed), in_scale=1.0, out_scale=0.1)
        with recorder.progress(self.name, config.steps * len(config.weight_decays)) as bar:
            for lam in sorted(config.weight_decays, reverse=True):
                opt = torch.optim.Adam(model.parameters(), lr=config.lr)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
                for step in range(config.steps):
                    opt.zero_grad()
                    fit = 0.5 * torch.mean((model(xt) - yt) ** 2)
                    obj = fit + 0.5 * lam * (model.w.pow(2).sum() + model.v.pow(2).sum())
                    obj.backward()
                    opt.step()
                    sched.step()
                    if step % 250 == 0:
                        recorder.log_many({f"lambda={lam:g}/objective": float(obj.detach()), f"lambda={lam:g}/fit": float(fit.detach())}, step)
                    bar.advance(1)
                w, b, v, c = (p.detach().numpy().copy() for p in (model.w, model.b, model.v, model.c))
                f = piecewise_linear_from_relu_units(w, b, v, float(c))
                fg = f(grid)
                entry = {
                    "lambda": lam,
                    "cost": weight_norm_cost(w, v),
                    "r_net": relu_representation_cost(f),
                    "max_dev": float(np.max(np.abs(fg[inside] - spline(grid[inside])))),
                    "train_rmse": float(np.sqrt(np.mean((f(x) - y) ** 2))),
                    "fit": fg.tolist(),
                }
                recorder.log_many({f"lambda={lam:g}/{k}": entry[k] for k in ("cost", "r_net", "max_dev", "train_rmse")}, config.steps)
                runs.append(entry)
        return {"x": x.tolist(), "y": y.tolist(), "grid": grid.tolist(), "spline": spline(grid).tolist(),
                "r_spline": r_spline, "spline_tv": spline.total_variation_of_slope(),
                "spline_end_sum": abs(spline.left_slope + spline.right_slope), "runs": runs}

    def checks(self, config: MinNormSplineConfig, result: Result) -> list[Verdict]:
        runs = sorted(result["runs"], key=lambda r: r["lambda"])
        best = runs[0]
        yr = float(np.ptp(result["y"]))
        out = [
            Verdict(
                claim="regime: the data make the linear spline the least-R interpolant: ∫|f''| ≥ |f'(−∞) + f'(+∞)|",
                predicted="spline ∫|f''| ≥ |sum of end slopes|",
                measured=f"∫|f''| = {result['spline_tv']:.4g}, |end sum| = {result['spline_end_sum']:.4g}",
                tolerance="exact",
                passed=result["spline_tv"] >= result["spline_end_sum"],
                paper=PAPER,
                kind="precondition",
            ),
            Verdict(
                claim=f"smallest λ = {best['lambda']:g}: the trained network's function is the linear-spline interpolant",
                predicted=f"max |f − spline| on [x_min, x_max] ≤ {config.fit_tol:g}·range(y) = {config.fit_tol * yr:.3g}",
                measured=f"{best['max_dev']:.4g} (train RMSE {best['train_rmse']:.3g})",
                tolerance=f"{config.fit_tol:g}·range(y) (λ > 0 leaves a residual of order λ·R·n)",
                passed=best["max_dev"] <= config.fit_tol * yr,
                paper=PAPER,
            ),
        ]
        rel_own = [abs(r["cost"] / r["r_net"] - 1) for r in runs]
        out.append(
            Verdict(
                claim="at the weight-decay optimum ½Σ(w² + v²) equals the representation cost R(f_θ) of the network's own function",
                predicted="½Σ(w²+v²) = R(f_θ) (≥ always; = at a minimizer of the norm among networks computing f_θ)",
                measured="; ".join(f"λ={r['lambda']:g}: cost {r['cost']:.4g} vs R {r['r_net']:.4g}" for r in runs),
                tolerance=f"{config.cost_tol:g} relative",
                passed=max(rel_own) <= config.cost_tol and all(r["cost"] >= r["r_net"] - 1e-9 for r in runs),
                paper=PAPER,
            )
        )
        rel_sp = abs(best["cost"] / result["r_spline"] - 1)
        out.append(
            Verdict(
                claim="as λ → 0 the network's norm approaches R(spline), the least cost of any interpolant",
                predicted=f"½Σ(w²+v²) → R(spline) = {result['r_spline']:.4g}",
                measured="; ".join(f"λ={r['lambda']:g}: {r['cost']:.4g}" for r in runs) + f" (smallest λ: relative gap {rel_sp:.4f})",
                tolerance=f"{config.cost_tol:g} relative at the smallest λ",
                passed=rel_sp <= config.cost_tol,
                paper=PAPER,
            )
        )
        return out

    def figures(self, config: MinNormSplineConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4))
        grid = np.asarray(result["grid"])
        ax.plot(grid, result["spline"], "k--", lw=1.2, label=f"linear spline, R = {result['r_spline']:.3g}")
        for r in sorted(result["runs"], key=lambda r: -r["lambda"]):
            ax.plot(grid, r["fit"], lw=1.5, label=f"net λ={r['lambda']:g}: ½Σ(w²+v²) = {r['cost']:.3g}, R(f) = {r['r_net']:.3g}")
        ax.scatter(result["x"], result["y"], color="k", zorder=3, s=20)
        ax.legend(fontsize=7)
        ax.set_xlabel("x")
        ax.set_title("weight decay on weights (not biases) → least-norm interpolant", fontsize=9)
        fig.tight_layout()
        return {"fit.png": fig}


EXPERIMENT = MinNormSpline()
