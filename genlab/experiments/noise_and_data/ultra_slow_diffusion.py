"""ultra-slow-diffusion: during constant-learning-rate SGD the weights move away from their
initialization like log t.

Claim (Hoffer, Hubara & Soudry 2017, "Train longer, generalize better: closing the generalization
gap in large batch training of neural networks", arXiv 1705.08741, Sec. 4 and Fig. 2): in the
initial phase of training with a constant learning rate, ‖w_t − w_0‖ grows logarithmically in the
number of updates t ("ultra-slow diffusion", as for a random walk on a random potential), not as a
power of t.

Setup: an MLP trained by SGD (their optimizer: step 0.1, momentum 0.9) with a constant step on an MNIST-1D subset; ‖w_t − w_0‖ recorded at
log-spaced steps; over t ≥ ``fit_from`` both d = a + b·log t (linear least squares) and
d = a·t^c (nonlinear least squares started from the log-log fit) are fitted to the same points and
compared by their R² on d.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field
from scipy.optimize import curve_fit

from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset
from genlab.models.mlp import mlp
from genlab.probes.distance import distance_from_init
from genlab.train import Trainer

PAPER = "Hoffer, Hubara & Soudry 2017 (arXiv 1705.08741)"


class DiffusionConfig(ExperimentConfig):
    n_train: int = Field(2000, ge=100, le=4000, description="MNIST-1D training examples")
    widths: PositiveInts = Field(default_factory=lambda: [256, 256], min_length=1, description="hidden widths")
    lr: float = Field(0.1, gt=0, description="constant SGD step size (Hoffer et al.: 0.1)")
    momentum: float = Field(0.9, ge=0, lt=1, description="heavy-ball momentum (Hoffer et al.: 0.9)")
    batch_size: int = Field(64, ge=1, description="SGD minibatch size")
    steps: int = Field(6000, ge=100, description="SGD steps")
    points: int = Field(60, ge=10, description="log-spaced measurement steps")
    fit_from: int = Field(60, ge=1, description="fit over steps t ≥ this")
    min_r2: float = Field(0.95, gt=0, le=1, description="'explains': R² of the log fit at least this")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"n_train": 4000, "steps": 100_000, "points": 100, "fit_from": 100}}


def r_squared(y: np.ndarray, fit: np.ndarray) -> float:
    return float(1.0 - np.sum((y - fit) ** 2) / np.sum((y - y.mean()) ** 2))


def fit_log_and_power(t: np.ndarray, d: np.ndarray) -> dict[str, float]:
    """Least-squares fits d ≈ a + b·log t and d ≈ a·t^c, with their R² on d."""
    X = np.stack([np.ones_like(t), np.log(t)], 1)
    (a, b), *_ = np.linalg.lstsq(X, d, rcond=None)
    c0, la0 = np.polyfit(np.log(t), np.log(d), 1)
    try:
        (pa, pc), _ = curve_fit(lambda tt, A, C: A * tt**C, t, d, p0=(math.exp(la0), c0), maxfev=20000)
    except RuntimeError:  # did not converge: keep the log-log fit
        pa, pc = math.exp(la0), c0
    return {
        "log_a": float(a),
        "log_b": float(b),
        "log_r2": r_squared(d, a + b * np.log(t)),
        "pow_a": float(pa),
        "pow_c": float(pc),
        "pow_r2": r_squared(d, pa * t**pc),
    }


class UltraSlowDiffusion(Experiment):
    name = "ultra-slow-diffusion"
    title = "Ultra-slow diffusion: ‖w_t − w_0‖ grows like log t"
    paper = PAPER
    Config = DiffusionConfig

    def run(self, config: DiffusionConfig, recorder: Any) -> Result:
        data = mnist1d_subset(config.n_train, 1000)
        model = mlp(data.x.shape[1], config.widths, 10, seed=config.seed)
        init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        when = np.unique(np.geomspace(1, config.steps, config.points).astype(int)).tolist()
        series: dict[str, list[float]] = {"step": [], "distance": []}
        # the Trainer runs segment by segment between measurement steps (each segment its own
        # reshuffled minibatch order, seeded from the config), so distances land on the log grid
        done, status, loss = 0, "budget", float("nan")
        with recorder.progress(self.name, config.steps) as bar:
            for k, target in enumerate(when):
                if target > done:
                    result = Trainer(
                        model,
                        cross_entropy,
                        data.train,
                        lr=config.lr,
                        momentum=config.momentum,
                        batch_size=config.batch_size,
                        max_steps=target - done,
                        seed=config.seed * 100_003 + k,
                        log_every=10**9,
                        progress=bar,
                    ).fit()
                    loss = result.loss
                    if result.diverged:
                        status = "diverged"
                        break
                    done = target
                d = distance_from_init(model, init).total
                series["step"].append(done)
                series["distance"].append(d)
                recorder.log_many({"distance": d, "loss": loss}, done)
        out: dict[str, Any] = {
            **series,
            "status": status,
            "final_loss": loss,
            "train_acc": accuracy(model, data.x, data.y),
            "test_acc": accuracy(model, data.x_test, data.y_test),
            "layers": distance_from_init(model, init).layers,
        }
        t = np.asarray(series["step"], float)
        d = np.asarray(series["distance"], float)
        keep = t >= config.fit_from
        if status != "diverged" and keep.sum() >= 3:
            out["fit"] = fit_log_and_power(t[keep], d[keep])
        return out

    def checks(self, config: DiffusionConfig, result: Result) -> list[Verdict]:
        fit = result.get("fit")
        claim = (
            f"‖w_t − w_0‖ over constant-step SGD (t ≥ {config.fit_from}) is explained by a + b·log t, "
            "better than by a power law a·t^c"
        )
        if fit is None:
            return [Verdict(claim, "a trained run with ≥ 3 points", f"status {result['status']}", "-", False, PAPER)]
        return [
            Verdict(
                claim=claim,
                predicted=f"R²(a + b·log t) ≥ {config.min_r2:g} and > R²(a·t^c)",
                measured=f"R² log = {fit['log_r2']:.4f} (b = {fit['log_b']:.3g}); R² power = {fit['pow_r2']:.4f} "
                f"(c = {fit['pow_c']:.3g}); {int(sum(1 for s in result['step'] if s >= config.fit_from))} points "
                f"over t ∈ [{config.fit_from}, {config.steps}]",
                tolerance=f"R² threshold {config.min_r2:g}; strict comparison of the two fits",
                passed=bool(fit["log_r2"] >= config.min_r2 and fit["log_r2"] > fit["pow_r2"]),
                paper=PAPER,
            )
        ]

    def figures(self, config: DiffusionConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.asarray(result["step"], float)
        d = np.asarray(result["distance"], float)
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        ax.plot(t, d, "o", ms=3, label="‖w_t − w_0‖")
        fit = result.get("fit")
        if fit:
            tt = t[t >= config.fit_from]
            ax.plot(tt, fit["log_a"] + fit["log_b"] * np.log(tt), label=f"a + b·log t (R² {fit['log_r2']:.3f})")
            ax.plot(tt, fit["pow_a"] * tt ** fit["pow_c"], ls="--", label=f"a·t^c, c={fit['pow_c']:.2f} (R² {fit['pow_r2']:.3f})")
        ax.set_xscale("log")
        ax.set_xlabel("SGD step t")
        ax.set_ylabel("distance from initialization")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return {"diffusion.png": fig}


EXPERIMENT = UltraSlowDiffusion()
