"""no-uniform-tightness: no generalization measure is uniformly tight across an over-parameterized zoo.

Gastpar, Nachum, Shafer & Weinberger 2023 ("Fantastic generalization measures are nowhere to be
found", arXiv 2309.13658, Thms. 1–2): in the over-parameterized regime no bound that depends only
on the training set and the hypothesis (a "generalization measure") can be uniformly tight — for
some distribution the gap |bound − test error| stays large. genlab's empirical reading on one zoo
(a weaker, finite version of the theorem): for each bound-type measure μ, the best any affine
calibration a·μ + b can do uniformly over the zoo, t* = min_{a,b} max_i |a·μ_i + b − err_i| (a
linear program, exact), is compared with the tightness a uniform bound would need: twice the
largest binomial standard error of the measured test errors, 2·max_i sqrt(err_i(1 − err_i)/n_test)
(a bound cannot be asked to be tighter than the noise of the test error it bounds). The claim
passes if every measure's t* exceeds that tolerance. The calibration is the most favourable reading
of each measure (real bounds have no free a, b). As a finding, the uncalibrated PAC-Bayes bound
(McAllester 1999 in Maurer's form, err(Q) ≤ err̂(Q) + sqrt((KL + ln(2√m/δ))/(2m)), Gaussian prior at
the initialization and posterior at the weights with Jiang et al.'s σ', err̂(Q) ≤ train error + 0.1
by the σ' search, δ = 0.05; σ' chosen from data without a union bound, as Jiang et al. do) is
reported with its largest gap. Precondition: the zoo's test errors differ by more than that
tolerance (else any constant is "tight") and every model interpolates (train accuracy ≥ 0.99).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import linprog

from genlab.experiments._base import Experiment, Result, Verdict
from genlab.experiments.measures._suite import ZooConfig, figure_style, zoo_rows

PAPER = "Gastpar, Nachum, Shafer & Weinberger 2023, arXiv 2309.13658"
BOUND_MEASURES = ("log_pacbayes_bound", "pacbayes_flatness", "pacbayes_mag_flatness", "sharpness_flatness",
                  "log_spec_orig", "log_fro_over_margin", "log_spec_over_margin", "log_path_norm", "inverse_margin", "dist_fro")


def minimax_affine(mu: np.ndarray, err: np.ndarray) -> tuple[float, float, float]:
    """(t*, a, b) minimizing max_i |a·μ_i + b − err_i| (Chebyshev fit; linear program in a, b, t)."""
    n = mu.size
    scale = float(np.std(mu)) or 1.0
    z = (mu - mu.mean()) / scale
    A = np.vstack([np.column_stack([z, np.ones(n), -np.ones(n)]), np.column_stack([-z, -np.ones(n), -np.ones(n)])])
    bub = np.concatenate([err, -err])
    res = linprog([0, 0, 1], A_ub=A, b_ub=bub, bounds=[(None, None), (None, None), (0, None)], method="highs")
    a, b, t = res.x
    return float(t), float(a / scale), float(b - a * mu.mean() / scale)


def pac_bayes_error_bound(train_err: float, dist_sq: float, sigma: float, m: int, delta: float = 0.05) -> float:
    """McAllester/Maurer PAC-Bayes bound on the Gibbs error with KL = ‖w − w⁰‖²/(2σ²) (isotropic Gaussians)."""
    kl = dist_sq / (2 * sigma**2)
    return train_err + 0.1 + math.sqrt((kl + math.log(2 * math.sqrt(m) / delta)) / (2 * m))


class NoUniformTightnessConfig(ZooConfig):
    pass


class NoUniformTightness(Experiment):
    name = "no-uniform-tightness"
    title = "No generalization measure is uniformly tight over the zoo"
    paper = PAPER
    notes = {
        "no bound-type measure is uniformly tight": ("Gastpar et al.: no data-and-hypothesis measure is uniformly tight when over-parameterized",
                                                     "a zoo whose test errors barely differ", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
        "test errors differ": ("that the zoo can tell a tight measure from a constant", "a small zoo", "on the quick zoo: rerun with --full --set zoo=mnist1d-zoo (the README's sweep); on that zoo it is a measured failure"),
    }
    captions = {"tightness.png": "Best uniform gap t* of each calibrated measure (bars) against the tolerance a uniformly tight bound would need (dashed): the claim."}
    Config = NoUniformTightnessConfig

    def run(self, config: NoUniformTightnessConfig, recorder: Any) -> Result:
        rows = [r for r in zoo_rows(config, recorder) if r["measures"]]
        err = np.array([r["metrics"]["test_error"] for r in rows], float)
        se = np.sqrt(err * (1 - err) / np.array([r["metrics"]["n_test"] for r in rows], float))
        out: dict[str, Any] = {"test_error": err.tolist(), "tolerance": float(2 * se.max()) if se.size else float("nan"),
                               "train_acc_min": min((r["metrics"]["train_acc"] for r in rows), default=float("nan")), "measures": {}}
        for k in BOUND_MEASURES:
            mu = np.array([r["measures"].get(k, np.nan) for r in rows], float)
            if mu.size >= 3 and np.isfinite(mu).all():
                t, a, b = minimax_affine(mu, err)
                out["measures"][k] = {"t": t, "a": a, "b": b}
                recorder.log(f"tstar/{k}", t)
        bound = [pac_bayes_error_bound(1 - r["metrics"]["train_acc"], r["dist_all_sq"], r["measures"]["pacbayes_flatness"] ** -0.5,
                                       int(r["metrics"]["n_train"])) for r in rows if "dist_all_sq" in r]
        out["pac_bayes_bound"] = bound
        out["pac_bayes_max_gap"] = float(np.max(np.abs(np.array(bound) - err[: len(bound)]))) if bound else float("nan")
        return out

    def checks(self, config: NoUniformTightnessConfig, result: Result) -> list[Verdict]:
        tol = result["tolerance"]
        err = np.asarray(result["test_error"], float)
        ms = result["measures"]
        spread = float(err.max() - err.min()) if err.size else float("nan")
        tightest = min(ms, key=lambda k: ms[k]["t"]) if ms else ""
        b = np.asarray(result["pac_bayes_bound"], float)
        return [
            Verdict(claim="zoo is over-parameterized and its test errors differ by more than the tolerance",
                    predicted=f"every train accuracy ≥ 0.99; test-error range > tolerance {tol:.3f}",
                    measured=f"min train accuracy {result['train_acc_min']:.3f}; test-error range {spread:.3f} over {err.size} models",
                    tolerance="none", paper=PAPER, kind="precondition",
                    passed=bool(result["train_acc_min"] >= 0.99 and spread > tol)),
            Verdict(claim="no bound-type measure is uniformly tight over the zoo, even with its best affine calibration",
                    predicted=f"min_(a,b) max_i |a·μ_i + b − err_i| > {tol:.3f} for every measure",
                    measured=(f"tightest: {tightest} t* = {ms[tightest]['t']:.3f}; " if ms else "no measure; ")
                             + ", ".join(f"{k} {v['t']:.3f}" for k, v in ms.items()),
                    tolerance=f"2 × the largest binomial standard error of the test errors = {tol:.3f}",
                    paper=PAPER, passed=bool(ms) and all(v["t"] > tol for v in ms.values())),
            Verdict(claim="uncalibrated PAC-Bayes bound (Jiang et al.'s σ') against test error",
                    predicted="(a measured number)",
                    measured=(f"bound in [{b.min():.3f}, {b.max():.3f}]; largest |bound − test error| {result['pac_bayes_max_gap']:.3f}"
                              if b.size else "not computed"),
                    tolerance="none", paper=PAPER, kind="finding", passed=True),
        ]

    def figures(self, config: NoUniformTightnessConfig, result: Result) -> dict[str, Any]:
        plt = figure_style()
        ms = result["measures"]
        names = sorted(ms, key=lambda k: ms[k]["t"])
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.barh(range(len(names)), [ms[k]["t"] for k in names], color="#4c72b0", label="best uniform gap t* (calibrated)")
        ax.axvline(result["tolerance"], ls="--", color="r", label=f"tolerance a uniform bound needs ({result['tolerance']:.3f})")
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("max over the zoo of |a·μ + b − test error|")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return {"tightness.png": fig}


EXPERIMENT = NoUniformTightness()
