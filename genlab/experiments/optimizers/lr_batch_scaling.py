"""lr-batch-scaling: the batch Hessian's sharpness falls as c/B, and the largest stable learning rate
grows with B — linearly for SGD, as √B for Adam — below a critical batch.

Granziol, Zohren & Roberts 2022 ("Learning rates as a function of batch size: a random matrix theory
approach to neural network training", JMLR 23(173), arXiv 2006.09092): the minibatch Hessian is the
full Hessian plus a noise matrix whose scale falls as 1/B, so its top eigenvalue is
λ_max(H_B) ≈ λ_max(H) + c/B (§4); SGD's largest stable step ∝ 1/λ_max(H_B) then grows ≈ linearly in B
while c/B dominates, and Adam's ≈ as √B (§5–6), up to a critical batch where λ_max(H) takes over.

Setup: an MLP on the first ``n_train`` MNIST-1D signals, cross-entropy. (a) at parameters reached
by ``pre_steps`` of SGD (batch 32, lr 0.05) — and at initialization — the mean top eigenvalue of
``num_batches`` minibatch Hessians (:func:`genlab.probes.curvature.minibatch_sharpness`) for each B, fitted
by least squares to a + c/B. (b) for each B, the largest stable learning rate of SGD (no momentum)
and of Adam by bisection on divergence (:func:`genlab.train.largest_stable_step`), from the same
initialization for ``steps`` steps (a run diverges when its loss is non-finite or ends no lower
than it started); exponents of η* ∝ B^b over the batch sizes up to ``critical_batch``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field
from scipy.stats import spearmanr

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import cross_entropy, mnist1d_subset
from genlab.experiments.optimizers._fit import bracket_power_law
from genlab.models.mlp import mlp
from genlab.probes.curvature import minibatch_sharpness
from genlab.train import Trainer
from genlab.train.stable_step import largest_stable_step

PAPER = "Granziol, Zohren & Roberts 2022 (JMLR 23(173), arXiv 2006.09092)"


class LrBatchScalingConfig(ExperimentConfig):
    """Config of :class:`LrBatchScaling`."""

    n_train: int = Field(512, ge=64, le=4000, description="MNIST-1D training signals")
    width: int = Field(64, ge=1, description="hidden width of the one-hidden-layer ReLU MLP")
    batch_sizes: list[int] = Field(default_factory=lambda: [4, 8, 16, 32, 64, 128], min_length=3, description="batch sizes B")
    num_batches: int = Field(10, ge=2, description="(a): minibatches per batch size")
    pre_steps: int = Field(200, ge=0, description="(a): SGD steps before the Hessians are measured")
    steps: int = Field(100, ge=5, description="(b): steps of each stability run")
    critical_batch: int = Field(64, ge=1, description="(b): exponents fitted over B ≤ this")
    rtol: float = Field(0.15, gt=0, description="(b): bisection stops at a bracket ratio below 1 + rtol")
    fit_tol: float = Field(0.2, gt=0, description="(a): fitted intercept within this fraction of λ_max(H)")
    exponent_tol: float = Field(0.25, gt=0, description="(b): fitted exponents within this of 1 (SGD) and 1/2 (Adam)")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {"n_train": 256, "batch_sizes": [4, 16, 64, 256], "num_batches": 5, "pre_steps": 100, "steps": 40, "rtol": 0.25},
            "full": {"n_train": 4000, "width": 128, "batch_sizes": [4, 8, 16, 32, 64, 128, 256, 512], "num_batches": 20,
                     "pre_steps": 1000, "steps": 300, "rtol": 0.05, "critical_batch": 128},
        }


class LrBatchScaling(Experiment):
    name = "lr-batch-scaling"
    title = "Learning rate vs batch size: λ_max(H_B) ≈ λ_max(H) + c/B; η* ∝ B (SGD), ∝ √B (Adam)"
    paper = PAPER
    notes = {
        "top eigenvalue exceeds the full Hessian's and falls with B": (
            "at initialization and after pre_steps of SGD: the mean top eigenvalue of num_batches minibatch Hessians is ≥ the full Hessian's at every B, and its Spearman ρ with B is −1 (strictly falling)",
            "too few minibatches (10) per B, so the means' noise swaps two neighbouring batch sizes",
            "more num_batches, or --full"),
        "λ_max(H_B) ≈ λ_max(H) + c/B": (
            "Granziol et al.'s §4 law: a least-squares fit of the mean λ_max(H_B) to a + c/B has a within ±fit_tol (20%) of the full-Hessian λ_max(H), c > 0 and R² ≥ 0.9",
            "an intercept far from λ_max(H) when the batch sizes do not reach the regime where c/B is small, or noisy means (low R²)",
            "more num_batches, larger batch_sizes"),
        "below the critical batch": (
            "(b), when the bisection closed fewer than two brackets below critical_batch: recorded as failed, since no exponent can be fitted",
            "the bisection range not containing the divergence boundary at some B",
            "check the η range of the stability runs; more steps"),
        "the largest stable learning rate grows as B^": (
            "(b): the exponent b of η* ∝ B^b, fitted to the bisection brackets over B ≤ critical_batch (64), is within exponent_tol (0.25) of 1 for SGD and of 1/2 for Adam",
            "brackets too wide (rtol 0.15; 0.25 in quick) for a good fit, a critical batch below 64 (λ_max(H) dominating early) so the exponent flattens, or `steps` (40 in quick) too short to see divergence",
            "smaller rtol, more steps, another critical_batch; --full"),
    }
    captions = {"lr_batch_scaling.png": "Left: mean top eigenvalue of the minibatch Hessian against B at init and after training, with the a + c/B fits dashed and λ_max(H) dotted (claims a). Right: bisection brackets of the largest stable learning rate for SGD and Adam against B with the predicted B¹ and B^½ slopes, fit range marked (claims b)."}
    Config = LrBatchScalingConfig

    def _model(self, config: LrBatchScalingConfig) -> torch.nn.Module:
        return mlp(40, [config.width], 10, seed=config.seed)

    def _diverges(self, config, data, optimizer: str, batch: int):
        def fn(eta: float) -> bool:
            model = self._model(config)
            with torch.no_grad():
                start = float(cross_entropy(model(data[0]), data[1]))
            opt = None if optimizer == "sgd" else optimizer
            r = Trainer(model, cross_entropy, data, lr=eta, batch_size=batch, max_steps=config.steps, seed=config.seed,
                        eval_every=config.steps, optimizer=opt).fit()
            return r.diverged or not (r.loss < start)

        return fn

    def run(self, config: LrBatchScalingConfig, recorder: Any) -> Result:
        d = mnist1d_subset(config.n_train, 10)
        data = d.train
        sizes = [b for b in config.batch_sizes if b <= config.n_train]
        sharp: dict[str, list[dict[str, Any]]] = {}
        with recorder.progress(self.name, 2 * len(sizes) * 3) as bar:
            for point in ("init", "trained"):
                model = self._model(config)
                if point == "trained" and config.pre_steps:
                    Trainer(model, cross_entropy, data, lr=0.05, batch_size=32, max_steps=config.pre_steps, seed=config.seed).fit()
                rows = []
                for b in sizes:
                    r = minibatch_sharpness(model, cross_entropy, data, b, num_batches=config.num_batches, tol=1e-3, seed=config.seed)
                    rows.append({"batch": b, "mean": r.mean, "se": r.stderr, "full": r.full_batch})
                    recorder.log_many({f"{point}/minibatch_sharpness": r.mean, f"{point}/full_sharpness": r.full_batch}, b)
                    bar.advance(1)
                sharp[point] = rows
            stable: dict[str, list[dict[str, Any]]] = {}
            for opt, (lo, hi) in (("sgd", (1e-3, 100.0)), ("adam", (1e-5, 10.0))):
                rows = []
                for b in sizes:
                    s = largest_stable_step(self._diverges(config, data, opt, b), lo, hi, rtol=config.rtol)
                    rows.append({"batch": b, "stable": s.stable, "unstable": s.unstable, "evaluations": len(s.evaluations)})
                    recorder.log_many({f"{opt}/largest_stable_lr": s.estimate}, b)
                    bar.advance(1)
                stable[opt] = rows
        return {"sharpness": sharp, "stable": stable}

    @staticmethod
    def fit_inverse(rows: list[dict[str, Any]]) -> dict[str, float]:
        """Least-squares fit of λ_B = a + c/B; R² on the λ_B values."""
        b = np.array([r["batch"] for r in rows], dtype=float)
        lam = np.array([r["mean"] for r in rows])
        design = np.stack([np.ones_like(b), 1.0 / b], 1)
        (a, c), *_ = np.linalg.lstsq(design, lam, rcond=None)
        resid = lam - design @ np.array([a, c])
        r2 = 1 - float(resid @ resid) / float(((lam - lam.mean()) ** 2).sum())
        return {"a": float(a), "c": float(c), "r2": r2}

    def checks(self, config: LrBatchScalingConfig, result: Result) -> list[Verdict]:
        out: list[Verdict] = []
        for point in ("init", "trained"):
            rows = result["sharpness"][point]
            full = rows[0]["full"]
            above = all(r["mean"] >= r["full"] for r in rows)
            rho = float(spearmanr([r["batch"] for r in rows], [r["mean"] for r in rows]).statistic)
            out.append(Verdict(
                claim=f"(a, {point}) the minibatch Hessian's top eigenvalue exceeds the full Hessian's and falls with B",
                predicted="E λ_max(H_B) ≥ λ_max(H) at every B; Spearman ρ(B, λ_B) = −1",
                measured=", ".join(f"B={r['batch']}: {r['mean']:.3g} ± {r['se']:.2g}" for r in rows) + f"; λ_max(H) = {full:.3g}; ρ = {rho:.2f}",
                tolerance="exact order", passed=above and rho <= -0.999, paper=PAPER))
            fit = self.fit_inverse(rows)
            out.append(Verdict(
                claim=f"(a, {point}) λ_max(H_B) ≈ λ_max(H) + c/B",
                predicted=f"fit a + c/B: a within ±{config.fit_tol:.0%} of λ_max(H) = {full:.3g}, c > 0, R² ≥ 0.9",
                measured=f"a = {fit['a']:.3g} ({fit['a'] / full - 1:+.0%}), c = {fit['c']:.3g}, R² = {fit['r2']:.3f}",
                tolerance=f"±{config.fit_tol:g} relative on a; R² ≥ 0.9",
                passed=abs(fit["a"] / full - 1) <= config.fit_tol and fit["c"] > 0 and fit["r2"] >= 0.9, paper=PAPER))
        for opt, expected in (("sgd", 1.0), ("adam", 0.5)):
            rows = result["stable"][opt]
            ok_rows = [r for r in rows if r["stable"] > 0 and math.isfinite(r["unstable"]) and r["batch"] <= config.critical_batch]
            label = "SGD" if opt == "sgd" else "Adam"
            if len(ok_rows) < 2:
                out.append(Verdict(claim=f"(b) {label}: η* ∝ B^{expected:g} below the critical batch", predicted=f"b = {expected:g}",
                                   measured="fewer than two closed brackets: " + ", ".join(f"B={r['batch']}: [{r['stable']:.3g}, {r['unstable']:.3g}]" for r in rows),
                                   tolerance=f"±{config.exponent_tol:g}", passed=False, paper=PAPER))
                continue
            fit = bracket_power_law(np.array([r["batch"] for r in ok_rows]), np.array([r["stable"] for r in ok_rows]), np.array([r["unstable"] for r in ok_rows]))
            out.append(Verdict(
                claim=f"(b) {label}: the largest stable learning rate grows as B^{expected:g} below the critical batch",
                predicted=f"exponent b = {expected:g} over B ≤ {config.critical_batch}",
                measured=f"b = {fit['slope']:.2f} (bracket interval [{fit['low']:.2f}, {fit['high']:.2f}]); η* = "
                         + ", ".join(f"B={r['batch']}: [{r['stable']:.3g}, {r['unstable']:.3g}]" for r in rows),
                tolerance=f"|b − {expected:g}| ≤ {config.exponent_tol:g}",
                passed=abs(fit["slope"] - expected) <= config.exponent_tol, paper=PAPER))
        return out

    def figures(self, config: LrBatchScalingConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for point, color in (("init", "tab:blue"), ("trained", "tab:orange")):
            rows = result["sharpness"][point]
            b = np.array([r["batch"] for r in rows], dtype=float)
            ax1.errorbar(b, [r["mean"] for r in rows], yerr=[r["se"] for r in rows], fmt="o", color=color, label=f"E λ_max(H_B), {point}")
            fit = self.fit_inverse(rows)
            bb = np.geomspace(b.min(), b.max(), 100)
            ax1.plot(bb, fit["a"] + fit["c"] / bb, "--", color=color, lw=0.8, label=f"a + c/B fit, {point}")
            ax1.axhline(rows[0]["full"], color=color, ls=":", lw=0.8, label=f"λ_max(H), {point}")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("batch size B")
        ax1.set_ylabel("top eigenvalue")
        ax1.legend(fontsize=6)
        for opt, expected, color in (("sgd", 1.0, "tab:green"), ("adam", 0.5, "tab:red")):
            rows = [r for r in result["stable"][opt] if r["stable"] > 0 and math.isfinite(r["unstable"])]
            if not rows:
                continue
            b = np.array([r["batch"] for r in rows], dtype=float)
            lo = np.array([r["stable"] for r in rows])
            hi = np.array([r["unstable"] for r in rows])
            mid = np.sqrt(lo * hi)
            ax2.errorbar(b, mid, yerr=[mid - lo, hi - mid], fmt="o", color=color, label=f"{opt} η* (bracket)")
            ax2.plot(b, mid[0] * (b / b[0]) ** expected, "--", color=color, lw=0.8, label=f"∝ B^{expected:g} (predicted)")
        ax2.axvline(config.critical_batch, color="k", ls=":", lw=0.8, label="fit range limit")
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("batch size B")
        ax2.set_ylabel("largest stable learning rate")
        ax2.legend(fontsize=6)
        fig.tight_layout()
        return {"lr_batch_scaling.png": fig}


EXPERIMENT = LrBatchScaling()
