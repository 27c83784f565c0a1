"""async-delay: asynchronous (τ-stale) gradients shrink the stable step as 1/τ, and momentum hurts.

Giladi, Nacson, Hoffer & Soudry 2020 ("At stability's edge: how to adjust hyperparameters to
preserve minima selection in asynchronous training of neural networks", ICLR, arXiv 1909.12340):
asynchronous SGD is SGD on gradients τ steps stale; around a minimum of sharpness λ it is the delay
recurrence x_{t+1} = x_t − ηλ x_{t−τ}, linearly stable iff ηλ < 2 sin(π/(2(2τ + 1))) (§3; the
classical delay-difference result, ≈ π/(2τ + 1)), so the minima it can stay in have λ_max below that
over η, and the learning rate that keeps the accessible set fixed falls as 1/τ. With heavy-ball
momentum the threshold drops further (§4: momentum should be turned off or modified).

Checks:
(a) quadratic: genlab's delayed-gradient SGD (:class:`genlab.train.optimizers.DelayedSGD`) on a
    diagonal quadratic with a log-spaced grid of curvatures — one run measures the largest stable ηλ
    for each τ — against 2 sin(π/(2(2τ+1))) (±``quad_tol``).
(b) quadratic with momentum β: the measured threshold against the root condition of the delayed
    heavy-ball recurrence (:func:`genlab.theory.thresholds.delayed_momentum_step_threshold`), and below
    the threshold without momentum at every τ ≥ 1.
(c) MLP (tanh, the Chebyshev task of edge-of-stability, full batch): the largest stable η at each τ by
    bisection on divergence (:func:`genlab.train.largest_stable_step`); a run at
    ``settle_fraction``·η* for ``steps + settle_steps`` steps (chosen after a first quick run: at η*
    itself, stable for ``steps`` only, runs were far from any minimum or diverged later) ends with λ_max
    at most (1 + ``sharp_tol``)·2 sin(π/(2(2τ+1)))/η.
(d) MLP: the fitted exponent b of η* ∝ τ^b over τ ≥ 2 is the threshold's own exponent over those τ
    (≈ −1) within ±``exponent_tol``; the interval propagates the bisection brackets.
(e) MLP: with momentum β at delay ``momentum_delay`` the largest stable η is lower than without.

A run "diverges" when its loss becomes non-finite or ends no lower than it started. Full batch, so
the only randomness is the initialization (from ``seed``). Tolerances were set before the runs
reported in the README.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field

from genlab.data.chebyshev import chebyshev_regression
from genlab.experiments.optimizers._fit import bracket_power_law
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.mlp import mlp
from genlab.probes.curvature import hessian_eigenvalues
from genlab.theory.thresholds import delayed_gd_step_threshold, delayed_momentum_step_threshold
from genlab.train.losses import half_squared_loss
from genlab.train.optimizers import make_optimizer
from genlab.train.stable_step import largest_stable_step

PAPER = "Giladi, Nacson, Hoffer & Soudry 2020 (ICLR, arXiv 1909.12340)"


class AsyncDelayConfig(ExperimentConfig):
    """Config of :class:`AsyncDelay`."""

    quad_delays: list[int] = Field(default_factory=lambda: [0, 1, 2, 4, 8], min_length=1, description="delays τ on the quadratic")
    quad_grid: int = Field(600, ge=50, description="number of log-spaced curvatures ηλ in [1e-3, 4.5]")
    quad_steps: int = Field(100, ge=10, description="quadratic steps per unit of 2τ+1 (run length (2τ+1)·quad_steps)")
    quad_tol: float = Field(0.02, gt=0, description="(a), (b): relative tolerance on the measured quadratic threshold")
    beta: float = Field(0.9, ge=0, lt=1, description="heavy-ball momentum β of checks (b) and (e)")
    momentum_delays: list[int] = Field(default_factory=lambda: [1, 4], min_length=1, description="delays of the momentum quadratic runs")
    n: int = Field(20, ge=2, description="Chebyshev training points")
    width: int = Field(32, ge=1, description="width of the two tanh hidden layers")
    delays: list[int] = Field(default_factory=lambda: [0, 2, 4, 8], min_length=2, description="delays τ of the MLP runs")
    steps: int = Field(150, ge=10, description="full-batch steps of each MLP run")
    settle_steps: int = Field(300, ge=0, description="(c): extra steps (beyond ``steps``) of the run at settle_fraction·η*")
    settle_fraction: float = Field(0.5, gt=0, le=1, description="(c): that run's step as a fraction of the largest stable η")
    eta_lo: float = Field(1e-3, gt=0, description="bisection bracket: lowest η")
    eta_hi: float = Field(4.0, gt=0, description="bisection bracket: highest η")
    rtol: float = Field(0.1, gt=0, description="bisection stops when the bracket's ratio is below 1 + rtol")
    momentum_delay: int = Field(4, ge=1, description="(e): delay at which momentum is compared")
    sharp_tol: float = Field(0.15, ge=0, description="(c): allowed excess of λ_max·η over the delayed threshold")
    exponent_tol: float = Field(0.25, gt=0, description="(d): allowed distance of the fitted exponent from the threshold's")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {"quad_delays": [0, 1, 2, 4, 8], "quad_grid": 400, "momentum_delays": [1, 4], "delays": [0, 2, 8],
                      "momentum_delay": 2, "steps": 120, "settle_steps": 200, "rtol": 0.15, "eta_lo": 0.005, "eta_hi": 2.0},
            "full": {
                "quad_delays": [0, 1, 2, 3, 4, 5, 6, 7, 8],
                "quad_grid": 1500,
                "quad_steps": 200,
                "momentum_delays": [1, 2, 4, 8],
                "width": 64,
                "delays": [0, 1, 2, 4, 8, 16, 32],
                "steps": 600,
                "settle_steps": 2000,
                "rtol": 0.03,
            },
        }


def quadratic_threshold(tau: int, beta: float, grid: int, steps: int) -> float:
    """Largest ηλ on a log grid for which delayed SGD on ½Σλ_k x_k² (η = 1) shrinks x_k from 1
    (history all 1) after ``steps`` steps: the measured stability threshold."""
    a = torch.logspace(-3, math.log10(4.5), grid, dtype=torch.float64)
    x = torch.ones_like(a, requires_grad=True)
    opt = make_optimizer("delayed-sgd", [x], lr=1.0, delay=tau, momentum=beta)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * (a * x * x).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    xf = x.detach()
    bad = ~torch.isfinite(xf) | (xf.abs() >= 1.0)
    first = int(torch.nonzero(bad)[0]) if bool(bad.any()) else grid
    return float(a[first - 1]) if first > 0 else 0.0


def _train_delayed(model: torch.nn.Module, data, eta: float, tau: int, beta: float, steps: int) -> tuple[bool, float, float]:
    """Full-batch delayed SGD; returns (diverged, initial loss, final loss)."""
    x, y = data
    opt = make_optimizer("delayed-sgd", model.parameters(), lr=eta, delay=tau, momentum=beta)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = half_squared_loss(model(x), y)
        loss.backward()
        return loss.detach()

    with torch.no_grad():
        start = float(half_squared_loss(model(x), y))
    for _ in range(steps):
        loss = float(opt.step(closure))
        if not math.isfinite(loss) or loss > 1e6 * start:
            return True, start, loss
    with torch.no_grad():
        end = float(half_squared_loss(model(x), y))
    return (not math.isfinite(end)) or end >= start, start, end


class AsyncDelay(Experiment):
    name = "async-delay"
    title = "Asynchronous training: the stable step falls as 1/τ with the gradient delay τ; momentum lowers it"
    paper = PAPER
    notes = {
        "(a) quadratic: delayed GD is stable iff": (
            "the delay-recurrence threshold: on a diagonal quadratic with log-spaced curvatures, the largest stable ηλ of DelayedSGD at each τ against 2 sin(π/(2(2τ+1))), within ±quad_tol (2%) relative",
            "a run too short to see slow divergence near the threshold, or a curvature grid too coarse (its spacing is in the tolerance column)",
            "more quad_steps or a finer quad_grid"),
        "(b) quadratic: heavy-ball": (
            "with heavy-ball momentum β on stale gradients, the measured threshold matches the delayed heavy-ball root condition within ±2% and is below the β = 0 threshold at every τ tested",
            "a mismatch between DelayedSGD's momentum update and the recurrence the root condition assumes; too short runs near the boundary",
            "more quad_steps; check genlab.theory.thresholds.delayed_momentum_step_threshold against the optimizer's update"),
        "each bisection brackets the divergence boundary": (
            "precondition: at every τ the bisection found a stable and a diverging η inside [eta_lo, eta_hi], and the momentum comparison run has a sharpness",
            "a bracket too narrow (everything diverges or nothing does)",
            "widen eta_lo/eta_hi"),
        "(c) MLP: delayed GD ends at a minimum whose sharpness": (
            "that a run at settle_fraction (0.5)·η* ends with λ_max·η at most (1 + sharp_tol) = 1.15 times the delayed threshold 2 sin(π/(2(2τ+1)))",
            "edge-of-stability overshoot above 15%, or a run not yet near a minimum (loss still high)",
            "more settle_steps, or --full"),
        "(d) MLP: the largest stable η falls as 1/τ": (
            "the exponent b of η* ∝ τ^b fitted over τ ≥ 2 against the threshold's own exponent over those τ (≈ −1), |b − b_theory| ≤ exponent_tol (0.25)",
            "bisection brackets too wide (rtol) at few delays, or the MLP's sharpness changing with η so η* does not scale as the threshold",
            "smaller rtol, more delays (--full)"),
        "(e) MLP: momentum": (
            "that with momentum β at τ = momentum_delay the largest stable η is below that without: the two bisection brackets must be disjoint",
            "overlapping brackets (rtol too coarse for the gap) or momentum not lowering the threshold on this network",
            "smaller rtol; a larger β"),
    }
    captions = {"async_delay.png": "Left: largest stable ηλ on the quadratic against delay τ, measured (dots, squares with momentum) against 2 sin(π/(2(2τ+1))) and the heavy-ball root condition (claims a, b). Right: MLP largest stable η bisection brackets against τ with the threshold shape at a fitted scale (claim d)."}
    Config = AsyncDelayConfig

    def _mlp_search(self, config: AsyncDelayConfig, data, tau: int, beta: float) -> dict[str, Any]:
        def diverges(eta: float) -> bool:
            model = mlp(1, [config.width, config.width], 1, activation="tanh", seed=config.seed)
            return _train_delayed(model, data, eta, tau, beta, config.steps)[0]

        s = largest_stable_step(diverges, config.eta_lo, config.eta_hi, rtol=config.rtol)
        out: dict[str, Any] = {"tau": tau, "beta": beta, "stable": s.stable, "unstable": s.unstable, "evaluations": s.evaluations}
        if s.stable > 0:  # (c): a run at a fraction of η*, long enough to reach a minimum
            eta_c = config.settle_fraction * s.stable
            model = mlp(1, [config.width, config.width], 1, activation="tanh", seed=config.seed)
            diverged, start, end = _train_delayed(model, data, eta_c, tau, beta, config.steps + config.settle_steps)
            out.update(eta_c=eta_c, settle_diverged=diverged and not math.isfinite(end), start_loss=start, final_loss=end)
            if math.isfinite(end):
                out["sharpness"] = hessian_eigenvalues(model, half_squared_loss, data, tol=1e-4, seed=config.seed).top
        return out

    def run(self, config: AsyncDelayConfig, recorder: Any) -> Result:
        torch_dtype = torch.float32
        quad = []
        quad_mom = []
        total = len(config.quad_delays) + len(config.momentum_delays) + len(config.delays) + 1
        with recorder.progress(self.name, total) as bar:
            for tau in config.quad_delays:
                m = quadratic_threshold(tau, 0.0, config.quad_grid, config.quad_steps * (2 * tau + 1))
                quad.append({"tau": tau, "measured": m, "predicted": delayed_gd_step_threshold(tau)})
                recorder.log_many({"quad_threshold": m}, tau)
                bar.advance(1)
            for tau in config.momentum_delays:
                m = quadratic_threshold(tau, config.beta, config.quad_grid, config.quad_steps * (2 * tau + 1))
                m0 = next((q["measured"] for q in quad if q["tau"] == tau), None)
                if m0 is None:
                    m0 = quadratic_threshold(tau, 0.0, config.quad_grid, config.quad_steps * (2 * tau + 1))
                quad_mom.append({"tau": tau, "measured": m, "measured_no_momentum": m0,
                                 "predicted": delayed_momentum_step_threshold(tau, config.beta)})
                recorder.log_many({"quad_momentum_threshold": m}, tau)
                bar.advance(1)
            xs, ys = chebyshev_regression(config.n, 3)
            data = (torch.tensor(xs, dtype=torch_dtype), torch.tensor(ys, dtype=torch_dtype))
            init = mlp(1, [config.width, config.width], 1, activation="tanh", seed=config.seed)
            lam0 = hessian_eigenvalues(init, half_squared_loss, data, tol=1e-4, seed=config.seed).top
            searches = []
            for tau in config.delays:
                r = self._mlp_search(config, data, tau, 0.0)
                searches.append(r)
                recorder.log_many({"largest_stable_eta": r["stable"]}, tau)
                bar.advance(1)
            mom = self._mlp_search(config, data, config.momentum_delay, config.beta)
            plain = next((r for r in searches if r["tau"] == config.momentum_delay), None)
            if plain is None:
                plain = self._mlp_search(config, data, config.momentum_delay, 0.0)
            bar.advance(1)
        return {"quadratic": quad, "quadratic_momentum": quad_mom, "lambda0": lam0, "mlp": searches,
                "mlp_momentum": mom, "mlp_no_momentum": plain}

    # -- checks ------------------------------------------------------------------------------------
    @staticmethod
    def fit_exponent(rows: list[dict[str, Any]]) -> dict[str, float]:
        """Slope of log η* on log τ over the rows (τ ≥ 2, closed brackets): point estimate from the
        bracket midpoints, interval from the most extreme slopes the brackets allow."""
        taus = np.array([r["tau"] for r in rows], dtype=float)
        fit = bracket_power_law(taus, np.array([r["stable"] for r in rows]), np.array([r["unstable"] for r in rows]))
        fit["theory"] = float(np.polyfit(np.log(taus), np.log([delayed_gd_step_threshold(int(t)) for t in taus]), 1)[0])
        return fit

    def checks(self, config: AsyncDelayConfig, result: Result) -> list[Verdict]:
        out: list[Verdict] = []
        q = result["quadratic"]
        errs = [abs(r["measured"] / r["predicted"] - 1) for r in q]
        out.append(Verdict(
            claim="(a) quadratic: delayed GD is stable iff ηλ < 2 sin(π/(2(2τ+1)))",
            predicted="measured largest stable ηλ = " + ", ".join(f"τ={r['tau']}: {r['predicted']:.4f}" for r in q),
            measured=", ".join(f"τ={r['tau']}: {r['measured']:.4f}" for r in q),
            tolerance=f"±{config.quad_tol:.0%} relative (grid spacing {100 * (4500 ** (1 / (config.quad_grid - 1)) - 1):.2f}%)",
            passed=all(e <= config.quad_tol for e in errs), paper=PAPER))
        qm = result["quadratic_momentum"]
        out.append(Verdict(
            claim=f"(b) quadratic: heavy-ball β = {config.beta:g} on stale gradients is stable below the root-condition threshold, "
                  "which is lower than without momentum",
            predicted="measured threshold = " + ", ".join(f"τ={r['tau']}: {r['predicted']:.4f}" for r in qm) + "; below the β = 0 value",
            measured=", ".join(f"τ={r['tau']}: {r['measured']:.4f} (β = 0: {r['measured_no_momentum']:.4f})" for r in qm),
            tolerance=f"±{config.quad_tol:.0%} relative",
            passed=all(abs(r["measured"] / r["predicted"] - 1) <= config.quad_tol and r["measured"] < r["measured_no_momentum"] for r in qm),
            paper=PAPER))
        rows = result["mlp"]
        closed = [r for r in rows if math.isfinite(r["unstable"]) and r["stable"] > 0]
        out.append(Verdict(
            claim="MLP: each bisection brackets the divergence boundary inside [eta_lo, eta_hi]",
            predicted="a stable and a diverging η found at every τ",
            measured=", ".join(f"τ={r['tau']}: [{r['stable']:.4g}, {r['unstable']:.4g}]" for r in rows),
            tolerance="exact", passed=len(closed) == len(rows) and "sharpness" in result["mlp_momentum"], paper=PAPER, kind="precondition"))
        with_sharp = [r for r in closed if "sharpness" in r]
        lam0 = result["lambda0"]
        ratios = [(r, r["sharpness"] * r["eta_c"] / delayed_gd_step_threshold(r["tau"])) for r in with_sharp]
        out.append(Verdict(
            claim="(c) MLP: delayed GD ends at a minimum whose sharpness is below the delayed threshold 2 sin(π/(2(2τ+1)))/η",
            predicted=f"at η = {config.settle_fraction:g}·η*: λ_max·η / (2 sin(π/(2(2τ+1)))) ≤ 1 + {config.sharp_tol:g}",
            measured=", ".join(
                f"τ={r['tau']}: {x:.3f} (at init {lam0 * r['eta_c'] / delayed_gd_step_threshold(r['tau']):.2f}; loss "
                f"{r['start_loss']:.3g} → {r['final_loss']:.3g})"
                for r, x in ratios
            ) or "no stable run",
            tolerance=f"+{config.sharp_tol:g} (edge-of-stability overshoot)",
            passed=bool(ratios) and all(x <= 1 + config.sharp_tol for _, x in ratios), paper=PAPER))
        big = [r for r in closed if r["tau"] >= 2]
        if len(big) >= 2:
            fit = self.fit_exponent(big)
            out.append(Verdict(
                claim="(d) MLP: the largest stable η falls as 1/τ at large τ",
                predicted=f"exponent of η* ∝ τ^b: b = {fit['theory']:.2f} (the threshold's own over τ = "
                          f"{', '.join(str(r['tau']) for r in big)}; → −1 as τ grows)",
                measured=f"b = {fit['slope']:.2f} (bracket-propagated interval [{fit['low']:.2f}, {fit['high']:.2f}]); η* = "
                         + ", ".join(f"τ={r['tau']}: {math.sqrt(r['stable'] * r['unstable']):.4g}" for r in big),
                tolerance=f"|b − b_theory| ≤ {config.exponent_tol:g}",
                passed=abs(fit["slope"] - fit["theory"]) <= config.exponent_tol, paper=PAPER))
        mom, plain = result["mlp_momentum"], result["mlp_no_momentum"]
        pred_ratio = delayed_momentum_step_threshold(config.momentum_delay, config.beta) / delayed_gd_step_threshold(config.momentum_delay)
        out.append(Verdict(
            claim=f"(e) MLP: momentum β = {config.beta:g} lowers the largest stable η at delay τ = {config.momentum_delay}",
            predicted=f"η*(β) < η*(0) (quadratic ratio {pred_ratio:.3f})",
            measured=f"η*(β) ∈ [{mom['stable']:.4g}, {mom['unstable']:.4g}], η*(0) ∈ [{plain['stable']:.4g}, {plain['unstable']:.4g}]",
            tolerance="brackets disjoint", passed=mom["unstable"] <= plain["stable"], paper=PAPER))
        return out

    def figures(self, config: AsyncDelayConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        tt = np.arange(0, max(max(config.quad_delays), max(config.delays)) + 1)
        ax1.plot(tt, [delayed_gd_step_threshold(int(t)) for t in tt], "k--", lw=0.8, label="2 sin(π/(2(2τ+1)))")
        ax1.plot([r["tau"] for r in result["quadratic"]], [r["measured"] for r in result["quadratic"]], "o", label="measured, β = 0")
        tm = sorted(set(tt) | set(config.momentum_delays))
        ax1.plot(tm, [delayed_momentum_step_threshold(int(t), config.beta) for t in tm], ":", color="tab:red", lw=0.8, label=f"root condition, β = {config.beta:g}")
        ax1.plot([r["tau"] for r in result["quadratic_momentum"]], [r["measured"] for r in result["quadratic_momentum"]], "s", color="tab:red", label=f"measured, β = {config.beta:g}")
        ax1.set_yscale("log")
        ax1.set_xlabel("delay τ")
        ax1.set_ylabel("largest stable ηλ")
        ax1.set_title("Quadratic: threshold vs delay", fontsize=9)
        ax1.legend(fontsize=7)
        rows = [r for r in result["mlp"] if r["tau"] >= 1 and math.isfinite(r["unstable"]) and r["stable"] > 0]
        if rows:
            taus = np.array([r["tau"] for r in rows])
            lo = np.array([r["stable"] for r in rows])
            hi = np.array([r["unstable"] for r in rows])
            ax2.errorbar(taus, np.sqrt(lo * hi), yerr=[np.sqrt(lo * hi) - lo, hi - np.sqrt(lo * hi)], fmt="o", label="measured η* (bracket)")
            scale = np.exp(np.mean(np.log(np.sqrt(lo * hi)) - np.log([delayed_gd_step_threshold(int(t)) for t in taus])))
            ts = np.linspace(1, taus.max(), 100)
            ax2.plot(ts, scale * 2 * np.sin(np.pi / (2 * (2 * ts + 1))), "k--", lw=0.8, label="∝ 2 sin(π/(2(2τ+1))) (fitted scale)")
            ax2.set_xscale("log")
            ax2.set_yscale("log")
        ax2.set_xlabel("delay τ")
        ax2.set_ylabel("largest stable η")
        ax2.set_title("MLP (full batch): largest stable step vs delay", fontsize=9)
        ax2.legend(fontsize=7)
        fig.tight_layout()
        return {"async_delay.png": fig}


EXPERIMENT = AsyncDelay()
