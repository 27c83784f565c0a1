"""connectivity-rank: at a fixed weight norm, low-rank initial connectivity learns richer, high-rank
lazier — except a low-rank initialization aligned with the task, which is lazy.

Claim (Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie 2023, "How connectivity structure
shapes rich and lazy learning in neural circuits", ICLR 2024, arXiv 2310.08513, abstract, §3 and
Prop. 1): with the Frobenius norm of the initial weights held fixed, higher effective rank of the
initial connectivity gives smaller changes of the weights and of the tangent kernel over training
(lazier learning), lower rank gives larger ones (richer); a low-rank initialization aligned with the
task and data statistics is an exception and learns lazily.

Setup (genlab's lazy-rich task rather than the paper's RNN tasks): inputs uniform on the sphere of
radius √d in ℝ^d, y = sin(x₁ + x₂) + x₃x₄/2 (:func:`genlab.data.synthetic.sphere_regression`), a
one-hidden-layer ReLU network in the NTK parameterization (:class:`genlab.models.ntk_mlp.NTKMLP`,
σ_w² = 2, σ_b² = 0.1) whose first-layer weights W (width × d) are replaced by a rank-r matrix with
equal singular values and the Frobenius norm √(width·d) of the standard Gaussian draw
(:func:`genlab.models.init.low_rank_weight`), for each r in ``ranks``; the standard Gaussian
(full-rank) draw is run as a reference. The task-aligned initialization has rank ``aligned_rank``
and its rows span the task subspace — the true one, span{e₁ + e₂, e₃, e₄} (as Liu et al.'s Prop. 1
builds the aligned weights from the known task statistics), or with ``aligned_directions =
"estimated"`` the subspace estimated from the training data by Stein's lemma (first-order direction
and principal Hessian directions, :func:`genlab.models.init.task_directions`) — at the same norm
(:func:`genlab.models.init.aligned_low_rank_weight`). The output is centred and scaled by
α = ``alpha`` (:class:`genlab.models.centered.Centered`), trained by full-batch GD on
(1/2n)‖F(X) − y‖² for ``steps`` steps with step ``eta_rel``/(α²·λ_max(K0/n)). Measured (mean over
``seeds`` networks): the relative weight change ‖θ_T − θ0‖/‖θ0‖ (Chizat et al. 2019) and the
kernel distance between the empirical NTKs at θ0 and θ_T on train ∪ test inputs (Fort et al. 2020).

Setup chosen after seeing a result: at α = 1 (width 128) the kernel distances were ~1e-3 and
within seed noise of each other, so the default output scale is α = 0.3 (richer training) — the
rank ordering of the weight change was the same at α = 1.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from scipy.stats import spearmanr

from genlab.config import PositiveInts
from genlab.data.synthetic import sphere_regression
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.centered import Centered
from genlab.models.init import aligned_low_rank_weight, effective_rank, low_rank_weight, subspace_alignment, task_directions
from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk, kernel_distance, relative_weight_change
from genlab.train import Trainer
from genlab.train.losses import half_squared_loss

PAPER = "Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie 2023 (ICLR 2024, arXiv 2310.08513)"
MEASURES = ("weight_change", "kernel_distance")


class ConnectivityRankConfig(ExperimentConfig):
    """Config of :class:`ConnectivityRank`."""

    d: int = Field(8, ge=4, description="input dimension (the first-layer rank is at most d)")
    n: int = Field(24, ge=4, description="training points")
    n_test: int = Field(40, ge=1, description="test points")
    width: int = Field(64, ge=4, description="hidden width")
    ranks: PositiveInts = Field(default_factory=lambda: [1, 2, 3, 4, 8], min_length=3, description="first-layer ranks r")
    aligned_rank: int = Field(3, ge=1, description="rank of the task-aligned initialization")
    aligned_directions: Literal["true", "estimated"] = Field(
        "true", description="task subspace of the aligned init: the target's own (true) or Stein/pHd estimate from the training data")
    seeds: int = Field(2, ge=1, description="networks per initialization (measurements averaged)")
    alpha: float = Field(0.3, gt=0, description="output scale α of the centred model")
    sigma_b2: float = Field(0.1, ge=0, description="bias variance σ_b² (σ_w² = 2)")
    eta_rel: float = Field(1.0, gt=0, lt=2, description="step as a fraction of 1/(α²λ_max(K0/n))")
    steps: int = Field(200, ge=1, description="GD steps")
    fit_fraction: float = Field(0.02, gt=0, lt=1, description="precondition: final/initial train loss below this")
    min_spearman: float = Field(0.8, gt=0, le=1, description="tolerance: Spearman ρ(rank, measure) ≤ −min_spearman")

    @model_validator(mode="after")
    def _ranks_fit(self) -> "ConnectivityRankConfig":
        if max(self.ranks) > min(self.d, self.width) or self.aligned_rank > min(self.d, self.width):
            raise ValueError(f"ranks: got {self.ranks} and aligned_rank {self.aligned_rank}; each must be <= min(d, width) = {min(self.d, self.width)}")
        if len(set(self.ranks)) != len(self.ranks):
            raise ValueError(f"ranks: got {self.ranks}; must be distinct")
        if self.aligned_rank not in self.ranks:
            raise ValueError(f"aligned_rank: got {self.aligned_rank}; must be one of ranks {self.ranks} (it is compared with the random init of that rank)")
        return self

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {},
            "full": {"d": 16, "n": 80, "n_test": 100, "width": 256, "ranks": [1, 2, 3, 4, 8, 16], "seeds": 5, "steps": 2000},
        }


def _first_layer(kind: str, rank: int, shape: tuple[int, int], dirs: np.ndarray, g: torch.Generator) -> torch.Tensor | None:
    if kind == "aligned":
        return aligned_low_rank_weight(shape, dirs, generator=g)
    if kind == "random":
        return low_rank_weight(shape, rank, generator=g)
    return None  # the standard Gaussian draw


class ConnectivityRank(Experiment):
    name = "connectivity-rank"
    title = "Connectivity rank: at fixed norm, low-rank initial weights learn richer, high-rank lazier, task-aligned low-rank lazy"
    paper = PAPER
    notes = {
        "relative weight change falls": ("Liu et al.: higher effective rank of the initial weights at the same norm moves the weights less",
                                         "too few seeds or ranks, or training too short to fit", "rerun with --full"),
        "kernel distance falls": ("that the tangent kernel moves less when the initial weights have higher rank", "seed noise at small kernel distances",
                                  "lower alpha or add seeds"),
        "task-aligned": ("the exception of Liu et al. (Prop. 1): low rank aligned with the task learns lazily",
                         "task directions poorly estimated from few points", "more training points (--set n=...)"),
        "train loss fell": ("that every run fitted the data, so the changes are compared at a fit", "too few steps", "more steps"),
        "effective rank": ("that each initialization has the rank it was built with, at the same norm", "a bug in the initialization"),
    }
    captions = {"connectivity_rank.png": "Weight change and kernel distance against the rank of the initial first-layer weights at fixed norm, with the task-aligned initialization and the Gaussian draw: the rank and alignment claims."}
    Config = ConnectivityRankConfig

    def run(self, config: ConnectivityRankConfig, recorder: Any) -> Result:
        rng = np.random.default_rng(config.seed)
        x, y = sphere_regression(rng, config.n, config.d)
        xt, yt = sphere_regression(rng, config.n_test, config.d)
        xs, ys, xts = (torch.tensor(a) for a in (x, y, xt))
        xall = torch.cat([xs, xts])
        truth = np.zeros((3, config.d))
        truth[0, :2] = 2**-0.5
        truth[1, 2] = truth[2, 3] = 1.0
        if config.aligned_directions == "estimated":
            dirs = task_directions(x, y, config.aligned_rank)
        else:  # the true subspace, completed by e₅, e₆, … when aligned_rank > 3
            extra = np.eye(config.d)[4 : 4 + max(config.aligned_rank - 3, 0)]
            dirs = np.vstack([truth, extra])[: config.aligned_rank]
        inits = [("random", r) for r in config.ranks] + [("aligned", config.aligned_rank), ("gaussian", config.d)]
        shape = (config.width, config.d)
        runs = []
        with recorder.progress(self.name, len(inits) * config.seeds * config.steps) as bar:
            for s in range(config.seeds):
                for kind, r in inits:
                    g = torch.Generator().manual_seed(config.seed * 100_003 + s)
                    base = NTKMLP(config.d, config.width, 1, sigma_b2=config.sigma_b2, generator=g)
                    w = _first_layer(kind, r, shape, dirs, g)
                    if w is not None:
                        with torch.no_grad():
                            base.weights[0].copy_(w)
                    w0 = base.weights[0].detach().clone()
                    init = {k: v.detach().clone() for k, v in base.named_parameters()}
                    k0 = empirical_ntk(base, xall).numpy()
                    lam = float(np.linalg.eigvalsh(k0[: config.n, : config.n] / config.n)[-1])
                    net = Centered(base, config.alpha)
                    tag = f"{kind}{r}/seed={s}/"
                    res = Trainer(net, half_squared_loss, (xs, ys), lr=config.eta_rel / (config.alpha**2 * lam),
                                  max_steps=config.steps, seed=config.seed, recorder=recorder, prefix=tag,
                                  log_every=max(config.steps // 25, 1), progress=bar).fit()
                    entry: dict[str, Any] = {
                        "kind": kind, "rank": r, "seed": s, "status": res.status, "train_loss": res.loss,
                        "initial_loss": float(0.5 * np.mean(y**2)),
                        "effective_rank": effective_rank(w0), "norm": float(torch.linalg.norm(w0)),
                        "alignment": subspace_alignment(w0, truth),
                    }
                    if not res.diverged:
                        k1 = empirical_ntk(base, xall).numpy()
                        with torch.no_grad():
                            out = net(xts).numpy()
                        entry.update(weight_change=relative_weight_change(base, init), kernel_distance=kernel_distance(k0, k1),
                                     test_mse=float(np.mean((out - yt) ** 2)))
                        recorder.log_many({tag + k: entry[k] for k in MEASURES}, config.steps)
                    runs.append(entry)
        q = np.linalg.qr(dirs.T)[0]  # principal angles between span(dirs) and the true subspace
        return {"runs": runs, "task_subspace_cosines": np.linalg.svd(q.T @ truth.T, compute_uv=False).tolist()}

    @staticmethod
    def _mean(result: Result, kind: str, rank: int, key: str) -> float:
        vals = [r.get(key, float("nan")) for r in result["runs"] if r["kind"] == kind and r["rank"] == rank]
        return float(np.mean(vals)) if vals else float("nan")

    def checks(self, config: ConnectivityRankConfig, result: Result) -> list[Verdict]:
        runs = result["runs"]
        diverged = [f"{r['kind']}{r['rank']}" for r in runs if r["status"] == "diverged"]
        note = f" (diverged: {sorted(set(diverged))})" if diverged else ""
        ranks = sorted(config.ranks)
        out = []
        ratios = [r["train_loss"] / r["initial_loss"] for r in runs if r["status"] != "diverged"]
        worst = max(ratios) if ratios else float("nan")
        out.append(Verdict(
            claim="every run fitted the training data (train loss fell below the fraction of its initial value)",
            predicted=f"final/initial train loss < {config.fit_fraction:g} for every run",
            measured=f"largest final/initial train loss {worst:.3g} over {len(ratios)} runs{note}",
            tolerance=f"< {config.fit_fraction:g}", passed=bool(ratios) and not diverged and worst < config.fit_fraction,
            paper=PAPER, kind="precondition",
        ))
        er = [(r["kind"], r["rank"], r["effective_rank"], r["norm"]) for r in runs if r["kind"] != "gaussian"]
        norm0 = (config.width * config.d) ** 0.5
        bad = [e for e in er if abs(e[2] - e[1]) > 1e-6 or abs(e[3] - norm0) > 1e-6 * norm0]
        out.append(Verdict(
            claim="each initialization has the effective rank it was built with, at the Frobenius norm of the Gaussian draw",
            predicted=f"effective rank = r, ‖W‖_F = √(width·d) = {norm0:.4g}",
            measured=("all " + str(len(er)) + " match" if not bad else f"mismatches: {bad[:3]}"),
            tolerance="1e-6 (relative for the norm)", passed=not bad, paper=PAPER + ", §2", kind="precondition",
        ))
        for key, claim in (("weight_change", "relative weight change falls as the initial rank grows at fixed norm"),
                           ("kernel_distance", "kernel distance falls as the initial rank grows at fixed norm")):
            v = np.array([self._mean(result, "random", r, key) for r in ranks])
            ok = bool(np.all(np.isfinite(v)))
            rho = round(float(spearmanr(ranks, v)[0]), 12) if ok else float("nan")  # exact ranks: −0.8 is not −0.7999…
            shown = ", ".join(f"r={r}: {x:.3g}" for r, x in zip(ranks, v))
            out.append(Verdict(
                claim=claim,
                predicted=f"decreasing in r: Spearman ρ(r, {key}) ≤ −{config.min_spearman:g} and the highest rank below the lowest",
                measured=f"{shown}; Spearman ρ = {rho:.2f}; Gaussian draw: {self._mean(result, 'gaussian', config.d, key):.3g}{note}",
                tolerance=f"ρ ≤ −{config.min_spearman:g}",
                passed=ok and rho <= -config.min_spearman and v[-1] < v[0],
                paper=PAPER + ", §3 (high rank → lazier)",
            ))
        k = config.aligned_rank
        pairs = {key: (self._mean(result, "aligned", k, key), self._mean(result, "random", k, key)) for key in MEASURES}
        passed = all(np.isfinite(a) and np.isfinite(b) and a < b for a, b in pairs.values())
        out.append(Verdict(
            claim=f"the task-aligned rank-{k} initialization learns lazier than a random rank-{k} one of the same norm",
            predicted="aligned < random for both the weight change and the kernel distance",
            measured="; ".join(f"{key}: aligned {a:.3g} vs random {b:.3g}" for key, (a, b) in pairs.items())
            + "; cosines of the principal angles between the aligned init's subspace and the true task subspace: "
            + ", ".join(f"{c:.2f}" for c in result.get("task_subspace_cosines", [])) + note,
            tolerance="strict inequality for both", passed=bool(passed), paper=PAPER + ", §3 and Prop. 1",
        ))
        tm = {f"{kind}{r}": self._mean(result, kind, r, "test_mse") for kind, r in
              [("random", r) for r in ranks] + [("aligned", k), ("gaussian", config.d)]}
        out.append(Verdict(
            claim="test MSE of each initialization (the paper predicts no ordering)",
            predicted="—", measured=", ".join(f"{a}: {b:.3g}" for a, b in tm.items()), tolerance="—",
            passed=True, paper=PAPER, kind="finding",
        ))
        return out

    def figures(self, config: ConnectivityRankConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ranks = sorted(config.ranks)
        k = config.aligned_rank
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, key, label in ((axes[0], "weight_change", "‖θ_T − θ0‖/‖θ0‖"), (axes[1], "kernel_distance", "kernel distance K0 vs K_T")):
            per_seed = [[r.get(key, np.nan) for r in result["runs"] if r["kind"] == "random" and r["rank"] == q] for q in ranks]
            for q, vals in zip(ranks, per_seed):
                ax.plot([q] * len(vals), vals, ".", color="0.6", ms=4)
            ax.plot(ranks, [np.nanmean(v) for v in per_seed], "o-", label="random rank r (measured)")
            ax.plot([k], [self._mean(result, "aligned", k, key)], "*", ms=13, color="C2", label=f"task-aligned rank {k}")
            ax.axhline(self._mean(result, "gaussian", config.d, key), color="k", ls=":", lw=1, label="Gaussian draw (full rank)")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("rank r of the initial first-layer weights (‖W‖_F fixed)")
            ax.set_ylabel(label)
            ax.set_title("prediction: decreasing in r; aligned below random at its rank", fontsize=8)
            ax.legend(fontsize=7)
        fig.suptitle(f"one-hidden-layer ReLU net, width {config.width}, d = {config.d}, α = {config.alpha:g}", fontsize=10)
        fig.tight_layout()
        return {"connectivity_rank.png": fig}


EXPERIMENT = ConnectivityRank()
