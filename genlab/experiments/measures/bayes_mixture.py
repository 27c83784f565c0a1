"""bayes-mixture: the regret of a Bayesian mixture is set by the prior weight near the truth, not by
the size of the hypothesis class; an SGLD ensemble approximates the mixture.

The "universality lens" paper of 2025 named in issue 18 (its authors and arXiv id were not
verified in this session) reads generalization through the Bayesian mixture; the bound it builds on
is classical: for data y₁…y_n drawn from p_θ*, the mixture p_π(yⁿ) = Σ_θ π(θ) p_θ(yⁿ) has expected
cumulative log-loss regret R_n = E[log p_θ*(yⁿ) − log p_π(yⁿ)] ≤ min_ε [−log π(B_ε) + n·ε], with
B_ε = {θ : KL(p_θ* ‖ p_θ) ≤ ε} (Barron 1998, "Information-theoretic characterization of Bayes
performance and the choice of priors in parametric and nonparametric problems", Bayesian Statistics
6, the "index of resolvability"; for θ* in a finite class, R_n ≤ −log π(θ*)). Setup: Bernoulli
hypotheses, truth θ* = ``theta_star``, exact mixtures by enumeration, regret averaged over
``sequences`` random sequences at each n in ``ns``:

- A: 10 hypotheses, π(θ*) = 0.1, the other 9 spread on [0.6, 0.99];
- B: 1000 hypotheses, π(θ*) = 0.1, the other 999 on [0.6, 0.99] (same weight near the truth, 100× the class);
- C: A's hypotheses with π(θ*) = 0.001 (less weight near the truth, same class);
- D: 1000 hypotheses evenly spaced on (0, 1), uniform prior (θ* near but not on the grid).

Claims: R_n(B) ≈ R_n(A) at the largest n (class size does not set regret; the alternative predicts
a difference of log 100 = 4.6 nats); R_n(C) − R_n(A) ≈ log(0.1/0.001) = 4.6 nats (prior weight
does); R_n(D) stays below Barron's bound at every n and below log|Θ|. Tolerance ``tol_nats``.
Second part: a logistic model p(y=1|x) = σ(w·x + b) on ``n_logistic`` points with prior N(0, I);
the exact posterior predictive by quadrature on a 2-D grid, against an SGLD ensemble
(``chains`` chains, step ``sgld_step``, temperature 1); claim: their test log-loss agrees within
``tol_logloss`` nats; precondition: split-R̂ < 1.1 (across-chain spread reported).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field
from scipy.special import logsumexp

from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments.measures._suite import figure_style
from genlab.train.samplers import sgld

PAPER = "Barron 1998 (Bayesian Statistics 6) index of resolvability; the 2025 universality-lens paper of issue 18"


class BayesMixtureConfig(ExperimentConfig):
    theta_star: float = Field(0.3, gt=0.01, lt=0.59, description="true Bernoulli parameter")
    ns: PositiveInts = Field(default_factory=lambda: [10, 30, 100, 300, 1000], description="sequence lengths")
    sequences: int = Field(200, ge=10, description="random sequences averaged per n")
    tol_nats: float = Field(0.5, gt=0, description="allowed deviation of the regret comparisons, nats")
    n_logistic: int = Field(20, ge=2, description="training points of the logistic SGLD comparison")
    chains: int = Field(4, ge=2, le=64, description="SGLD chains")
    sgld_step: float = Field(0.01, gt=0, le=1, description="SGLD step size η")
    sgld_steps: int = Field(4000, ge=100, description="SGLD steps per chain (first quarter discarded)")
    tol_logloss: float = Field(0.02, gt=0, description="allowed |log-loss(SGLD) − log-loss(exact)|, nats")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"ns": [10, 30, 100, 300, 1000, 3000, 10000], "sequences": 1000, "sgld_steps": 20000,
                                      "chains": 8, "n_logistic": 50}}


def _classes(ts: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    far9, far999 = np.linspace(0.6, 0.99, 9), np.linspace(0.6, 0.99, 999)
    grid = (np.arange(1000) + 0.5) / 1000
    return {
        "A": (np.r_[ts, far9], np.r_[0.1, np.full(9, 0.1)]),
        "B": (np.r_[ts, far999], np.r_[0.1, np.full(999, 0.9 / 999)]),
        "C": (np.r_[ts, far9], np.r_[0.001, np.full(9, 0.999 / 9)]),
        "D": (grid, np.full(1000, 1e-3)),
    }


def bernoulli_kl(p: float, q: np.ndarray) -> np.ndarray:
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def resolvability_bound(ts: float, thetas: np.ndarray, prior: np.ndarray, n: int) -> float:
    """min over ε of −log π(B_ε) + n·ε, ε ranging over the class's KL values (Barron 1998)."""
    kl = bernoulli_kl(ts, thetas)
    order = np.argsort(kl)
    mass = np.cumsum(prior[order])
    return float(np.min(-np.log(mass) + n * kl[order]))


def mixture_regret(ts: float, thetas: np.ndarray, prior: np.ndarray, ns: list[int], m: int, seed: int) -> np.ndarray:
    """E[log p_θ*(yⁿ) − log p_π(yⁿ)] at each n by Monte Carlo over m sequences (exact mixtures)."""
    rng = np.random.default_rng(seed)
    y = rng.random((m, max(ns))) < ts
    out = []
    for n in ns:
        s = y[:, :n].sum(1)[:, None]
        ll = s * np.log(thetas) + (n - s) * np.log1p(-thetas)  # m × K
        star = s[:, 0] * math.log(ts) + (n - s[:, 0]) * math.log(1 - ts)
        out.append(float(np.mean(star - logsumexp(ll + np.log(prior), axis=1))))
    return np.array(out)


def _logistic_part(config: BayesMixtureConfig) -> dict[str, Any]:
    g = np.random.default_rng(config.seed + 1)
    w_true, b_true = 2.0, -0.5
    x = g.standard_normal(config.n_logistic)
    y = (g.random(config.n_logistic) < 1 / (1 + np.exp(-(w_true * x + b_true)))).astype(float)
    xt = np.linspace(-3, 3, 61)
    # exact posterior predictive by quadrature on a grid (prior N(0, I))
    w = np.linspace(-6, 8, 281)
    W, B = np.meshgrid(w, w, indexing="ij")
    z = W[..., None] * x + B[..., None]
    logpost = (y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)).sum(-1) - 0.5 * (W**2 + B**2)
    post = np.exp(logpost - logpost.max())
    post /= post.sum()
    pt = 1 / (1 + np.exp(-(W[..., None] * xt + B[..., None])))
    p_exact = np.tensordot(post, pt, axes=([0, 1], [0, 1]))
    # SGLD ensemble on U(θ) = −log posterior, θ = (w, b)
    xt_t, xx, yy = torch.tensor(xt), torch.tensor(x), torch.tensor(y)

    def grad_u(th: torch.Tensor) -> torch.Tensor:
        zz = th[:, :1] * xx + th[:, 1:]
        r = torch.sigmoid(zz) - yy  # d(−loglik)/dz
        return torch.stack([(r * xx).sum(1), r.sum(1)], 1) + th

    g0 = torch.Generator().manual_seed(config.seed)
    th0 = torch.randn(config.chains, 2, generator=g0, dtype=torch.float64) * 2
    res = sgld(grad_u, th0, config.sgld_step, 1.0, config.sgld_steps, burn_in=config.sgld_steps // 4, seed=config.seed)
    s = res.samples.reshape(-1, 2)
    p_sgld = torch.sigmoid(s[:, :1] * xt_t + s[:, 1:]).mean(0).numpy()
    # test log-loss of each predictive under the true labelling distribution at the test inputs
    p_true = 1 / (1 + np.exp(-(w_true * xt + b_true)))

    def logloss(p: np.ndarray) -> float:
        return float(np.mean(-(p_true * np.log(p) + (1 - p_true) * np.log(1 - p))))

    return {"x_test": xt.tolist(), "p_exact": p_exact.tolist(), "p_sgld": p_sgld.tolist(), "logloss_exact": logloss(p_exact),
            "logloss_sgld": logloss(p_sgld), "rhat": res.rhat.tolist(), "ess": res.ess.tolist(),
            "chain_mean_sd": res.chain_mean_sd.tolist(), "step": config.sgld_step}


class BayesMixture(Experiment):
    name = "bayes-mixture"
    title = "Bayesian-mixture regret follows the prior weight near the truth, not the class size"
    paper = PAPER
    notes = {
        "class size does not set": ("that a 100× larger class with the same prior weight at the truth has the same regret", "finite n", "larger ns"),
        "prior weight near the truth sets": ("regret grows by −log of the prior-weight ratio", "finite n (the far hypotheses not yet excluded)", "larger ns"),
        "Barron's bound": ("the index-of-resolvability bound on the expected regret", "Monte Carlo noise", "more sequences"),
        "SGLD ensemble": ("that an SGLD ensemble approximates the exact Bayesian predictive", "step-size bias or too few steps", "smaller sgld_step, more sgld_steps"),
        "chains agree": ("that the SGLD chains mixed (across-chain spread)", "too few steps", "more sgld_steps"),
    }
    captions = {"regret.png": "Mixture regret against n for classes A–D (solid) with −log π(θ*) and Barron's bound (dashed); right: exact vs SGLD predictive: all claims."}
    Config = BayesMixtureConfig

    def run(self, config: BayesMixtureConfig, recorder: Any) -> Result:
        out: dict[str, Any] = {"ns": list(config.ns), "classes": {}}
        for name, (th, pr) in _classes(config.theta_star).items():
            r = mixture_regret(config.theta_star, th, pr, list(config.ns), config.sequences, config.seed)
            bound = [resolvability_bound(config.theta_star, th, pr, n) for n in config.ns]
            out["classes"][name] = {"regret": r.tolist(), "bound": bound, "size": int(th.size),
                                    "log_prior_star": float(np.log(pr[np.argmin(np.abs(th - config.theta_star))]))}
            for n, v in zip(config.ns, r):
                recorder.log(f"regret/{name}", float(v), n)
        out["logistic"] = _logistic_part(config)
        return out

    def checks(self, config: BayesMixtureConfig, result: Result) -> list[Verdict]:
        c = result["classes"]
        n = result["ns"][-1]
        rA, rB, rC, rD = (c[k]["regret"][-1] for k in "ABCD")
        tol = config.tol_nats
        pred_c = c["A"]["log_prior_star"] - c["C"]["log_prior_star"]
        over = [(k, nn, r, b) for k in "ABCD" for nn, r, b in zip(result["ns"], c[k]["regret"], c[k]["bound"]) if r > b + 0.05]
        lg = result["logistic"]
        rhat = max(lg["rhat"])
        return [
            Verdict(claim="class size does not set the regret: 100× more hypotheses, same prior weight at the truth",
                    predicted=f"|R_n(B) − R_n(A)| ≤ {tol:g} nats at n = {n} (class-size view: log 100 = 4.61)",
                    measured=f"R(A) = {rA:.3f}, R(B) = {rB:.3f}, difference {rB - rA:+.3f}",
                    tolerance=f"{tol:g} nats", paper=PAPER, passed=bool(abs(rB - rA) <= tol)),
            Verdict(claim="prior weight near the truth sets the regret: R_n(C) − R_n(A) = log π_A(θ*)/π_C(θ*)",
                    predicted=f"{pred_c:.3f} nats at n = {n}",
                    measured=f"R(C) − R(A) = {rC - rA:.3f}",
                    tolerance=f"{tol:g} nats", paper=PAPER, passed=bool(abs(rC - rA - pred_c) <= tol)),
            Verdict(claim="the dense class's regret stays below Barron's bound and far below log|Θ|",
                    predicted=f"R_n ≤ min_ε[−log π(B_ε) + nε] (+0.05 Monte Carlo slack) at every n and class; R_n(D) < log 1000 − 1 = {math.log(1000) - 1:.2f}",
                    measured=("no n above the bound" if not over else "above: " + ", ".join(f"{k} n={nn}: {r:.2f} > {b:.2f}" for k, nn, r, b in over))
                             + f"; R(D) at n = {n}: {rD:.3f} (bound {c['D']['bound'][-1]:.3f})",
                    tolerance="0.05 nats Monte Carlo slack", paper=PAPER, passed=bool(not over and rD < math.log(1000) - 1)),
            Verdict(claim="SGLD chains agree (across-chain spread)",
                    predicted="split-R̂ < 1.1 for w and b",
                    measured=f"R̂ = {', '.join(f'{v:.3f}' for v in lg['rhat'])}; ESS = {', '.join(f'{v:.0f}' for v in lg['ess'])}; "
                             f"sd of chain means {', '.join(f'{v:.3f}' for v in lg['chain_mean_sd'])}",
                    tolerance="1.1", paper=PAPER, kind="precondition", passed=bool(rhat < 1.1)),
            Verdict(claim="an SGLD ensemble's predictive log-loss matches the exact Bayesian mixture's",
                    predicted=f"|log-loss(SGLD) − log-loss(exact quadrature)| ≤ {config.tol_logloss:g} nats",
                    measured=f"SGLD {lg['logloss_sgld']:.4f}, exact {lg['logloss_exact']:.4f} (step η = {lg['step']:g}, T = 1)",
                    tolerance=f"{config.tol_logloss:g} nats", paper=PAPER,
                    passed=bool(abs(lg["logloss_sgld"] - lg["logloss_exact"]) <= config.tol_logloss)),
        ]

    def figures(self, config: BayesMixtureConfig, result: Result) -> dict[str, Any]:
        plt = figure_style()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        ax = axes[0]
        for k, v in result["classes"].items():
            line, = ax.plot(result["ns"], v["regret"], marker="o", label=f"{k}: |Θ| = {v['size']}")
            ax.plot(result["ns"], v["bound"], "--", color=line.get_color(), lw=0.8)
            ax.axhline(-v["log_prior_star"], ls=":", color=line.get_color(), lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("regret (nats)")
        ax.legend(fontsize=7)
        lg = result["logistic"]
        axes[1].plot(lg["x_test"], lg["p_exact"], "k-", label="exact mixture (quadrature)")
        axes[1].plot(lg["x_test"], lg["p_sgld"], "--", label="SGLD ensemble")
        axes[1].set_xlabel("x")
        axes[1].set_ylabel("p(y = 1 | x, data)")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        return {"regret.png": fig}


EXPERIMENT = BayesMixture()
