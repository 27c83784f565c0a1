"""kernel-rich: the initialization scale α moves a diagonal linear network from rich to kernel.

Claim (Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020, "Kernel and
rich regimes in overparametrized models", COLT, arXiv 2002.09277, Thm 1 and 2): gradient flow on
the squared loss of β = u∘u − v∘v from u(0) = v(0) = α·1 converges to the interpolator minimizing
Q_α(β) = α²Σq(β_i/α²), q(z) = 2 − sqrt(4+z²) + z·arcsinh(z/2); small α gives the min-ℓ1 (sparse)
interpolator, large α the min-ℓ2 one, and for a sparse target with n < d the small-α solution
generalizes while the large-α one does not.

Setup: X with i.i.d. N(0, 1) entries (n < d), a k-sparse β* with entries ±(1 + U[0, 1]),
y = Xβ* (+ optional noise), L = (1/2n)‖Xβ − y‖²; GD from u = v = α·1 with the step
η_t = η_rel / (4λ_max(XᵀX/n)·max_i(u_i² + v_i²) + 2‖∇_β L‖_∞) — a fixed fraction ``η_rel`` of the
inverse of a bound on the local curvature, so ``η_rel`` → 0 is gradient flow (a step-size schedule
only reparametrizes time, not the path). Each run stops when ‖Xβ − y‖ ≤ ``tol``·‖y‖ or at the budget.
Test error ‖β − β*‖² (the excess risk for isotropic inputs). All runs vectorized in numpy (float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator
from scipy.stats import spearmanr

from genlab.config import PositiveFloats
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.theory.diagonal_nets import min_l1_interpolator, min_l2_interpolator, q_alpha, qalpha_interpolator

PAPER = "Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020 (COLT, arXiv 2002.09277)"


class KernelRichConfig(ExperimentConfig):
    """Config of :class:`KernelRich`."""

    n: int = Field(25, ge=1, description="number of samples (n < d)")
    d: int = Field(50, ge=2, description="dimension")
    sparsity: int = Field(3, ge=1, description="number of nonzero entries k of β*")
    noise: float = Field(0.0, ge=0, description="label noise standard deviation")
    alphas: PositiveFloats = Field(
        default_factory=lambda: [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], min_length=3, description="initialization scales α"
    )
    eta_rel: float = Field(0.1, gt=0, le=1, description="step as a fraction of the inverse local curvature bound")
    step_sweep: PositiveFloats = Field(
        default_factory=lambda: [0.4, 0.2, 0.1], min_length=2, description="η_rel values of the step-size sweep"
    )
    sweep_alpha: float = Field(0.3, gt=0, description="α at which the step-size sweep is run")
    max_steps: int = Field(60_000, ge=1, description="step budget of every run")
    tol: float = Field(1e-7, gt=0, description="stop when ‖Xβ − y‖ ≤ tol·‖y‖")
    match_tol: float = Field(0.02, gt=0, description="relative tolerance of ‖β_GD − β_α‖/‖β_α‖")
    limit_tol: float = Field(0.05, gt=0, description="relative tolerance of the α → 0 and α → ∞ limits")

    @model_validator(mode="after")
    def _underdetermined(self) -> "KernelRichConfig":
        if self.n >= self.d:
            raise ValueError(f"n must be < d (an underdetermined problem), got n={self.n}, d={self.d}")
        return self

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {},
            "full": {
                "n": 40,
                "d": 100,
                "sparsity": 5,
                "alphas": [0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0],
                "step_sweep": [0.4, 0.2, 0.1, 0.05, 0.025],
                "max_steps": 1_000_000,
            },
        }


def diagonal_net_gd(
    X: np.ndarray, y: np.ndarray, alphas: np.ndarray, etas: np.ndarray, max_steps: int, tol: float, progress: Any = None
) -> dict[str, np.ndarray]:
    """Run GD on (u, v) for every (α, η_rel) pair in parallel; returns β, steps, residuals."""
    n, d = X.shape
    lam = float(np.linalg.eigvalsh(X.T @ X / n)[-1])
    u = np.repeat(np.asarray(alphas, dtype=np.float64)[:, None], d, axis=1)
    v = u.copy()
    etas = np.asarray(etas, dtype=np.float64)
    active = np.ones(len(alphas), dtype=bool)
    steps = np.zeros(len(alphas), dtype=int)
    ny = float(np.linalg.norm(y))
    res = np.full(len(alphas), np.inf)
    chunk = max(max_steps // 100, 1)
    for t in range(max_steps + 1):
        beta = u * u - v * v
        r = beta @ X.T - y
        res = np.linalg.norm(r, axis=1) / ny
        active &= ~(res <= tol)
        if not active.any() or t == max_steps:
            break
        g = r @ X / n  # ∇_β L
        curv = 4 * lam * np.max(u * u + v * v, axis=1) + 2 * np.max(np.abs(g), axis=1)
        h = np.where(active, etas / curv, 0.0)[:, None]
        u, v = u - h * 2 * u * g, v + h * 2 * v * g  # ∂L/∂u = 2u∘g, ∂L/∂v = −2v∘g
        steps += active
        if progress is not None and t % chunk == chunk - 1:
            progress.advance(chunk)
    return {"beta": u * u - v * v, "steps": steps, "residual": res}


class KernelRich(Experiment):
    name = "kernel-rich"
    title = "Kernel vs rich regime of a diagonal linear network: GD finds the Q_α interpolator"
    paper = PAPER
    notes = {
        "converges to argmin Q_α": ("Woodworth et al. Thm 1: GD from scale α reaches the interpolator minimizing Q_α",
                                    "a finite step size (the theorem is for gradient flow) or too few steps",
                                    "lower eta_rel or raise max_steps"),
        "gap to the gradient-flow limit": ("that the gap to the flow's limit shrinks as the step size shrinks",
                                           "step sizes so small that the error is at solver tolerance", "widen the step-size sweep"),
        "min-ℓ1 interpolator": ("that small α gives the sparse (min-ℓ1) solution: the rich regime",
                                "α not small enough, or training stopped early", "add a smaller α"),
        "min-ℓ2 interpolator": ("that large α gives the min-ℓ2 solution: the kernel regime", "α not large enough", "add a larger α"),
        "generalizes better": ("that for a sparse target the rich regime has lower test error", "a target that is not sparse enough",
                               "rerun over seeds"),
    }
    captions = {
        "alpha_sweep.png": "Distances of the GD solution to argmin Q_α, the min-ℓ1 and the min-ℓ2 interpolators, and test error, against α: the Q_α, ℓ1/ℓ2-limit and generalization claims.",
        "step_sweep.png": "Gap to the gradient-flow limit against the relative step size: the step-size claim.",
    }
    Config = KernelRichConfig

    def run(self, config: KernelRichConfig, recorder: Any) -> Result:
        if config.n >= config.d:
            raise ValueError(f"need n < d for an underdetermined problem, got n={config.n}, d={config.d}")
        rng = np.random.default_rng(config.seed)
        X = rng.standard_normal((config.n, config.d))
        truth = np.zeros(config.d)
        support = rng.choice(config.d, size=min(config.sparsity, config.d), replace=False)
        truth[support] = rng.choice([-1.0, 1.0], size=len(support)) * (1 + rng.random(len(support)))
        y = X @ truth + config.noise * rng.standard_normal(config.n)
        l1, l2 = min_l1_interpolator(X, y), min_l2_interpolator(X, y)

        alphas = list(config.alphas)
        sweep = [e for e in config.step_sweep if e != config.eta_rel]
        run_alpha = np.array(alphas + [config.sweep_alpha] * len(sweep))
        run_eta = np.array([config.eta_rel] * len(alphas) + sweep)
        with recorder.progress(self.name, config.max_steps) as bar:
            out = diagonal_net_gd(X, y, run_alpha, run_eta, config.max_steps, config.tol, bar)

        def rel(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.linalg.norm(a - b) / np.linalg.norm(b))

        runs = []
        for i, (a, e) in enumerate(zip(run_alpha, run_eta)):
            beta = out["beta"][i]
            q = qalpha_interpolator(X, y, float(a))
            entry = {
                "alpha": float(a),
                "eta_rel": float(e),
                "steps": int(out["steps"][i]),
                "residual": float(out["residual"][i]),
                "converged": bool(out["residual"][i] <= config.tol),
                "err_to_qalpha": rel(beta, q),
                "dist_to_l1": rel(beta, l1),
                "dist_to_l2": rel(beta, l2),
                "test_error": float(np.sum((beta - truth) ** 2)),
                "l1_norm": float(np.abs(beta).sum()),
                "qalpha_test_error": float(np.sum((q - truth) ** 2)),
                "qalpha_l1_norm": float(np.abs(q).sum()),
                "qalpha_objective_gap": float(q_alpha(beta, a) - q_alpha(q, a)),
            }
            runs.append(entry)
            recorder.log_many(
                {f"alpha={a:g}/eta={e:g}/" + k: entry[k] for k in ("err_to_qalpha", "test_error", "l1_norm", "residual")},
                entry["steps"],
            )
        grid = np.geomspace(min(alphas) / 3, max(alphas) * 3, 40)
        curve = [qalpha_interpolator(X, y, float(a)) for a in grid]
        return {
            "runs": runs,
            "l1": {"test_error": float(np.sum((l1 - truth) ** 2)), "l1_norm": float(np.abs(l1).sum())},
            "l2": {"test_error": float(np.sum((l2 - truth) ** 2)), "l1_norm": float(np.abs(l2).sum())},
            "curve": {
                "alpha": grid.tolist(),
                "test_error": [float(np.sum((b - truth) ** 2)) for b in curve],
                "l1_norm": [float(np.abs(b).sum()) for b in curve],
            },
        }

    def checks(self, config: KernelRichConfig, result: Result) -> list[Verdict]:
        runs = result["runs"]
        main = sorted([r for r in runs if r["eta_rel"] == config.eta_rel], key=lambda r: r["alpha"])
        out: list[Verdict] = []
        unconv = [r for r in main if not r["converged"]]
        note = (
            "; not converged within the budget (residual): "
            + ", ".join(f"α={r['alpha']:g} ({r['residual']:.1e})" for r in unconv)
            if unconv
            else ""
        )
        worst = max(main, key=lambda r: r["err_to_qalpha"])
        out.append(
            Verdict(
                claim="GD on the diagonal network converges to argmin Q_α(β) s.t. Xβ = y, for every α",
                predicted=f"‖β_GD − β_α‖/‖β_α‖ ≤ {config.match_tol:g} at η_rel = {config.eta_rel:g}",
                measured=", ".join(f"α={r['alpha']:g}: {r['err_to_qalpha']:.2e}" for r in main)
                + f" (worst α={worst['alpha']:g}){note}",
                tolerance=f"{config.match_tol:g} relative (GD differs from gradient flow by O(η))",
                passed=worst["err_to_qalpha"] <= config.match_tol,
                paper=PAPER + ", Thm 1",
            )
        )
        sweep = sorted([r for r in runs if r["alpha"] == config.sweep_alpha], key=lambda r: r["eta_rel"])
        if len(sweep) >= 2:
            errs = [r["err_to_qalpha"] for r in sweep]
            etas = [r["eta_rel"] for r in sweep]
            slope = float(np.polyfit(np.log(etas), np.log(np.maximum(errs, 1e-300)), 1)[0])
            out.append(
                Verdict(
                    claim="the gap to the gradient-flow limit shrinks with the step size",
                    predicted="error strictly increasing in η_rel (first order: ∝ η)",
                    measured=f"α={config.sweep_alpha:g}: "
                    + ", ".join(f"η_rel={e:g}: {v:.2e}" for e, v in zip(etas, errs))
                    + f"; log-log slope {slope:.2f}",
                    tolerance="strict monotonicity",
                    passed=all(b > a for a, b in zip(errs, errs[1:])),
                    paper=PAPER,
                )
            )
        small, large = main[0], main[-1]
        d1 = [r["dist_to_l1"] for r in main]
        d2 = [r["dist_to_l2"] for r in main]
        alphas = [r["alpha"] for r in main]
        rho1 = float(spearmanr(alphas, d1).statistic)
        rho2 = float(spearmanr(alphas, d2).statistic)
        out.append(
            Verdict(
                claim="small α: the trained β approaches the min-ℓ1 interpolator (rich regime)",
                predicted=f"‖β − β_ℓ1‖/‖β_ℓ1‖ ≤ {config.limit_tol:g} at α={small['alpha']:g}; grows with α",
                measured=f"{small['dist_to_l1']:.2e} at α={small['alpha']:g}; Spearman ρ(α, dist) = {rho1:.2f} "
                f"({', '.join(f'{v:.2g}' for v in d1)})",
                tolerance=f"{config.limit_tol:g} relative; ρ > 0",
                passed=small["dist_to_l1"] <= config.limit_tol and rho1 > 0,
                paper=PAPER + ", Thm 2",
            )
        )
        out.append(
            Verdict(
                claim="large α: the trained β approaches the min-ℓ2 interpolator (kernel regime)",
                predicted=f"‖β − β_ℓ2‖/‖β_ℓ2‖ ≤ {config.limit_tol:g} at α={large['alpha']:g}; falls with α",
                measured=f"{large['dist_to_l2']:.2e} at α={large['alpha']:g}; Spearman ρ(α, dist) = {rho2:.2f} "
                f"({', '.join(f'{v:.2g}' for v in d2)})",
                tolerance=f"{config.limit_tol:g} relative; ρ < 0",
                passed=large["dist_to_l2"] <= config.limit_tol and rho2 < 0,
                paper=PAPER + ", Thm 2",
            )
        )
        out.append(
            Verdict(
                claim="for a sparse target with n < d the rich regime generalizes better than the kernel regime",
                predicted="test error ‖β − β*‖² at the smallest α < at the largest α",
                measured=f"{small['test_error']:.3g} (α={small['alpha']:g}) vs {large['test_error']:.3g} "
                f"(α={large['alpha']:g}); min-ℓ1 {result['l1']['test_error']:.3g}, min-ℓ2 {result['l2']['test_error']:.3g}",
                tolerance="strict inequality",
                passed=small["test_error"] < large["test_error"],
                paper=PAPER + ", §1 and Fig. 1",
            )
        )
        return out

    def figures(self, config: KernelRichConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        main = sorted([r for r in result["runs"] if r["eta_rel"] == config.eta_rel], key=lambda r: r["alpha"])
        a = [r["alpha"] for r in main]
        curve = result["curve"]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, key, label in ((ax1, "test_error", "test error ‖β − β*‖²"), (ax2, "l1_norm", "‖β‖₁")):
            ax.plot(curve["alpha"], curve[key], "-", color="tab:orange", label="Q_α interpolator (theory)")
            ax.plot(a, [r[key] for r in main], "o", color="tab:blue", label=f"GD (η_rel={config.eta_rel:g})")
            ax.axhline(result["l1"][key], color="tab:green", ls="--", lw=1, label="min-ℓ1")
            ax.axhline(result["l2"][key], color="tab:red", ls=":", lw=1, label="min-ℓ2")
            ax.set_xscale("log")
            ax.set_xlabel("initialization scale α")
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
        fig.suptitle("diagonal linear network: rich (small α) to kernel (large α)", fontsize=10)
        fig.tight_layout()
        figs = {"alpha_sweep.png": fig}
        sweep = sorted([r for r in result["runs"] if r["alpha"] == config.sweep_alpha], key=lambda r: r["eta_rel"])
        if len(sweep) >= 2:
            fig, ax = plt.subplots(figsize=(4.5, 3.5))
            ax.loglog([r["eta_rel"] for r in sweep], [r["err_to_qalpha"] for r in sweep], "o-")
            ax.set_xlabel("η_rel")
            ax.set_ylabel("‖β_GD − β_α‖/‖β_α‖")
            ax.set_title(f"step-size sweep at α={config.sweep_alpha:g}", fontsize=9)
            fig.tight_layout()
            figs["step_sweep.png"] = fig
        return figs


EXPERIMENT = KernelRich()
