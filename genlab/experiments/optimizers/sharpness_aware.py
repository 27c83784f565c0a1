"""sharpness-aware: SAM and SAF find flatter minima than SGD at the same number of epochs; SAF at SGD's cost.

Foret, Kleiner, Mobahi & Neyshabur 2021 ("Sharpness-aware minimization for efficiently improving
generalization", ICLR, arXiv 2010.01412) minimize max_{‖ε‖≤ρ} L(θ + ε) with one ascent step (two
gradients per update); Du, Zhou, Feng, Tan & Wu 2022 ("Sharpness-aware training for free", NeurIPS,
arXiv 2205.14083) get a similar flattening from a trajectory loss at almost no extra cost
(:mod:`genlab.train.saf`). Claims checked, at equal epochs and the same lr and batch:
(a) λ_max(∇²L) and tr(∇²L) at the end are lower with SAM than with SGD, (b) likewise with SAF, and
(c) SAF's CPU time per step is within ``time_tol`` of SGD's (SAM's ratio is reported). Test
accuracy is reported as a finding. Setup: an MLP on the first ``n_train`` MNIST-1D signals,
cross-entropy, plain SGD (no momentum) as the base of all three; λ_max by Lanczos and the trace by
Hutch++ on the full training set, per seed; a claim holds when it holds for the mean over seeds and
for at least ``share`` of the seeds. Precondition: SGD's final training loss ≤ ``loss_max``.

Changed after the first quick run (lr 0.1, batch 50, 12 epochs: train loss 1.64, nothing learned):
lr 0.2, batch 25, 30 quick epochs, and the precondition added.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from pydantic import Field

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset
from genlab.models.mlp import mlp
from genlab.probes.curvature import hessian_eigenvalues
from genlab.probes.trace import hessian_trace
from genlab.train.optimizers import make_optimizer
from genlab.train.saf import TrajectoryMemory

PAPER = "Foret, Kleiner, Mobahi & Neyshabur 2021 (arXiv 2010.01412); Du, Zhou, Feng, Tan & Wu 2022 (arXiv 2205.14083)"
ARMS = ("sgd", "sam", "saf")


class SharpnessAwareConfig(ExperimentConfig):
    """Config of :class:`SharpnessAware`."""

    n_train: int = Field(1000, ge=100, le=4000, description="MNIST-1D training signals")
    widths: list[int] = Field(default_factory=lambda: [100, 100], min_length=1, description="MLP hidden widths")
    epochs: int = Field(20, ge=4, description="epochs (equal for every arm)")
    batch_size: int = Field(25, ge=1, description="minibatch size")
    lr: float = Field(0.2, gt=0, description="SGD learning rate (base of all arms)")
    rho: float = Field(0.05, gt=0, description="SAM's radius ρ")
    saf_weight: float = Field(0.3, gt=0, description="SAF's λ")
    saf_temperature: float = Field(5.0, gt=0, description="SAF's τ")
    saf_delay: int = Field(3, ge=1, description="SAF's Ẽ (epochs)")
    seeds: int = Field(2, ge=1, description="seeds (initialization and data order)")
    share: float = Field(0.5, ge=0, le=1, description="share of seeds in which each comparison must hold")
    time_tol: float = Field(0.3, gt=0, description="(c): SAF's time per step at most (1 + this)× SGD's")
    loss_max: float = Field(0.5, gt=0, description="precondition: SGD's final train loss at most this (the runs reached a minimum's basin)")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {"n_train": 500, "epochs": 30, "seeds": 1},
            "full": {"n_train": 4000, "epochs": 60, "seeds": 4},
        }


def train_arm(config: SharpnessAwareConfig, data, arm: str, seed: int) -> tuple[torch.nn.Module, float, int]:
    """Train one arm; returns the model, CPU seconds spent in the update loop, and the number of steps."""
    x, y = data
    n = x.shape[0]
    model = mlp(x.shape[1], config.widths, 10, seed=seed)
    if arm == "sam":
        opt = make_optimizer("sam", model.parameters(), lr=config.lr, rho=config.rho, base="sgd")
    else:
        opt = make_optimizer("sgd", model.parameters(), lr=config.lr)
    memory = TrajectoryMemory(n, 10, config.saf_delay, config.saf_weight, config.saf_temperature) if arm == "saf" else None
    g = torch.Generator().manual_seed(1000 + seed)
    steps = 0
    t0 = time.process_time()
    for epoch in range(config.epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - config.batch_size + 1, config.batch_size):
            idx = perm[i : i + config.batch_size]

            def closure() -> torch.Tensor:
                opt.zero_grad()
                out = model(x[idx])
                loss = cross_entropy(out, y[idx])
                if memory is not None:
                    loss = loss + memory.loss(out, idx, epoch)
                loss.backward()
                return loss.detach()

            if arm == "sam":
                opt.step(closure)
            else:
                closure()
                opt.step()
            steps += 1
    return model, time.process_time() - t0, steps


class SharpnessAware(Experiment):
    name = "sharpness-aware"
    title = "SAM and SAF against SGD: flatter minima (λ_max, trace) at equal epochs; SAF at SGD's cost"
    paper = PAPER
    notes = {
        "the runs train: SGD's final training loss is low": (
            "precondition: the seed-mean final training loss of SGD is ≤ loss_max (0.5), so the runs reached a minimum's basin where sharpness is compared",
            "too few epochs or too small an lr (the first quick run, lr 0.1 for 12 epochs, ended at loss 1.64)",
            "more epochs (--full) or a larger lr"),
        "ends flatter than SGD": (
            "claims (a) SAM and (b) SAF, each for λ_max (Lanczos) and tr H (Hutch++) on the full training set: the arm's seed-mean value is strictly below SGD's and lower in ≥ share (50%) of the seeds, at equal epochs, lr and batch",
            "a ρ or SAF weight too small to change the trajectory, a run still far from a minimum, or seed noise (one seed in quick, where the share condition is that one seed)",
            "more seeds (genlab sweep sharpness-aware --quick --grid seed=0:4, or --full), larger rho / saf_weight"),
        "(c) SAF costs about what SGD costs per step": (
            "that SAF's mean CPU time per step is ≤ (1 + time_tol) = 1.3× SGD's (SAM's ratio reported beside it)",
            "CPU timing noise on a loaded machine, or SAF's trajectory memory being costly at this small model size",
            "rerun on an idle machine; larger n_train so per-step work dominates"),
        "test accuracy and train loss by arm": (
            "a finding: mean test accuracy and final training loss of SGD, SAM and SAF", "cannot fail", ""),
    }
    captions = {"sharpness_aware.png": "Per arm (SGD, SAM, SAF), per-seed final λ_max (left) and tr H (middle) with the SGD mean dashed (claims a, b: SAM and SAF below), and CPU time per step (right) with SAF's 1.3× SGD limit (claim c)."}
    Config = SharpnessAwareConfig

    def run(self, config: SharpnessAwareConfig, recorder: Any) -> Result:
        d = mnist1d_subset(config.n_train, 1000)
        rows: dict[str, list[dict[str, float]]] = {a: [] for a in ARMS}
        with recorder.progress(self.name, config.seeds * len(ARMS)) as bar:
            for i in range(config.seeds):
                seed = config.seed + i
                for arm in ARMS:  # interleaved per seed, so load changes hit every arm alike
                    model, cpu, steps = train_arm(config, d.train, arm, seed)
                    with torch.no_grad():
                        loss = float(cross_entropy(model(d.x), d.y))
                    lam = hessian_eigenvalues(model, cross_entropy, d.train, tol=1e-4, seed=seed).top
                    tr = hessian_trace(model, cross_entropy, d.train, num_matvecs=60, seed=seed)
                    row = {"seed": seed, "sharpness": lam, "trace": tr.estimate, "trace_se": tr.stderr, "train_loss": loss,
                           "test_acc": accuracy(model, d.x_test, d.y_test), "cpu_per_step": cpu / steps}
                    rows[arm].append(row)
                    recorder.log_many({f"{arm}/{k}": v for k, v in row.items() if k != "seed"}, seed)
                    bar.advance(1)
        return {"arms": rows}

    def checks(self, config: SharpnessAwareConfig, result: Result) -> list[Verdict]:
        arms = result["arms"]
        out: list[Verdict] = []

        def mean(arm: str, key: str) -> float:
            return float(np.mean([r[key] for r in arms[arm]]))

        out.append(Verdict(
            claim="the runs train: SGD's final training loss is low",
            predicted=f"mean SGD train loss ≤ {config.loss_max:g}", measured=f"{mean('sgd', 'train_loss'):.3g}",
            tolerance="exact", passed=mean("sgd", "train_loss") <= config.loss_max, paper=PAPER, kind="precondition"))
        for tag, arm in (("(a)", "sam"), ("(b)", "saf")):
            for key, label in (("sharpness", "λ_max"), ("trace", "tr H")):
                wins = [a[key] < s[key] for a, s in zip(arms[arm], arms["sgd"])]
                out.append(Verdict(
                    claim=f"{tag} {arm.upper()} ends flatter than SGD: lower {label}",
                    predicted=f"mean {label} below SGD's, and lower in ≥ {config.share:.0%} of seeds",
                    measured=f"{arm.upper()} {mean(arm, key):.4g} vs SGD {mean('sgd', key):.4g} (lower in {sum(wins)}/{len(wins)} seeds)",
                    tolerance="strict inequality", passed=mean(arm, key) < mean("sgd", key) and np.mean(wins) >= config.share, paper=PAPER))
        ratio_saf = mean("saf", "cpu_per_step") / mean("sgd", "cpu_per_step")
        ratio_sam = mean("sam", "cpu_per_step") / mean("sgd", "cpu_per_step")
        out.append(Verdict(
            claim="(c) SAF costs about what SGD costs per step (SAM about twice)",
            predicted=f"CPU time per step SAF/SGD ≤ {1 + config.time_tol:g}",
            measured=f"SAF/SGD = {ratio_saf:.2f}, SAM/SGD = {ratio_sam:.2f}",
            tolerance=f"+{config.time_tol:g}", passed=ratio_saf <= 1 + config.time_tol, paper=PAPER))
        out.append(Verdict(
            claim="test accuracy and train loss by arm (not predicted here)", predicted="no prediction",
            measured=", ".join(f"{a.upper()}: acc {mean(a, 'test_acc'):.3f}, train loss {mean(a, 'train_loss'):.3g}" for a in ARMS),
            tolerance="—", passed=True, paper=PAPER, kind="finding"))
        return out

    def figures(self, config: SharpnessAwareConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        arms = result["arms"]
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
        for ax, key, label in zip(axes, ("sharpness", "trace", "cpu_per_step"), ("λ_max at the end", "tr H at the end", "CPU s per step")):
            for j, a in enumerate(ARMS):
                vals = [r[key] for r in arms[a]]
                ax.scatter(np.full(len(vals), j), vals, alpha=0.7)
                ax.plot([j - 0.25, j + 0.25], [np.mean(vals)] * 2, "k-")
            base = np.mean([r[key] for r in arms["sgd"]])
            ref = base * (1 + config.time_tol) if key == "cpu_per_step" else base
            ax.axhline(ref, color="tab:red", ls="--", lw=0.8, label="SAF limit" if key == "cpu_per_step" else "SGD mean (predicted: SAM, SAF below)")
            ax.set_xticks(range(len(ARMS)))
            ax.set_xticklabels([a.upper() for a in ARMS])
            ax.set_title(label, fontsize=9)
            ax.legend(fontsize=6)
        fig.tight_layout()
        return {"sharpness_aware.png": fig}


EXPERIMENT = SharpnessAware()
