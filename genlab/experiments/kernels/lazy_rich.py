"""lazy-rich: scaling the output of a network by α makes its training lazy as α grows.

Claim (Chizat, Oyallon & Bach 2019, "On lazy training in differentiable programming", NeurIPS,
arXiv 1812.07956, §2): training the centred model F = α[f(·; θ) − f(·; θ0)] with the
loss (1/2n)‖F(X) − y‖² and step η0/α², the parameters move by ‖θ − θ0‖ = O(1/α), the tangent kernel
stays at its initial value (up to O(1/α)), and the trained predictor converges to that of the
linearized model — kernel gradient descent with the initial tangent kernel K0 (ridgeless kernel
regression with K0 when trained to convergence).

Setup: inputs uniform on the sphere of radius sqrt(d), y = sin(x₁ + x₂) + x₃x₄/2, a two-layer
ReLU network in the NTK parameterization (:class:`genlab.models.ntk_mlp.NTKMLP`, one hidden layer
of ``width``), full-batch GD for ``steps`` steps with η0 = ``eta_rel``/λ_max(K0(X, X)/n) and step
η0/α², float64. Measured after training, for each α (averaged over ``seeds`` networks): the
relative weight change ‖θ_T − θ0‖/‖θ0‖, the kernel distance (Fort et al. 2020) between the
empirical NTK at θ0 and at θ_T on train ∪ test inputs, and the relative test-prediction gap to
the linearized model run for the same steps, K0(x, X)K0⁻¹[I − (I − η0K0/n)^T]y (Lee et al. 2019,
arXiv 1902.06720, §2.2), which is ridgeless kernel regression with K0 as T → ∞ (also reported).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field
from scipy.stats import spearmanr

from genlab.report.bands import draw_slope_band
from genlab.data.synthetic import sphere_regression
from genlab.config import PositiveFloats
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.centered import Centered
from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk, kernel_distance, relative_weight_change
from genlab.theory.kernels import kernel_regression_predict
from genlab.train import Trainer
from genlab.train.losses import half_squared_loss

PAPER = "Chizat, Oyallon & Bach 2019 (NeurIPS, arXiv 1812.07956)"


class LazyRichConfig(ExperimentConfig):
    """Config of :class:`LazyRich`."""

    d: int = Field(4, ge=4, description="input dimension")
    n: int = Field(20, ge=2, description="training points")
    n_test: int = Field(50, ge=1, description="test points")
    width: int = Field(128, ge=1, description="hidden width")
    alphas: PositiveFloats = Field(
        default_factory=lambda: [0.3, 1.0, 3.0, 10.0, 30.0, 100.0], min_length=3, description="output scales α"
    )
    seeds: int = Field(2, ge=1, description="networks per α (measurements averaged)")
    sigma_b2: float = Field(0.1, ge=0, description="bias variance σ_b² (σ_w² = 2)")
    eta_rel: float = Field(1.0, gt=0, lt=2, description="η0 as a fraction of 1/λ_max(K0/n)")
    steps: int = Field(1000, ge=1, description="GD steps")
    weight_slope_range: tuple[float, float] = Field(
        (-1.2, -0.8), description="allowed log-log slope of the weight change vs α (theory −1)"
    )

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {},
            "full": {
                "width": 512,
                "n": 40,
                "alphas": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0],
                "seeds": 5,
                "steps": 5000,
            },
        }


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class LazyRich(Experiment):
    name = "lazy-rich"
    title = "Lazy training: as the output scale α grows, weights, kernel and predictions freeze to the linearized model"
    paper = PAPER
    notes = {
        "relative weight change": ("Chizat et al.: the weights move by O(1/α), so the log-log slope is about −1",
                                   "α values too small for the asymptotic regime, or diverged runs", "add larger α (--full)"),
        "kernel distance between": ("that the tangent kernel stays at its initial value as α grows", "too few seeds", "rerun over seeds"),
        "approach kernel GD": ("that the trained predictions approach kernel GD with the initial NTK", "too few steps or seeds",
                               "rerun with --full"),
    }
    captions = {"lazy_rich.png": "Weight change (with the 1/α theory line and the band of slopes weight_slope_range allows, through the fit's centre), kernel distance and the gap to the linearized model against α: the three lazy-training claims."}
    Config = LazyRichConfig

    def run(self, config: LazyRichConfig, recorder: Any) -> Result:
        rng = np.random.default_rng(config.seed)
        x, y = sphere_regression(rng, config.n, config.d)
        xt, yt = sphere_regression(rng, config.n_test, config.d)
        xs, ys, xts = (torch.tensor(a) for a in (x, y, xt))
        xall = torch.cat([xs, xts])
        n = config.n
        runs = []
        with recorder.progress(self.name, len(config.alphas) * config.seeds * config.steps) as bar:
            for s in range(config.seeds):
                for a in config.alphas:
                    base = NTKMLP(
                        config.d, config.width, 1, sigma_b2=config.sigma_b2,
                        generator=torch.Generator().manual_seed(config.seed * 100_003 + s),
                    )
                    init = {k: v.detach().clone() for k, v in base.named_parameters()}
                    k0 = empirical_ntk(base, xall).numpy()
                    eta0 = config.eta_rel / np.linalg.eigvalsh(k0[:n, :n] / n)[-1]
                    net = Centered(base, a)
                    res = Trainer(
                        net, half_squared_loss, (xs, ys), lr=eta0 / a**2, max_steps=config.steps, seed=config.seed,
                        recorder=recorder, prefix=f"alpha={a:g}/seed={s}/", log_every=max(config.steps // 50, 1), progress=bar,
                    ).fit()
                    entry: dict[str, Any] = {"alpha": a, "seed": s, "status": res.status, "train_loss": res.loss}
                    if not res.diverged:
                        k1 = empirical_ntk(base, xall).numpy()
                        decay = np.linalg.matrix_power(np.eye(n) - eta0 * k0[:n, :n] / n, config.steps)
                        lin = kernel_regression_predict(k0[:n, :n], (np.eye(n) - decay) @ y, k0[n:, :n])
                        kr = kernel_regression_predict(k0[:n, :n], y, k0[n:, :n])
                        with torch.no_grad():
                            out = net(xts).numpy()
                        entry.update(
                            weight_change=relative_weight_change(base, init),
                            kernel_distance=kernel_distance(k0, k1),
                            gap_linearized=_rel(out, lin),
                            gap_kernel_regression=_rel(out, kr),
                            test_mse=float(np.mean((out - yt) ** 2)),
                            kernel_regression_test_mse=float(np.mean((kr - yt) ** 2)),
                        )
                        recorder.log_many(
                            {f"alpha={a:g}/seed={s}/" + k: entry[k] for k in ("weight_change", "kernel_distance", "gap_linearized")},
                            config.steps,
                        )
                    runs.append(entry)
        return {"runs": runs}

    @staticmethod
    def _summary(result: Result) -> dict[str, Any]:
        alphas = sorted({r["alpha"] for r in result["runs"]})
        keys = ("weight_change", "kernel_distance", "gap_linearized", "gap_kernel_regression", "test_mse", "train_loss")
        out: dict[str, Any] = {"alpha": alphas, "diverged": []}
        for k in keys:
            out[k] = []
        for a in alphas:
            rs = [r for r in result["runs"] if r["alpha"] == a]
            ok = [r for r in rs if r["status"] != "diverged"]
            if len(ok) < len(rs):
                out["diverged"].append(a)
            for k in keys:
                out[k].append(float(np.mean([r[k] for r in ok])) if ok else float("nan"))
        return out

    def checks(self, config: LazyRichConfig, result: Result) -> list[Verdict]:
        s = self._summary(result)
        a = np.array(s["alpha"])
        note = f" (diverged at α = {s['diverged']})" if s["diverged"] else ""
        out = []
        lo, hi = config.weight_slope_range
        for key, claim, extra in (
            ("weight_change", "relative weight change ‖θ_T − θ0‖/‖θ0‖ goes to 0 as α grows", "slope"),
            ("kernel_distance", "kernel distance between initial and final tangent kernels goes to 0 as α grows", ""),
            ("gap_linearized", "trained predictions approach kernel GD with the initial NTK as α grows", ""),
        ):
            v = np.array(s[key])
            finite = bool(np.all(np.isfinite(v))) and bool(np.all(v > 0))
            mono = finite and bool(np.all(np.diff(v) < 0))
            slope = float(np.polyfit(np.log(a), np.log(v), 1)[0]) if finite else float("nan")
            shown = ", ".join(f"α={x:g}: {y:.3g}" for x, y in zip(a, v))
            if extra:
                passed = mono and lo <= slope <= hi
                predicted = f"strictly decreasing in α, log-log slope in [{lo:g}, {hi:g}] (theory: −1)"
                tol = f"slope in [{lo:g}, {hi:g}]"
            else:
                passed = mono
                predicted = "strictly decreasing in α"
                tol = "strict monotonicity"
            if key == "gap_linearized":
                shown += "; gap to ridgeless kernel regression with K0: " + ", ".join(
                    f"{y:.3g}" for y in s["gap_kernel_regression"]
                )
            out.append(
                Verdict(
                    claim=claim,
                    predicted=predicted,
                    measured=f"{shown}; fitted slope {slope:.2f}{note}",
                    tolerance=tol,
                    passed=passed,
                    paper=PAPER + (", §2" if key != "weight_change" else ", §2 (‖Δθ‖ = O(1/α))"),
                )
            )
        return out

    def figures(self, config: LazyRichConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self._summary(result)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, key, label in (
            (axes[0], "weight_change", "‖θ_T − θ0‖/‖θ0‖"),
            (axes[1], "kernel_distance", "kernel distance K0 vs K_T"),
            (axes[2], "gap_linearized", "test gap to linearized model"),
        ):
            ax.loglog(s["alpha"], s[key], "o-")
            ax.set_xlabel("output scale α")
            ax.set_ylabel(label)
        a = np.array(s["alpha"])
        # the weight-change claim: slope −1 (theory) and the fan of weight_slope_range (tolerance)
        draw_slope_band(axes[0], a, s["weight_change"], -1.0, *config.weight_slope_range, label="∝ 1/α (theory)")
        axes[0].legend(fontsize=7)
        axes[2].loglog(s["alpha"], s["gap_kernel_regression"], "s:", label="to ridgeless KR with K0")
        axes[2].legend(fontsize=7)
        fig.suptitle(f"two-layer ReLU net, width {config.width}: lazy as α grows", fontsize=10)
        fig.tight_layout()
        return {"lazy_rich.png": fig}


EXPERIMENT = LazyRich()
