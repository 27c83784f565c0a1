"""ntk-limit: wide networks trained by GD follow the analytic infinite-width NTK prediction.

Claim (Jacot, Gabriel & Hongler 2018, arXiv 1806.07572, Thm 1–2; Lee, Xiao, Schoenholz, Bahri,
Novak, Sohl-Dickstein & Pennington 2019, "Wide neural networks of any depth evolve as linear models
under gradient descent", arXiv 1902.06720, §2.2; Arora et al. 2019, arXiv 1904.11955, §3):
as the width of an NTK-parameterized network grows, GD training follows kernel gradient descent
with the deterministic limiting NTK Θ, so after T steps of size η on L = (1/2n)‖f(X) − y‖² the
prediction is f_T(x) = Θ(x, X)Θ(X, X)⁻¹[I − (I − ηΘ(X, X)/n)^T]y (→ ridgeless kernel regression
as T → ∞); the gap between network and prediction falls like width^(−1/2).

Setup: inputs uniform on the sphere of radius sqrt(d), y = sin(x₁ + x₂) + x₃x₄/2 (first four
coordinates; d ≥ 4), fully connected ReLU networks (:class:`genlab.models.ntk_mlp.NTKMLP`) centred at
initialization (F = f(·; θ) − f(·; θ0), so the random initial function does not enter: Chizat et al.
2019, §2.2), full-batch GD with η = ``eta_rel``/λ_max(Θ(X, X)/n) for ``steps`` steps, float64.
The analytic Θ is :func:`genlab.theory.kernels.ntk_relu` with the same depth and σ_w², σ_b².
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from genlab.report.bands import draw_slope_band
from genlab.data.synthetic import sphere_regression
from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.centered import Centered
from genlab.models.ntk_mlp import NTKMLP
from genlab.theory.kernels import kernel_regression_predict, ntk_relu
from genlab.train import Trainer
from genlab.train.losses import half_squared_loss

PAPER = (
    "Jacot, Gabriel & Hongler 2018 (arXiv 1806.07572); Lee et al. 2019 (arXiv 1902.06720); "
    "Arora, Du, Hu, Li, Salakhutdinov & Wang 2019 (arXiv 1904.11955)"
)


class NTKLimitConfig(ExperimentConfig):
    """Config of :class:`NTKLimit`."""

    d: int = Field(4, ge=4, description="input dimension")
    n: int = Field(20, ge=2, description="training points")
    n_test: int = Field(50, ge=1, description="test points")
    depth: int = Field(1, ge=1, description="hidden layers")
    widths: PositiveInts = Field(default_factory=lambda: [64, 256, 1024, 4096], min_length=3, description="hidden widths")
    seeds: int = Field(2, ge=1, description="networks per width (gaps averaged)")
    sigma_w2: float = Field(2.0, gt=0, description="weight variance σ_w² (NTK parameterization)")
    sigma_b2: float = Field(0.1, ge=0, description="bias variance σ_b²")
    eta_rel: float = Field(1.0, gt=0, lt=2, description="step as a fraction of 1/λ_max(Θ/n)")
    steps: int = Field(1000, ge=1, description="GD steps")
    slope_range: tuple[float, float] = Field((-1.0, -0.25), description="allowed log-log slope of gap vs width")

    @field_validator("slope_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"must be (low, high) with low < high, got {value}")
        return value

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {},
            "full": {"depth": 2, "widths": [64, 128, 256, 512, 1024], "seeds": 4, "steps": 2000, "n": 40},
        }


class NTKLimit(Experiment):
    name = "ntk-limit"
    title = "Wide networks trained by GD follow the analytic NTK prediction"
    paper = PAPER
    notes = {
        "falls as width grows": ("Jacot et al.; Lee et al.: a GD-trained network approaches the analytic NTK prediction as width grows",
                                 "too few seeds for the gap to be monotone, or too few GD steps", "rerun with --full (more seeds)"),
        "roughly like width^(-1/2)": ("the rate of the approach, a log-log slope near −1/2", "widths too small for the asymptotic rate",
                                      "rerun with --full (wider networks)"),
    }
    captions = {"ntk_limit.png": "Relative gap to the NTK prediction against width (log-log) with the width^(−1/2) theory line and the band of slopes slope_range allows (through the fit's centre), and the network against the NTK prediction at test points: both NTK claims."}
    Config = NTKLimitConfig

    def run(self, config: NTKLimitConfig, recorder: Any) -> Result:
        rng = np.random.default_rng(config.seed)
        x, y = sphere_regression(rng, config.n, config.d)
        xt, yt = sphere_regression(rng, config.n_test, config.d)
        kw = dict(sigma_w2=config.sigma_w2, sigma_b2=config.sigma_b2)
        k = ntk_relu(x, depth=config.depth, **kw)
        kt = ntk_relu(xt, x, depth=config.depth, **kw)
        lam = np.linalg.eigvalsh(k / config.n)
        eta = config.eta_rel / lam[-1]
        decay = np.linalg.matrix_power(np.eye(config.n) - eta * k / config.n, config.steps)
        pred_t = kernel_regression_predict(k, (np.eye(config.n) - decay) @ y, kt)  # Lee et al. 2019, §2.2
        pred_inf = kernel_regression_predict(k, y, kt)
        xs, ys, xts = (torch.tensor(a) for a in (x, y, xt))
        runs = []
        total = len(config.widths) * config.seeds * config.steps
        with recorder.progress(self.name, total) as bar:
            for w in config.widths:
                for s in range(config.seeds):
                    gen = torch.Generator().manual_seed(config.seed * 100_003 + 1000 * s + w)
                    net = Centered(NTKMLP(config.d, w, config.depth, generator=gen, **kw))
                    res = Trainer(
                        net, half_squared_loss, (xs, ys), lr=eta, max_steps=config.steps, seed=config.seed,
                        recorder=recorder, prefix=f"width={w}/seed={s}/", log_every=max(config.steps // 50, 1), progress=bar,
                    ).fit()
                    entry: dict[str, Any] = {"width": w, "seed": s, "status": res.status, "train_loss": res.loss}
                    if not res.diverged:
                        with torch.no_grad():
                            out = net(xts).numpy()
                        entry.update(
                            gap=float(np.linalg.norm(out - pred_t) / np.linalg.norm(pred_t)),
                            gap_to_kernel_regression=float(np.linalg.norm(out - pred_inf) / np.linalg.norm(pred_inf)),
                            test_mse=float(np.mean((out - yt) ** 2)),
                            prediction=out.tolist(),
                        )
                        recorder.log_many({f"width={w}/seed={s}/gap": entry["gap"]}, config.steps)
                    runs.append(entry)
        return {
            "eta": float(eta),
            "lambda_min": float(lam[0] * config.n),
            "lambda_max": float(lam[-1] * config.n),
            "prediction_at_T": pred_t.tolist(),
            "kernel_regression": pred_inf.tolist(),
            "kernel_regression_test_mse": float(np.mean((pred_inf - yt) ** 2)),
            "prediction_at_T_test_mse": float(np.mean((pred_t - yt) ** 2)),
            "y_test": yt.tolist(),
            "runs": runs,
        }

    @staticmethod
    def _by_width(result: Result) -> tuple[list[int], list[float], list[str]]:
        widths = sorted({r["width"] for r in result["runs"]})
        gaps, bad = [], []
        for w in widths:
            rs = [r for r in result["runs"] if r["width"] == w]
            ok = [r["gap"] for r in rs if "gap" in r]
            if len(ok) < len(rs):
                bad.append(f"width {w}: {len(rs) - len(ok)} diverged")
            gaps.append(float(np.mean(ok)) if ok else float("nan"))
        return widths, gaps, bad

    def checks(self, config: NTKLimitConfig, result: Result) -> list[Verdict]:
        widths, gaps, bad = self._by_width(result)
        finite = all(np.isfinite(gaps))
        slope = float(np.polyfit(np.log(widths), np.log(gaps), 1)[0]) if finite else float("nan")
        shown = ", ".join(f"{w}: {g:.3g}" for w, g in zip(widths, gaps)) + (f" ({'; '.join(bad)})" if bad else "")
        lo, hi = config.slope_range
        return [
            Verdict(
                claim="the gap between a GD-trained network and the analytic NTK prediction falls as width grows",
                predicted="mean relative test-prediction gap strictly decreasing in width",
                measured=f"gap by width: {shown}",
                tolerance="strict monotonicity",
                passed=finite and all(b < a for a, b in zip(gaps, gaps[1:])),
                paper=PAPER,
            ),
            Verdict(
                claim="the gap falls roughly like width^(-1/2)",
                predicted=f"log-log slope in [{lo:g}, {hi:g}] (theory: −0.5)",
                measured=f"slope {slope:.3f} over widths {widths[0]}–{widths[-1]} ({config.seeds} seeds each)",
                tolerance=f"[{lo:g}, {hi:g}]: seed-to-seed scatter of the gap at {config.seeds} seeds",
                passed=finite and lo <= slope <= hi,
                paper="Jacot et al. 2018, Thm 1; Hanin & Nica 2019 (arXiv 1909.05989): fluctuations O(width^(-1/2))",
            ),
        ]

    def figures(self, config: NTKLimitConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        widths, gaps, _ = self._by_width(result)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        ax1.loglog(widths, gaps, "o-", label="measured")
        # the slope claim: slope −1/2 (theory) and the fan lo…hi (tolerance) through the fit's centre
        draw_slope_band(ax1, widths, gaps, -0.5, *config.slope_range, label=r"$\propto \mathrm{width}^{-1/2}$ (theory)")
        ax1.set_xlabel("width")
        ax1.set_ylabel("‖f_net − f_NTK‖/‖f_NTK‖ (test)")
        ax1.legend(fontsize=7)
        pred = np.asarray(result["prediction_at_T"])
        order = np.argsort(pred)
        ax2.plot(pred[order], pred[order], "k-", lw=1, label="analytic NTK prediction")
        for w in (widths[0], widths[-1]):
            r = next(r for r in result["runs"] if r["width"] == w and "prediction" in r)
            ax2.plot(pred, r["prediction"], ".", label=f"network, width {w}")
        ax2.set_xlabel("analytic NTK prediction (test points)")
        ax2.set_ylabel("trained network")
        ax2.legend(fontsize=7)
        fig.suptitle(f"depth {config.depth}, {config.steps} GD steps", fontsize=10)
        fig.tight_layout()
        return {"ntk_limit.png": fig}


EXPERIMENT = NTKLimit()
