"""measures-ranking: which generalization measure predicts the generalization gap across a model zoo?

Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020 ("Fantastic generalization measures and where to
find them", arXiv 1912.02178, Secs. 6–7, Table 1) train a zoo over hyperparameter axes to a fixed
training loss and rank measures by Kendall τ with the generalization gap (Eq. 3), by the granulated
τ Ψ (Eqs. 4–5) and by the conditional mutual information K (Sec. 6.2). Headline findings checked
here, at MNIST-1D scale (the zoo of :mod:`genlab.experiments.measures._zoo`):

- flatness measures (PAC-Bayes and sharpness, plain and magnitude-aware) rank the gap better than
  norm-product measures (Sec. 7: "sharpness-based measures ... perform the best");
- the magnitude-aware PAC-Bayes flatness correlates positively with the gap (one of the paper's best);
- the spectral bound (Bartlett et al. 2017, "spec-orig") correlates negatively with the gap
  (Sec. 7: spectral-norm measures "perform poorly"; a negative τ in Table 1);
- the training-data-only pathway distance (Li, Fan & Zhou 2025, arXiv 2506.21551; adapted to ReLU
  activation patterns, see :mod:`genlab.probes.measures_pathways`) correlates positively with the gap.

Each claim passes only if its bootstrap interval (over models) excludes zero in the claimed
direction; a small zoo (the quick preset's 8 models) rarely does, and the verdict says so. τ is
reported oriented (× the sign each measure's source predicts, so higher = better). The CMI's
intervals use ``cmi_bootstrap`` resamples (50: its cost grows with pairs ×
conditioning sets; 10 in the quick preset). The quick preset's zoo (8 models, 100–300 signals) is a smoke test of the
protocol; its step size and batch (0.02, 100) were raised from (0.01, 50) to fit the CPU budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab.experiments._base import Experiment, Result, Verdict
from genlab.experiments.measures._suite import ZooConfig, figure_style, table, zoo_rows
from genlab.probes.measures_suite import EXPECTED_SIGN, FAMILIES
from genlab.theory.ranking import bootstrap, cmi_score, granulated_tau, kendall_tau, mean_interval

PAPER = "Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020, arXiv 1912.02178, Secs. 6–7"
LI = "Li, Fan & Zhou 2025, arXiv 2506.21551"


class RankingConfig(ZooConfig):
    pass


def _family_tau(meas: dict[str, np.ndarray], gap: np.ndarray, names: tuple[str, ...], idx: np.ndarray) -> float:
    vals = [EXPECTED_SIGN[k] * kendall_tau(meas[k][idx], gap[idx]) for k in names if k in meas]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


class MeasuresRanking(Experiment):
    name = "measures-ranking"
    title = "Which measure predicts the generalization gap? Jiang et al.'s protocol on an MNIST-1D zoo"
    paper = PAPER
    notes = {
        "flatness measures rank the gap better": ("Jiang et al. Sec. 7: sharpness/PAC-Bayes measures beat norm products",
                                                  "a small zoo (wide intervals) or a zoo whose gap is set by data size alone",
                                                  "on the quick zoo: build the zoo (README: genlab sweep zoo-model …) and rerun with --full --set zoo=mnist1d-zoo; on that zoo it is a measured failure"),
        "magnitude-aware PAC-Bayes": ("Jiang et al. Table 1: pacbayes.mag.flatness is among the best measures",
                                      "a small zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "spectral bound": ("Jiang et al. Sec. 7: spectral-norm based bounds correlate negatively", "a small zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "pathway distance": ("Li et al.: a training-data-only measure tracks generalization (adapted to ReLU patterns)",
                             "the adaptation (activation patterns are not MoE routes) or a small zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "zoo of models trained": ("that the zoo is in the protocol's regime: enough models at the criterion with different gaps",
                                  "models missing the training-loss criterion", "raise max_steps"),
    }
    captions = {"ranking.png": "Oriented Kendall τ of each measure with the gap (bars, 95 % bootstrap intervals) and "
                               "granulated Ψ (dots); the zero line is 'no prediction': all claims."}
    Config = RankingConfig

    def run(self, config: RankingConfig, recorder: Any) -> Result:
        rows = zoo_rows(config, recorder)
        meas, gap, err, axes = table(rows)
        out: dict[str, Any] = {"n_models": len(rows), "n_reached": int(gap.size), "gap": gap.tolist(), "measures": {}}
        reps = config.bootstrap
        for k, v in meas.items():
            s = EXPECTED_SIGN[k]
            tau = bootstrap(lambda idx, v=v: s * kendall_tau(v[idx], gap[idx]), gap.size, reps, seed=config.seed)
            psi, groups = granulated_tau(v, gap, axes) if axes else ({}, {})
            psi_all = [t for a in groups for t in groups[a]]
            psi_iv = mean_interval([s * t for t in psi_all], reps, seed=config.seed)
            k_iv = bootstrap(lambda idx, v=v: cmi_score(v[idx], gap[idx], {a: [axes[a][i] for i in idx] for a in axes})[0],
                             gap.size, config.cmi_bootstrap, seed=config.seed) if axes else None
            out["measures"][k] = {
                "tau": tau.as_list(),
                "psi": {a: s * p for a, p in psi.items()},
                "Psi": float(np.nanmean([s * p for p in psi.values()])) if psi and np.isfinite(list(psi.values())).any() else float("nan"),
                "psi_pooled": psi_iv.as_list(),
                "K": k_iv.as_list() if k_iv else [float("nan")] * 3,
            }
            recorder.log_many({f"tau/{k}": tau.value, f"K/{k}": out["measures"][k]["K"][0]})
        fam = {}
        for fname, names in FAMILIES.items():
            fam[fname] = bootstrap(lambda idx, names=names: _family_tau(meas, gap, names, idx), gap.size, reps, seed=config.seed).as_list()
        diff = bootstrap(lambda idx: _family_tau(meas, gap, FAMILIES["flatness"], idx) - _family_tau(meas, gap, FAMILIES["norm product"], idx),
                         gap.size, reps, seed=config.seed)
        out["families"] = fam
        out["flatness_minus_norm"] = diff.as_list()
        out["gap_spread"] = float(gap.std()) if gap.size else float("nan")
        return out

    def checks(self, config: RankingConfig, result: Result) -> list[Verdict]:
        ms = result["measures"]
        finite = [k for k, v in ms.items() if np.isfinite(v["tau"][0])]
        out = [Verdict(
            claim="zoo of models trained to the criterion, with different gaps, and ≥ 15 measures computed on each",
            predicted="≥ 8 models at the criterion, gap spread (sd) > 0.005, ≥ 15 measures with a finite τ",
            measured=f"{result['n_reached']} of {result['n_models']} models reached it; gap sd {result['gap_spread']:.4f}; "
                     f"{len(finite)} measures with finite τ",
            tolerance="none", paper=PAPER, kind="precondition",
            passed=bool(result["n_reached"] >= 8 and result["gap_spread"] > 0.005 and len(finite) >= 15))]
        d = result["flatness_minus_norm"]
        out.append(Verdict(
            claim="flatness measures rank the gap better than norm-product measures (mean oriented τ)",
            predicted="τ(flatness) − τ(norm products) > 0, 95 % interval above 0",
            measured=f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]; flatness {result['families']['flatness'][0]:+.3f}, "
                     f"norm products {result['families']['norm product'][0]:+.3f}",
            tolerance="bootstrap interval over models", paper=PAPER, passed=bool(d[1] > 0)))
        t = ms.get("pacbayes_mag_flatness", {}).get("tau", [np.nan] * 3)
        out.append(Verdict(
            claim="magnitude-aware PAC-Bayes flatness 1/σ'² correlates positively with the gap",
            predicted="τ > 0, 95 % interval above 0", measured=f"τ = {t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]",
            tolerance="bootstrap interval over models", paper=PAPER, passed=bool(t[1] > 0)))
        t = ms.get("log_spec_orig", {}).get("tau", [np.nan] * 3)
        out.append(Verdict(
            claim="the spectral bound (spec-orig) correlates negatively with the gap",
            predicted="raw τ < 0, 95 % interval below 0", measured=f"raw τ = {t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]",
            tolerance="bootstrap interval over models", paper=PAPER, passed=bool(t[2] < 0)))
        t = ms.get("pathway_distance", {}).get("tau", [np.nan] * 3)
        out.append(Verdict(
            claim="training-data-only pathway distance correlates positively with the gap",
            predicted="τ > 0, 95 % interval above 0", measured=f"τ = {t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]",
            tolerance="bootstrap interval over models", paper=LI, passed=bool(t[1] > 0)))
        by_tau = sorted(finite, key=lambda k: -ms[k]["tau"][0])
        by_k = sorted([k for k in finite if np.isfinite(ms[k]["K"][0])], key=lambda k: -ms[k]["K"][0])
        out.append(Verdict(
            claim="ranking of the measures",
            predicted="(a measured ranking)",
            measured="by oriented τ: " + ", ".join(f"{k} {ms[k]['tau'][0]:+.2f}" for k in by_tau[:6])
                     + "; by K: " + ", ".join(f"{k} {ms[k]['K'][0]:.3f}" for k in by_k[:4]),
            tolerance="none", paper=PAPER, kind="finding", passed=True))
        return out

    def figures(self, config: RankingConfig, result: Result) -> dict[str, Any]:
        plt = figure_style()
        ms = result["measures"]
        names = sorted(ms, key=lambda k: -np.nan_to_num(ms[k]["tau"][0], nan=-9))
        tau = np.array([ms[k]["tau"] for k in names], float)
        fig, ax = plt.subplots(figsize=(9, 4.5))
        y = np.arange(len(names))
        ax.barh(y, tau[:, 0], color="#4c72b0", label="oriented τ (95 % interval)")
        ax.errorbar(tau[:, 0], y, xerr=[tau[:, 0] - tau[:, 1], tau[:, 2] - tau[:, 0]], fmt="none", ecolor="k", lw=0.8)
        ax.plot([ms[k]["Psi"] for k in names], y, "o", color="#dd8452", ms=4, label="granulated Ψ")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("Kendall τ with the generalization gap × expected sign (> 0: predicts as claimed)")
        ax.set_title(f"{result['n_reached']} models at the training-loss criterion", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return {"ranking.png": fig}


EXPERIMENT = MeasuresRanking()
