"""weight-alpha: does WeightWatcher's layer-averaged power-law exponent α rank test error across a zoo?

Martin & Mahoney 2021 ("Predicting trends in the quality of state-of-the-art neural networks without
access to training or testing data", Nat. Commun. 12, 4122, arXiv 2002.06716; "Implicit
self-regularization in deep neural networks", JMLR 22, arXiv 1810.01075, Sec. 5) fit a power law
p(λ) ∝ λ^{−α} to the tail of each layer's eigenvalue spectrum of WᵀW/N and claim that (1) a smaller
layer-averaged ᾱ goes with better test accuracy across models, and (2) α < 2 flags an over-trained,
over-fitting layer. WeightWatcher's own users question what α means (its issues #235, #307): genlab
tests the claim instead of repeating it. α is computed here (:mod:`genlab.probes.measures_alpha`,
Clauset et al. 2009 MLE with the KS choice of λ_min), on the zoo of
:mod:`genlab.experiments.measures._zoo`. Claim (1) passes if the bootstrap interval of Kendall
τ(ᾱ, test error) lies above 0; claim (2) if the interval of mean gap(ᾱ < 2) − mean gap(ᾱ ≥ 2) lies
above 0, tested only when both groups hold at least two models (otherwise the precondition fails).
The small layers of a CPU zoo (16–64 units in the quick zoo, 128–256 in the full one) give that
many eigenvalues per hidden layer, 40 in the first and 10 in the output layer: α is then noisy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab.experiments._base import Experiment, Result, Verdict
from genlab.experiments.measures._suite import ZooConfig, figure_style, table, zoo_rows
from genlab.theory.ranking import bootstrap, kendall_tau

PAPER = "Martin & Mahoney 2021, arXiv 2002.06716 (Nat. Commun.) and arXiv 1810.01075 (JMLR)"


class WeightAlphaConfig(ZooConfig):
    pass


class WeightAlpha(Experiment):
    name = "weight-alpha"
    title = "WeightWatcher's layer α against test error across a model zoo"
    paper = PAPER
    notes = {
        "layer-averaged α ranks test error": ("Martin & Mahoney: smaller ᾱ, better test accuracy across models",
                                              "small layers (noisy α) or a small zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "α < 2 flags": ("Martin & Mahoney: α < 2 marks over-trained layers", "no model with α < 2 in the zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "both sides of α = 2": ("that the zoo has models on both sides of α = 2, so claim (2) can be tested", "a zoo without heavy-tailed layers", "larger widths, longer training"),
    }
    captions = {"alpha.png": "Layer-averaged α against test error (left) and gap (right) for every model; the dashed line is α = 2: both claims."}
    Config = WeightAlphaConfig

    def run(self, config: WeightAlphaConfig, recorder: Any) -> Result:
        meas, gap, err, _ = table(zoo_rows(config, recorder))
        alpha = meas.get("layer_alpha", np.full(gap.size, np.nan))
        ok = np.isfinite(alpha)
        a, g, e = alpha[ok], gap[ok], err[ok]
        reps = config.bootstrap
        tau = bootstrap(lambda i: kendall_tau(a[i], e[i]), a.size, reps, seed=config.seed)

        def diff(i: np.ndarray) -> float:
            lo, hi = g[i][a[i] < 2], g[i][a[i] >= 2]
            return float(lo.mean() - hi.mean()) if lo.size and hi.size else float("nan")

        d = bootstrap(diff, a.size, reps, seed=config.seed)
        recorder.log_many({"tau_alpha_test_error": tau.value})
        return {"alpha": a.tolist(), "gap": g.tolist(), "test_error": e.tolist(), "tau": tau.as_list(),
                "diff": d.as_list(), "n_below": int((a < 2).sum()), "n_above": int((a >= 2).sum())}

    def checks(self, config: WeightAlphaConfig, result: Result) -> list[Verdict]:
        t, d = result["tau"], result["diff"]
        a = np.asarray(result["alpha"], float)
        rng = f"ᾱ in [{a.min():.2f}, {a.max():.2f}]" if a.size else "no finite ᾱ"
        return [
            Verdict(claim="layer-averaged α ranks test error across the zoo (smaller α, lower error)",
                    predicted="Kendall τ(ᾱ, test error) > 0, 95 % interval above 0",
                    measured=f"τ = {t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}] over {a.size} models; {rng}",
                    tolerance="bootstrap interval over models", paper=PAPER, passed=bool(t[1] > 0)),
            Verdict(claim="the zoo has models on both sides of α = 2",
                    predicted="≥ 2 models with ᾱ < 2 and ≥ 2 with ᾱ ≥ 2",
                    measured=f"{result['n_below']} below, {result['n_above']} at or above",
                    tolerance="none", paper=PAPER, kind="precondition",
                    passed=bool(result["n_below"] >= 2 and result["n_above"] >= 2)),
            Verdict(claim="α < 2 flags over-fitting models (larger generalization gap)",
                    predicted="mean gap(ᾱ < 2) − mean gap(ᾱ ≥ 2) > 0, 95 % interval above 0",
                    measured=f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]",
                    tolerance="bootstrap interval over models", paper=PAPER, passed=bool(d[1] > 0)),
        ]

    def figures(self, config: WeightAlphaConfig, result: Result) -> dict[str, Any]:
        plt = figure_style()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, key, lab in zip(axes, ("test_error", "gap"), ("test error", "generalization gap")):
            ax.scatter(result["alpha"], result[key], s=14)
            ax.axvline(2.0, ls="--", color="r", lw=1, label="α = 2 (WeightWatcher's over-fitting threshold)")
            ax.set_xlabel("layer-averaged power-law α")
            ax.set_ylabel(lab)
        axes[0].set_title(f"τ(ᾱ, test error) = {result['tau'][0]:+.2f} [{result['tau'][1]:+.2f}, {result['tau'][2]:+.2f}]", fontsize=9)
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        return {"alpha.png": fig}


EXPERIMENT = WeightAlpha()
