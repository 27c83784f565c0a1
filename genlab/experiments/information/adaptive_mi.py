"""adaptive-mi: with adaptive (equal-mass) binning, non-saturating networks compress too; L2 adds
to it; the last layer's compression goes with generalization.

Claims (Chelombiev, Houghton & O'Donnell 2019, "Adaptive estimators show information compression
in deep neural networks", arXiv 1902.09037 / ICLR 2019, Secs. 4–5):
(a) measured with adaptive bins, ReLU and ELU networks show compression (I(X;T) falls after fitting);
(b) L2 weight decay increases compression;
(c) across networks, compression of the last hidden layer relates to test accuracy (only the last
    layer's does: the other layers are reported as findings).

Setup: the Shwartz-Ziv–Tishby task and 12-10-7-5-4-3-2 network (``_szt``) with ``activations``
and He initialization (changed after seeing that with PyTorch's default many ReLU runs stayed at
chance for the whole quick budget),
a grid of ``weight_decays`` × ``seeds``, trained by SGD (lr 0.1, momentum 0.9, batch 256) on
``n_train`` patterns (fewer than the 80% of information-plane, so that test accuracy varies).
MI: :func:`genlab.probes.mutual_information.binned_mi` with ``strategy="adaptive"`` — edges at the
quantiles of each layer's pooled values at that record, ``bins`` bins — on all 4096 patterns (exact
for the binned layer). Compression as in information-plane: I(X;T) at the end of fitting minus its
mean over the last ``end_fraction`` of records. (c): Spearman ρ between last-layer compression and
final test accuracy over all runs of the grid, with a percentile bootstrap interval over runs;
tested only with at least ``min_runs`` runs (the full preset) — with fewer (the quick preset's
4) the ρ is reported as a finding that says the claim was not tested.
The number of bins (30, as Shwartz-Ziv & Tishby) was fixed after a trial with 8 bins, which bins
ReLU's zeros and positives so coarsely that I(T;Y) of the first layer fell to 0.6 bit.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field
from scipy.stats import spearmanr

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments.information._stats import spearman_interval
from genlab.experiments.information._szt import compression, mi_trajectories, train_recording_activations

PAPER = "Chelombiev, Houghton & O'Donnell 2019, arXiv 1902.09037, Secs. 4-5"


class AdaptiveMIConfig(ExperimentConfig):
    activations: list[Literal["relu", "elu", "tanh"]] = Field(default_factory=lambda: ["relu", "elu"], min_length=1,
                                   description="hidden activations: relu, elu, tanh")
    weight_decays: list[float] = Field(default_factory=lambda: [0.0, 1e-3], min_length=2,
                                       description="L2 coefficients; the first is the no-L2 baseline")
    seeds: int = Field(1, ge=1, le=20, description="runs per (activation, weight decay)")
    init: str = Field("he", pattern="^(he|default)$", description="he: N(0, 2/fan_in) weights, zero biases; default: PyTorch's")
    n_train: int = Field(1000, ge=100, le=4000, description="training patterns (the rest is the test set)")
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(256, ge=1)
    steps: int = Field(800, ge=10)
    records: int = Field(9, ge=4)
    bins: int = Field(30, ge=2, description="adaptive (equal-mass) bins per layer")
    fit_accuracy: float = Field(0.95, gt=0.5, le=1)
    end_fraction: float = Field(0.2, gt=0, lt=1)
    min_compression: float = Field(0.5, gt=0, description="bits of I(X;T) lost after fitting that count as compression")
    level: float = Field(0.9, gt=0, lt=1, description="bootstrap interval level for the rank correlation")
    min_runs: int = Field(8, ge=3, description="fewest fitted runs for the rank-correlation claim to be tested")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"activations": ["tanh", "relu", "elu"], "weight_decays": [0.0, 3e-4, 1e-3],
                                      "seeds": 4, "steps": 3000, "records": 31}}


class AdaptiveMI(Experiment):
    name = "adaptive-mi"
    title = "Adaptive binning: compression for ReLU/ELU too, more with L2, last layer vs test accuracy"
    paper = PAPER
    notes = {
        "the networks fit the task": (
            "that every run reaches training accuracy ≥ fit_accuracy (0.95) before its last end_fraction (20%) of records, so compression is measured after fitting",
            "a run that never fits in `steps` SGD steps (a ReLU net stuck at chance, or a diverged run)",
            "more steps, or --full; genlab sweep adaptive-mi --quick --grid seed=0:4 to see how often a seed fails to fit"),
        "adaptive binning, no L2: compression appears": (
            "Chelombiev et al.'s claim (a): for ReLU/ELU without weight decay, at least one hidden layer's seed-mean I(X;T) (adaptive, 30 equal-mass bins) falls by ≥ min_compression (0.5 bit) from the end of fitting to the mean over the last records",
            "no layer losing 0.5 bit in the quick budget (800 steps, 1 seed): compression is slow and noisy with one seed",
            "more steps or seeds (--full), or genlab sweep adaptive-mi --quick --grid seed=0:4"),
        "L2 regularization increases compression": (
            "claim (b): the layer-mean compression with the largest weight decay exceeds that with the smallest, for every activation (sign of the seed-mean difference, no interval)",
            "any activation where weight decay gives equal or less compression; with one seed per cell the sign is noisy",
            "more seeds (--full) or a larger weight decay in weight_decays"),
        "compression of the last hidden layer relates to test accuracy": (
            "claim (c): Spearman ρ between last-layer compression and final test accuracy over all fitted runs; passes if the lower end of the 90% percentile bootstrap interval is above 0",
            "too few runs or too little spread in test accuracy for the interval to exclude 0; only tested with ≥ min_runs (8) fitted runs",
            "--full (3 activations × 3 weight decays × several seeds)"),
        "the other layers' compression vs test accuracy": (
            "a finding: Spearman ρ with bootstrap interval for each non-last hidden layer (the paper reports no relation)",
            "cannot fail", ""),
        "last-layer compression vs test accuracy: not tested": (
            "a finding recorded instead of claim (c) when there are fewer than min_runs fitted runs: the bare Spearman ρ, no interval",
            "cannot fail; it says the claim was not tested", "--full to test claim (c)"),
    }
    captions = {"adaptive_mi.png": "Per activation, seed-mean I(X;T) per hidden layer (colour) against SGD step under adaptive binning, one line style per weight decay (claims a and b); right, last-layer compression against test accuracy per run with the 0.5-bit threshold (claim c)."}
    Config = AdaptiveMIConfig

    def run(self, config: AdaptiveMIConfig, recorder: Any) -> Result:
        runs = []
        total = len(config.activations) * len(config.weight_decays) * config.seeds * config.steps
        with recorder.progress(self.name, total) as bar:
            for act in config.activations:
                for wd in config.weight_decays:
                    for k in range(config.seeds):
                        seed = config.seed + k
                        run = train_recording_activations(
                            act, seed, n_train=config.n_train, lr=config.lr, momentum=config.momentum,
                            batch_size=config.batch_size, steps=config.steps, records=config.records,
                            weight_decay=wd, init=config.init, recorder=recorder, prefix=f"{act}/wd{wd:g}/seed{seed}/", progress=bar,
                        )
                        entry = {"activation": act, "weight_decay": wd, "seed": seed, "status": run["status"]}
                        if run["status"] != "diverged":
                            ixt, ity = mi_trajectories(run, strategy="adaptive", bins=config.bins, fixed_range="span")
                            c, kfit = compression(ixt, np.asarray(run["train_acc"]), config.fit_accuracy, config.end_fraction)
                            entry.update(step=run["step"], ixt=ixt.tolist(), ity=ity.tolist(), train_acc=run["train_acc"],
                                         test_acc=run["test_acc"], compression=[float(v) for v in c], fit_record=kfit)
                        runs.append(entry)
        return {"runs": runs}

    def checks(self, config: AdaptiveMIConfig, result: Result) -> list[Verdict]:
        runs = [r for r in result["runs"] if r["status"] != "diverged"]
        fitted = [r for r in runs if r["fit_record"] >= 0 and np.all(np.isfinite(r["compression"]))]
        out = [Verdict(
            claim="the networks fit the task (compression is measured after fitting)",
            predicted=f"every run reaches training accuracy ≥ {config.fit_accuracy:g} before its last {config.end_fraction:g} of records",
            measured=f"{len(fitted)} of {len(result['runs'])} runs",
            tolerance="-", passed=len(fitted) == len(result["runs"]), paper=PAPER, kind="precondition",
        )]
        if not fitted:
            return out

        def mean_comp(act: str, wd: float) -> np.ndarray:
            cs = [r["compression"] for r in fitted if r["activation"] == act and r["weight_decay"] == wd]
            return np.mean(cs, 0) if cs else np.full(5, np.nan)

        wd0, wd1 = config.weight_decays[0], config.weight_decays[-1]
        for act in [a for a in config.activations if a in ("relu", "elu")]:
            c = mean_comp(act, wd0)
            n = int(np.sum(c >= config.min_compression))
            out.append(Verdict(
                claim=f"{act}, adaptive binning, no L2: compression appears (I(X;T) falls after fitting)",
                predicted=f"at least one hidden layer loses ≥ {config.min_compression:g} bit of I(X;T) (seed mean)",
                measured=f"{n} of {len(c)} layers; per layer Δ bits: " + ", ".join(f"{v:+.2f}" for v in c),
                tolerance=f"{config.min_compression:g} bit", passed=bool(n >= 1), paper=PAPER,
            ))
        diffs = {act: float(np.mean(mean_comp(act, wd1)) - np.mean(mean_comp(act, wd0))) for act in config.activations}
        out.append(Verdict(
            claim="L2 regularization increases compression",
            predicted=f"mean compression over layers with weight decay {wd1:g} > with {wd0:g}, for every activation",
            measured="; ".join(f"{a}: {np.mean(mean_comp(a, wd0)):+.2f} → {np.mean(mean_comp(a, wd1)):+.2f} bit (Δ {d:+.2f})"
                               for a, d in diffs.items()),
            tolerance="sign of the difference (seed means)",
            passed=bool(all(np.isfinite(d) and d > 0 for d in diffs.values())), paper=PAPER,
        ))
        test = np.array([r["test_acc"][-1] for r in fitted])
        comp = np.array([r["compression"] for r in fitted])
        n_layers = comp.shape[1]
        if len(fitted) >= config.min_runs and len(np.unique(test)) > 1:
            rho, lo, hi = spearman_interval(comp[:, -1], test, config.level, config.seed)
            out.append(Verdict(
                claim="compression of the last hidden layer relates to test accuracy across the grid",
                predicted=f"Spearman ρ(last-layer compression, test accuracy) > 0: lower end of the {config.level:.0%} bootstrap interval > 0",
                measured=f"ρ = {rho:+.2f}, interval [{lo:+.2f}, {hi:+.2f}] over {len(fitted)} runs; test accuracy "
                         f"{test.min():.3f}–{test.max():.3f}",
                tolerance=f"{config.level:.0%} percentile bootstrap over runs",
                passed=bool(np.isfinite(lo) and lo > 0), paper=PAPER,
            ))
            others = [spearman_interval(comp[:, l], test, config.level, config.seed) for l in range(n_layers - 1)]
            out.append(Verdict(
                claim="the other layers' compression vs test accuracy (the paper: no relation)",
                predicted="Spearman ρ per hidden layer T1…T(L−1)",
                measured="; ".join(f"T{l + 1}: ρ = {r:+.2f} [{a:+.2f}, {b:+.2f}]" for l, (r, a, b) in enumerate(others)),
                tolerance="-", passed=True, paper=PAPER, kind="finding",
            ))
        else:
            rho = float(spearmanr(comp[:, -1], test).statistic) if len(fitted) >= 3 and len(np.unique(test)) > 1 else float("nan")
            out.append(Verdict(
                claim="last-layer compression vs test accuracy: not tested at this grid size (the full preset tests it)",
                predicted=f"the claim needs ≥ {config.min_runs} fitted runs with different test accuracies",
                measured=f"{len(fitted)} fitted runs; Spearman ρ = {rho:+.2f} (no interval at this size)",
                tolerance="-", passed=True, paper=PAPER, kind="finding",
            ))
        return out

    def figures(self, config: AdaptiveMIConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        runs = [r for r in result["runs"] if r["status"] != "diverged" and r["fit_record"] >= 0]
        acts = config.activations
        fig, axes = plt.subplots(1, len(acts) + 1, figsize=(4.2 * (len(acts) + 1), 3.8))
        styles = ["-", "--", ":", "-."]
        for ax, act in zip(axes, acts):
            for j, wd in enumerate(config.weight_decays):
                rs = [r for r in runs if r["activation"] == act and r["weight_decay"] == wd]
                if not rs:
                    continue
                ixt = np.mean([r["ixt"] for r in rs], 0)
                for l in range(ixt.shape[1]):
                    ax.plot(rs[0]["step"], ixt[:, l], ls=styles[j % 4], color=f"C{l}",
                            label=f"T{l + 1}" if j == 0 else None)
                ax.plot([], [], ls=styles[j % 4], color="k", label=f"wd={wd:g}")
            ax.set_title(f"{act}: I(X;T), adaptive bins (seed mean)", fontsize=9)
            ax.set_xlabel("SGD step")
            ax.set_ylabel("I(X;T) bits")
            ax.legend(fontsize=6)
        ax = axes[-1]
        for i, act in enumerate(acts):
            rs = [r for r in runs if r["activation"] == act]
            ax.scatter([r["compression"][-1] for r in rs], [r["test_acc"][-1] for r in rs], color=f"C{i}", label=act)
        ax.axvline(config.min_compression, color="0.5", ls=":", lw=0.8, label=f"{config.min_compression:g} bit")
        ax.set_xlabel("last-layer compression (bits)")
        ax.set_ylabel("test accuracy")
        ax.set_title("prediction: increasing relation", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return {"adaptive_mi.png": fig}


EXPERIMENT = AdaptiveMI()
